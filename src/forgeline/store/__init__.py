"""Persistence: the Store contract, its SQL backend, and artifact storage."""

from __future__ import annotations

import os
import threading

from forgeline.config import load_settings
from forgeline.store.artifacts import ArtifactStore, LocalArtifactStore
from forgeline.store.base import Store

__all__ = ["ArtifactStore", "LocalArtifactStore", "Store", "close_stores", "get_store"]

_stores: dict[str, Store] = {}
_lock = threading.Lock()


def get_store(store: str | Store | None = None) -> Store:
    """The store for a URI (one shared instance per URI in a process), a Store as given,
    or the configured default (argument > FORGELINE_STORE_URI > forgeline.toml > ./.forgeline).
    """
    if isinstance(store, Store):
        return store
    uri = _absolute(store or load_settings().resolved_store_uri)
    with _lock:
        if uri not in _stores:
            from forgeline.store.sql import SqlStore  # SQLAlchemy loads only when needed

            _stores[uri] = SqlStore(uri)
        return _stores[uri]


def _absolute(uri: str) -> str:
    """``sqlite:///rel.db`` -> an absolute path, so a later chdir cannot change the store."""
    prefix = "sqlite:///"
    path = uri.removeprefix(prefix)
    if uri.startswith(prefix) and path and not path.startswith(("/", ":memory:", "file:")):
        return prefix + os.path.abspath(path)
    return uri


def close_stores() -> None:
    """Close every store :func:`get_store` opened in this process (their connections)."""
    with _lock:
        for store in _stores.values():
            store.close()
        _stores.clear()
