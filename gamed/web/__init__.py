"""The HTTP service: health, Prometheus metrics and the read-only JSON API."""
