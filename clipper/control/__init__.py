"""The control plane: the registry (an embedded SQLite store, its schema and SQL), the
service that applies admin requests to it and to the data plane, the reconciler that keeps
each version's replicas running, pipelines, selection-policy state and log rotation."""
