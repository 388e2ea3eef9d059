"""Content-addressed artifact storage.

Each file is stored once under its sha256 (``objects/ab/cdef...``), written to a temporary
name and renamed into place so that a reader never sees half a file. Reading checks the
bytes against the digest and raises IntegrityError when they no longer match.
"""

from __future__ import annotations

import abc
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from forgeline.errors import IntegrityError, InvalidInput, NotFound
from forgeline.util.files import atomic_path

__all__ = ["ArtifactStore", "LocalArtifactStore", "safe_artifact_path", "sha256_file"]

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def safe_artifact_path(name: str) -> str:
    """Normalise a path inside a run; refuse anything that could escape it."""
    if not isinstance(name, str) or not name.strip() or "\x00" in name or "\\" in name:
        raise InvalidInput(
            f"Invalid artifact path {name!r}.",
            hint="Use a relative path with '/' separators, such as 'plots/roc.html'.")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise InvalidInput(f"Artifact path {name!r} escapes its run: absolute paths and '..' "
                           "are not allowed.", hint="Use a relative path such as 'model/'.")
    cleaned = "/".join(p for p in path.parts if p not in ("", "."))
    if not cleaned:
        raise InvalidInput(f"Invalid artifact path {name!r}: it names no file.")
    return cleaned


class ArtifactStore(abc.ABC):
    """Immutable blobs addressed by the sha256 of their content."""

    @abc.abstractmethod
    def put(self, path: Path) -> str:
        """Store a file's bytes; return their sha256. Storing the same bytes twice is free."""

    @abc.abstractmethod
    def get(self, digest: str) -> Path:
        """A local path to the verified bytes; NotFound if absent, IntegrityError if changed."""

    @abc.abstractmethod
    def exists(self, digest: str) -> bool: ...

    @abc.abstractmethod
    def list(self) -> Iterator[str]:
        """Every stored digest."""


class LocalArtifactStore(ArtifactStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalArtifactStore({str(self.root)!r})"

    def _object(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise InvalidInput(f"Invalid artifact digest {digest!r}: expected 64 hex digits.")
        return self.root / "objects" / digest[:2] / digest[2:]

    def put(self, path: Path) -> str:
        # The bytes are hashed while they are copied, so the final name is known only at the
        # end: the copy goes to tmp/ (same filesystem) and is renamed to its digest.
        path = Path(path)
        if not path.is_file():
            raise NotFound(f"Cannot log artifact {str(path)!r}: no such file.")
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir)
        try:
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            target = self._object(digest.hexdigest())
            if target.exists():
                os.unlink(tmp_name)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp_name, 0o444)
                os.replace(tmp_name, target)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise
        return digest.hexdigest()

    def get(self, digest: str) -> Path:
        target = self._object(digest)
        if not target.is_file():
            raise NotFound(f"Artifact {digest[:12]} is missing from {self.root}.",
                           hint="The artifact store was moved or cleaned; restore it.")
        actual = sha256_file(target)
        if actual != digest:
            raise IntegrityError(
                f"Artifact {digest[:12]} in {self.root} is corrupt: its bytes hash to "
                f"{actual[:12]}.", hint="Restore the artifact store from a backup.")
        return target

    def exists(self, digest: str) -> bool:
        return self._object(digest).is_file()

    def list(self) -> Iterator[str]:
        objects = self.root / "objects"
        if objects.is_dir():
            for shard in sorted(objects.iterdir()):
                for item in sorted(shard.iterdir()):
                    yield shard.name + item.name

    def copy_to(self, digest: str, dest: Path) -> None:
        """Write the verified bytes to ``dest`` atomically."""
        source = self.get(digest)
        with atomic_path(dest) as tmp:
            shutil.copyfile(source, tmp)
