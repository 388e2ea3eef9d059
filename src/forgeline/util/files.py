"""Atomic writes: a reader sees the old file (or none) or the new one, never part of one.

Every writer in Forgeline that puts a file or a folder where others may read it (artifacts,
model packages, prediction-log parts, labels, reports, scored files, caches) goes through
:func:`atomic_path`: the content is written under a hidden temporary name in the same
folder (so the final rename stays on one filesystem, where it is atomic) and renamed into
place only once complete. Temporary names start with a dot, which readers that glob for
their files never match.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write", "format_bytes", "temporary_name"]


def temporary_name(target: Path) -> Path:
    """A hidden, unique sibling of ``target``: ``.<name>.<random>.tmp``."""
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")


@contextlib.contextmanager
def atomic_path(target: str | Path, *, directory: bool = False, replace: bool = True,
                mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    Args:
        target: the final path; its folder is created.
        directory: the temporary path is an (empty, created) folder rather than a file
            name; an existing ``target`` folder is then replaced as a whole.
        replace: when False and ``target`` appears meanwhile (another writer won a race to
            write the same content), the temporary copy is discarded instead.
        mode: permission bits set on the file before the rename (e.g. ``0o444``).

    On an error inside the block, the temporary path is removed and ``target`` is left as
    it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(target)
    if directory:
        tmp.mkdir()
    try:
        yield tmp
        if not replace and target.exists():
            return
        if mode is not None:
            os.chmod(tmp, mode)
        if directory and target.is_dir():
            shutil.rmtree(target)  # a rename cannot replace a folder everywhere
        os.replace(tmp, target)
    finally:
        if directory:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def atomic_write(target: str | Path, data: bytes | str, *, fsync: bool = False) -> Path:
    """Write ``data`` (text as UTF-8) to ``target`` atomically; return ``target``.

    ``fsync`` flushes the bytes to the disk before the rename, for files that must survive
    a power cut as well as a crash of the writer.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        f.write(raw)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    return Path(target)


def format_bytes(size: int) -> str:
    """A file size for people: ``512 B``, ``1.5 KiB``, ``3.2 MiB``, ..."""
    if size < 1024:
        return f"{size} B"
    amount = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        amount /= 1024
        if amount < 1024 or unit == "TiB":
            break
    return f"{amount:.1f} {unit}"
