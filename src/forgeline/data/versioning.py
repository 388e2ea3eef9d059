"""Dataset versions: a frame identified by the hash of its content.

The digest is sha256 over the column names and dtypes, then the 64-bit hash pandas computes
for every row (``pd.util.hash_pandas_object(df, index=False)``), in row order. It is
stable across processes and machines for the same pandas version, sensitive to row and
column order, and changes when any cell changes (0.0 and -0.0 count as different). The
index is not part of the content: a filtered frame with the same rows has the same digest
as a fresh one.
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd

from forgeline.entities import Dataset

__all__ = ["content_digest", "dataset_version"]


def content_digest(df: pd.DataFrame) -> str:
    """The sha256 hex digest of a frame's columns, dtypes and cells (not its index)."""
    digest = hashlib.sha256()
    header = [[str(name), str(dtype)] for name, dtype in df.dtypes.items()]
    digest.update(json.dumps(header, separators=(",", ":")).encode())
    digest.update(len(df).to_bytes(8, "little"))
    if len(df.columns) and len(df):
        try:
            rows = pd.util.hash_pandas_object(df, index=False)
        except TypeError:  # unhashable cells (lists, dicts from Parquet): hash their text
            text = {c: str for c, t in df.dtypes.items() if pd.api.types.is_object_dtype(t)}
            rows = pd.util.hash_pandas_object(df.astype(text), index=False)
        digest.update(rows.to_numpy(dtype="uint64").tobytes())
    return digest.hexdigest()


def dataset_version(df: pd.DataFrame, name: str, source: str) -> Dataset:
    """The Dataset entity for ``df``: content digest, shape and ``{column: dtype}``.

    Args:
        df: the frame as loaded.
        name: a short name for the dataset (the file stem, say).
        source: where it came from (a path or URI), recorded as given.
    """
    return Dataset(digest=content_digest(df), name=name, source=source, num_rows=len(df),
                   num_columns=len(df.columns),
                   schema={str(column): str(dtype) for column, dtype in df.dtypes.items()})
