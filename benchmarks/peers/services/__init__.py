"""Service code run inside each peer's own environment (copied next to peer_model.py)."""
