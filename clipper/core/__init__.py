"""The vocabulary every layer shares: types, the exception tree, registry records, settings,
resource requests, the input codec and its limits, output conversion. The lowest layer:
imports nothing else of Clipper's, and nothing here imports pydantic at import time except
`config` (so a worker, which imports `core`, loads only its worker packages)."""
