"""The SQLAlchemy store: SQLite (default) and PostgreSQL."""

from __future__ import annotations

from forgeline.store.base import Store
from forgeline.store.sql.monitoring import MonitoringMixin
from forgeline.store.sql.registry import RegistryMixin
from forgeline.store.sql.runs import RunsMixin
from forgeline.store.sql.tokens import TokensMixin

__all__ = ["SqlStore"]


class SqlStore(RunsMixin, RegistryMixin, MonitoringMixin, TokensMixin, Store):
    """A :class:`Store` over SQLAlchemy; schema migrated automatically on open."""
