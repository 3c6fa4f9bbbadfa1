"""The model-container process: load a model, dial the server, serve batches."""
