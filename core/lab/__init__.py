"""The lab: training, the efficiency benchmark and the reliability monitor of running runs."""
