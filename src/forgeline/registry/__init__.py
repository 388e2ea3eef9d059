"""The model registry: versions, aliases (``name@champion``), tags and lineage."""

from forgeline.registry.client import RegistryAPI

__all__ = ["RegistryAPI"]
