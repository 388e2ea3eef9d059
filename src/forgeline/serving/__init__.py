"""Serving: the real-time HTTP API, the prediction log, and batch scoring."""
