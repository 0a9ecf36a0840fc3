"""What operators and tryers use: health and readiness probes, metrics, the playground page."""
