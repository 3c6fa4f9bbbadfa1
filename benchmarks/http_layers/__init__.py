"""HTTP layers alone: minimal no-op apps on each candidate server (see `__main__`)."""
