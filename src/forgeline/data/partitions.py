"""A dataset in partitions: Parquet files named by a local glob (``data/part-*.parquet``)
or objects under an ``s3://`` prefix (``s3://bucket/events/*.parquet``), found, read one at
a time and named relative to their common root. Monitoring and batch scoring spread the
partitions over an engine, one task each, so no process holds the whole dataset.
"""

from __future__ import annotations

import glob
import io
import os
from pathlib import Path
from typing import Any

import pandas as pd

from forgeline.engines import Engine, get_engine
from forgeline.errors import InvalidInput, NotFound
from forgeline.store.s3 import AWS_VARIABLES, glob_prefix, list_matching, read_object

__all__ = ["find_partitions", "is_pattern", "partition_engine", "partition_name",
           "read_partition"]

def is_pattern(text: str) -> bool:
    """Whether ``text`` names partitions: an ``s3://`` URI or a glob."""
    return text.startswith("s3://") or glob_prefix(text) != text


def find_partitions(pattern: str) -> list[str]:
    """The partitions a pattern names, sorted: ``s3://bucket/prefix/*.parquet`` (the
    prefix listed, keys matched with ``fnmatch``) or a local glob (``data/part-*.parquet``,
    ``**`` for any depth).

    Raises:
        NotFound: nothing matches.
        StoreError: the bucket does not exist, the credentials are refused.
    """
    if pattern.startswith("s3://"):
        found = list_matching(pattern)
    else:
        found = sorted(p for p in glob.glob(os.path.expanduser(pattern), recursive=True)
                       if Path(p).is_file())
    if not found:
        raise NotFound(f"No file matches {pattern}.",
                       hint="Check the path and the pattern (e.g. s3://bucket/prefix/"
                            "*.parquet or data/part-*.parquet).")
    return found


def partition_name(pattern: str, source: str) -> str:
    """``source`` relative to the folder of ``pattern`` before its first glob character:
    ``2024/01/part-0.parquet`` for ``s3://b/in/**/*.parquet`` and ``s3://b/in/2024/01/
    part-0.parquet`` (outputs keep the layout of their inputs, and never clash)."""
    pattern = os.path.expanduser(pattern)
    root = glob_prefix(pattern).rpartition("/")[0]
    if not source.startswith("s3://"):
        root = os.path.abspath(root) if root else os.getcwd()
        source = os.path.abspath(source)
    return source[len(root):].lstrip("/") if root and source.startswith(root) else (
        source.rpartition("/")[2])


def read_partition(source: str) -> pd.DataFrame:
    """One Parquet partition: a local file or an ``s3://`` object (read into memory).

    Raises:
        NotFound: the file or object does not exist.
        InvalidInput: it is not a (complete) Parquet file.
        StoreError: object storage refused the read.
    """
    data: Any = io.BytesIO(read_object(source)) if source.startswith("s3://") else source
    try:
        return pd.read_parquet(data)
    except (OSError, ValueError, TypeError, NotImplementedError) as e:
        if isinstance(e, FileNotFoundError):
            raise NotFound(f"Partition {source} does not exist.") from None
        reason = str(e).strip().splitlines()[0].rstrip(".") if str(e).strip() else type(
            e).__name__
        raise InvalidInput(f"Partition {source} cannot be read as Parquet: {reason}.",
                           hint="Every partition must be a complete Parquet file; remove or "
                                "rewrite that one.") from None


def partition_engine(engine: str | Engine, address: str | None, s3: bool) -> Engine:
    """The engine a task per partition runs on: ``"local"``, one partition at a time in
    this process (memory holds one); ``"ray"``, the cluster at ``address``.

    With ``s3``, the Ray workers get the AWS_* variables this process has: they were
    started with their own environment, so the variables go as the tasks' runtime
    environment (``RayEngine(env_vars=...)``) rather than inside each task's arguments:
    boto3 on a worker then reads the endpoint, region and keys exactly as it does here, and
    the keys never enter a task's pickled arguments, its repr or an error message.
    """
    if not isinstance(engine, str):
        return engine
    if engine == "local":
        return get_engine("local", 1)
    env = {k: os.environ[k] for k in AWS_VARIABLES if k in os.environ} if s3 else None
    return get_engine(engine, address=address, env_vars=env)
