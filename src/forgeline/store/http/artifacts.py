"""Artifact bytes through a team server, streamed both ways and checked by sha256.

``put`` hashes the file, asks the server whether it has those bytes already (``HEAD``),
and if not streams the file up (``PUT /artifacts/<sha256>``, never whole in memory); the
server hashes what arrives and stores it only when it matches. ``get`` streams the bytes
down into a local cache (a :class:`~forgeline.store.artifacts.LocalArtifactStore`, so the
same atomic writes and checks apply): each file is downloaded once, checked against its
digest, and read from the cache afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from forgeline.errors import IntegrityError, InvalidInput, NotFound
from forgeline.store.artifacts import ArtifactStore, LocalArtifactStore, check_digest, sha256_file
from forgeline.store.http.store import HttpStore

__all__ = ["HttpArtifactStore"]

_CHUNK = 1 << 20


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


class HttpArtifactStore(ArtifactStore):
    """The artifact store of the team server behind ``store``.

    Args:
        store: the server's store (its connection and token are shared).
        cache: where downloaded artifacts are kept.
    """

    def __init__(self, store: HttpStore, cache: Path) -> None:
        self.http = store.http
        self.cache = LocalArtifactStore(Path(cache))

    def __repr__(self) -> str:
        return f"HttpArtifactStore({self.http.url!r}, cache={str(self.cache.root)!r})"

    def put(self, path: Path) -> str:
        path = Path(path)
        if not path.is_file():
            raise NotFound(f"Cannot log artifact {str(path)!r}: no such file.")
        digest = sha256_file(path)
        if self.exists(digest):
            return digest
        size = path.stat().st_size
        route = f"/artifacts/{digest}"

        def attempt() -> None:
            response = self.http.client.put(
                route, content=_chunks(path),
                headers={"Content-Type": "application/octet-stream",
                         "Content-Length": str(size)})
            self.http.check(response, "PUT", route)

        self.http.retrying(attempt, "PUT", route)
        return digest

    def exists(self, digest: str) -> bool:
        route = f"/artifacts/{check_digest(digest)}"

        def attempt() -> bool:
            response = self.http.client.head(route)
            if response.status_code == 404:
                return False
            self.http.check(response, "HEAD", route)
            return True

        return self.http.retrying(attempt, "HEAD", route)

    def get(self, digest: str) -> Path:
        check_digest(digest)
        if self.cache.exists(digest):
            return self.cache.get(digest)
        route = f"/artifacts/{digest}"

        def attempt() -> None:
            with self.http.stream("GET", route) as response, self.cache.upload() as upload:
                for chunk in response.iter_bytes(_CHUNK):
                    upload.write(chunk)
                try:
                    upload.commit(expected=digest)
                except InvalidInput:
                    raise IntegrityError(
                        f"Artifact {digest[:12]} arrived from {self.http.url} with other bytes "
                        "than its digest says; nothing was kept.",
                        hint="Try again; if it persists, the server's artifact store is "
                             "corrupt: restore it from a backup.") from None

        self.http.retrying(attempt, "GET", route)
        return self.cache.get(digest)

    def list(self) -> Iterator[str]:
        yield from self.http.call("GET", "/artifacts")["digests"]
