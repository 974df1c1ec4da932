"""Evaluation: model -> samples -> sandbox -> results -> pass@k and run summaries."""
