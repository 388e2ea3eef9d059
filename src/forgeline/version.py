"""The version of this Forgeline (foundation: every layer may name it)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
