"""Publishing a decided verdict: PDF report, badge and release tag, W&B, alerts, GitHub, Prometheus."""
