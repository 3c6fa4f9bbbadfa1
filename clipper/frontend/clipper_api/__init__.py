"""Clipper's own query API: `/<app>/predict`, `/<app>/update` (feedback) and the metrics
endpoints of the query port."""
