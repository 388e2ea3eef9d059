"""Data: load, version, infer and validate schemas, profile, split, check for leakage."""
