"""The team server (``forgeline server``): a JSON REST API over a store, artifact bytes
streamed through it, bearer tokens with roles, and MLflow-compatible routes."""
