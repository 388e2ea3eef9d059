"""Content-addressed artifact storage.

Each file is stored once under its sha256 (``objects/ab/cdef...``), written to a temporary
name and renamed into place so that a reader never sees half a file. Reading checks the
bytes against the digest and raises IntegrityError when they no longer match.

Bytes that arrive in pieces (an upload to the team server) go through an :class:`Upload`:
hashed as they are written, stored under their digest only by :meth:`Upload.commit`, which
refuses them when they do not match the digest announced; an upload not committed (a
client gone half-way, a wrong digest) leaves nothing behind.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import BinaryIO

from forgeline.errors import IntegrityError, InvalidInput, NotFound
from forgeline.util.files import atomic_path

__all__ = ["ArtifactStore", "LocalArtifactStore", "Upload", "check_digest", "safe_artifact_path",
           "sha256_file"]

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_digest(digest: str) -> str:
    """``digest`` if it is a sha256 in hex (64 lowercase hex digits), else InvalidInput."""
    if (not isinstance(digest, str) or len(digest) != 64
            or any(c not in "0123456789abcdef" for c in digest)):
        raise InvalidInput(f"Invalid artifact digest {digest!r}: expected 64 hex digits.",
                           hint="Artifacts are addressed by the sha256 of their bytes.")
    return digest


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


class Upload:
    """Bytes being written into an artifact store, hashed on the way.

    Use it as a context manager: ``write`` the chunks, then ``commit`` to store them; on
    leaving the block without a commit (or on any error) the partial file is deleted.

    Args:
        staging: a folder for the partial file (on the store's filesystem, so that the
            commit is a rename).
        place: stores the complete, verified temporary file under its digest (it may move
            the file away).
    """

    def __init__(self, staging: Path, place: Callable[[Path, str], None]) -> None:
        staging.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=staging, prefix=".upload-")
        self.path = Path(name)
        self.size = 0
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._place = place

    def write(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self._file.write(chunk)
        self.size += len(chunk)

    def commit(self, expected: str | None = None, size: int | None = None) -> str:
        """Store the bytes written; return their sha256.

        Raises:
            InvalidInput: the bytes do not hash to ``expected``, or are not ``size`` bytes
                (a truncated or corrupted upload): nothing is stored.
        """
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        digest = self._hash.hexdigest()
        if size is not None and size != self.size:
            raise InvalidInput(
                f"The upload was truncated: {self.size} bytes arrived of the {size} announced; "
                "nothing was stored.", hint="Send the file again.")
        if expected is not None and digest != expected:
            raise InvalidInput(
                f"The uploaded bytes hash to {digest[:12]}..., not the digest announced "
                f"({expected[:12]}...): the upload was truncated or corrupted and nothing was "
                "stored.", hint="Send the file again, with the sha256 of its bytes.")
        self._place(self.path, digest)
        return digest

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):  # gone when the commit moved it
            os.unlink(self.path)


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

    def upload(self) -> Upload:
        """An :class:`Upload` into this store (by default staged in the system's temporary
        folder and stored with :meth:`put`)."""
        return Upload(Path(tempfile.gettempdir()) / "forgeline-uploads",
                      lambda path, _digest: self._put_staged(path))

    def _put_staged(self, path: Path) -> None:
        self.put(path)

    def copy_to(self, digest: str, dest: Path) -> None:
        """Write the verified bytes to ``dest`` atomically."""
        source = self.get(digest)
        with atomic_path(dest) as tmp:
            shutil.copyfile(source, tmp)


class LocalArtifactStore(ArtifactStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalArtifactStore({str(self.root)!r})"

    def _object(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / "objects" / digest[:2] / digest[2:]

    def upload(self) -> Upload:
        # Staged in tmp/ on the same filesystem: the commit is one rename.
        return Upload(self.root / "tmp", self._place)

    def _place(self, staged: Path, digest: str) -> None:
        target = self._object(digest)
        if target.exists():
            return  # the same bytes are stored already; Upload removes the staged copy
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(staged, 0o444)
        os.replace(staged, target)

    def put(self, path: Path) -> str:
        # The bytes are hashed while they are copied, so the final name is known only at the
        # end: the copy is staged and renamed to its digest.
        path = Path(path)
        if not path.is_file():
            raise NotFound(f"Cannot log artifact {str(path)!r}: no such file.")
        with self.upload() as upload, open(path, "rb") as src:
            while chunk := src.read(_CHUNK):
                upload.write(chunk)
            return upload.commit()

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
