"""Batch queues and batch-size policies."""
