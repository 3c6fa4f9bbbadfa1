"""Metrics of one server: the Prometheus registry and its families (`server_metrics`) and the
lock-free counters and histograms the query path updates (`families`)."""
