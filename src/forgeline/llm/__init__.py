"""A client for OpenAI-compatible LLM endpoints and a SQLite cache of its answers: shared by
the labelling stage (LLM labels) and packaging (LLM features, which a served model calls)."""
