"""Experiment tracking: runs, params, buffered metrics, artifacts, search."""
