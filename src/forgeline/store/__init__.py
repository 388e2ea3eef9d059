"""Persistence: the Store contract, its SQL backend, and artifact storage."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from forgeline.config import load_settings
from forgeline.store.artifacts import ArtifactStore, LocalArtifactStore
from forgeline.store.base import Store

__all__ = ["ArtifactStore", "LocalArtifactStore", "Store", "close_stores", "get_store",
           "open_artifact_store"]

_stores: dict[str, Store] = {}
_lock = threading.Lock()


def open_artifact_store(root: str | Path) -> ArtifactStore:
    """The artifact store for a folder or an ``s3://bucket/prefix`` URI (object storage,
    with boto3 imported only then)."""
    if isinstance(root, str) and root.startswith("s3://"):
        from forgeline.store.s3_artifacts import S3ArtifactStore

        return S3ArtifactStore(root)
    return LocalArtifactStore(Path(root))


def get_store(store: str | Store | None = None) -> Store:
    """The store for a URI (one shared instance per URI in a process), a Store as given,
    or the configured default (argument > FORGELINE_STORE_URI > forgeline.toml > ./.forgeline).

    ``sqlite:///...`` and ``postgresql+psycopg://...`` open the SQL backend; ``http://...``
    and ``https://...`` a team server (``forgeline server``), with FORGELINE_TOKEN.
    """
    if isinstance(store, Store):
        return store
    uri = _absolute(store or load_settings().resolved_store_uri)
    with _lock:
        if uri not in _stores:
            _stores[uri] = _open(uri)
        return _stores[uri]


def _open(uri: str) -> Store:
    if uri.startswith(("http://", "https://")):  # a team server (forgeline server)
        from forgeline.store.http.store import HttpStore

        return HttpStore(uri)
    from forgeline.store.sql import SqlStore  # SQLAlchemy loads only when needed

    return SqlStore(uri)


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
