"""Writing and reading the prediction log's Parquet parts.

:func:`write_predictions` is the one writer of the format: whoever assembles rows (the
server's write queue, a test, a backfill) hands it the log's own columns, the inputs and
the outputs, and it names, types, partitions and writes them. :func:`read_predictions`
opens only the date partitions that can hold the rows asked for.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgeline.store.predictions.format import PART_PREFIX, RESERVED_COLUMNS, stored_name
from forgeline.util.files import atomic_path

__all__ = ["read_predictions", "write_predictions"]


def write_predictions(root: Path, model: str, log: pd.DataFrame, inputs: pd.DataFrame,
                      outputs: pd.DataFrame) -> int:
    """Append rows to ``model``'s log: one Parquet part per day the rows fall on.

    Args:
        root: the log root (:func:`~.format.prediction_log_root`).
        model: the model name.
        log: the log's own columns (``request_id``, ``row``, ``ts`` as UTC timestamps,
            ``model_version``, ``runtime``, ``shadow``), one row per predicted row.
        inputs: the model inputs of the same rows, under their signature names.
        outputs: ``prediction`` and the ``proba_<class>`` columns of the same rows.

    Returns:
        The number of rows written.
    """
    stored = _arrow_ready(inputs)
    stored.columns = [stored_name(c) for c in inputs.columns]
    parts = [frame.reset_index(drop=True) for frame in (log, stored, outputs)]
    table = pd.concat(parts, axis=1)
    directory = Path(root) / model
    days = table["ts"].dt.tz_convert(None).to_numpy().astype("datetime64[D]")
    for day in np.unique(days):  # one file per day (almost always just one)
        part = table if days[0] == days[-1] else table[days == day]
        _write_part(directory / f"date={day}", part)
    return len(table)


def _arrow_ready(inputs: pd.DataFrame) -> pd.DataFrame:
    """One Arrow type per input column whatever the request held: numbers as float64 (an
    integer column with a missing value arrives as floats), true/false with missing as
    nullable booleans, everything else that is not a date as strings."""
    out = {}
    for name in inputs.columns:
        values = inputs[name]
        kind = values.dtype.kind if isinstance(values.dtype, np.dtype) else ""
        if kind in "iuf" and kind:
            values = values.astype(np.float64)
        elif kind == "b" or pd.api.types.is_datetime64_any_dtype(values.dtype):
            pass
        else:
            present = values.dropna()
            if len(present) and all(isinstance(v, bool | np.bool_) for v in present):
                values = values.astype("boolean")
            else:
                values = values.astype(object).where(values.notna(), None).map(
                    lambda v: v if v is None or isinstance(v, str) else str(v)
                ).astype("string")
        out[name] = values
    return pd.DataFrame(out)


def _write_part(directory: Path, frame: pd.DataFrame) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    stamp = dt.datetime.now(dt.UTC).strftime("%H%M%S%f")
    name = f"{PART_PREFIX}{stamp}-{uuid.uuid4().hex[:12]}.parquet"
    with atomic_path(directory / name) as tmp:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False, nthreads=1), tmp,
                       compression="zstd")


def read_predictions(root: Path, model: str, *, since: dt.datetime | None = None,
                     last: int | None = None, include_shadow: bool = False) -> pd.DataFrame:
    """The logged predictions of ``model``, oldest first.

    Only the date partitions that can hold matching rows are opened.

    Args:
        root: the log root.
        model: the model name.
        since: only rows predicted at or after this time (naive: UTC).
        last: only the most recent ``last`` rows (after the other filters).
        include_shadow: include the shadow model's predictions.

    Returns:
        The rows (see the package docstring for the columns); empty when none match.
    """
    import pyarrow.dataset as ds

    directory = Path(root) / model
    days = sorted(p for p in directory.glob("date=*") if p.is_dir()) if directory.is_dir() \
        else []
    start = None
    if since is not None:
        start = pd.Timestamp(since)
        start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
        days = [d for d in days if d.name[len("date="):] >= start.strftime("%Y-%m-%d")]
    condition = None
    if start is not None:
        condition = ds.field("ts") >= start.to_pydatetime()
    if not include_shadow:
        shadow = ds.field("shadow") == False  # noqa: E712 - an Arrow expression
        condition = shadow if condition is None else condition & shadow
    frames: list[pd.DataFrame] = []
    found = 0
    for day in reversed(days):  # newest first, so ``last`` stops early
        files = sorted(str(f) for f in day.glob(f"{PART_PREFIX}*.parquet"))
        if not files:
            continue
        frame = _read_files(files, condition)
        if len(frame):
            frames.append(frame)
            found += len(frame)
        if last is not None and found >= last:
            break
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in RESERVED_COLUMNS})
    result = pd.concat(frames[::-1], ignore_index=True)
    result = result.sort_values(["ts", "request_id", "row"], kind="stable",
                                ignore_index=True)
    return result.tail(last).reset_index(drop=True) if last is not None else result


def _read_files(files: list[str], condition: Any) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        return ds.dataset(files, format="parquet").to_table(filter=condition).to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        # a column typed differently in some files (say, all missing in one request):
        # read them one by one and let pandas reconcile the types
        parts = [ds.dataset(f, format="parquet").to_table(filter=condition).to_pandas()
                 for f in files]
        return pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
