"""The prediction log: every request's inputs and outputs, appended to Parquet off the
request path, read back by monitoring and joined to ground truth by request id.

Layout::

    <root>/<model>/date=YYYY-MM-DD/part-<HHMMSSffffff>-<uuid>.parquet

One row per predicted row, with the columns

    request_id  string     the request's id (several rows when it sent several)
    row         int32      the row's position in its request
    ts          timestamp  when it was predicted (UTC, microseconds)
    model_version int64    the model version (-1: a package outside the registry)
    runtime     string     "native" or "onnxruntime"
    shadow      bool       predicted by the shadow model (not what the client got)
    <inputs>               one column per model input, under its signature name; a name
                           that clashes with one of these reserved names (or starts with
                           ``proba_``) is stored as ``input_<name>``
    prediction             the label (classifiers) or value (regression)
    proba_<class>  float64 one per class, for classifiers

``append`` never blocks and never raises: records wait in a bounded queue (counted in
rows) that a background thread writes out every ``flush_rows`` rows or
``flush_interval_s`` seconds; when the queue is full the record is dropped and counted.
Files are written under a temporary name (a leading dot, ignored by readers) and renamed
into place, so a killed process leaves no partial file visible.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from forgeline.errors import InvalidInput
from forgeline.packaging.coercion import stack_frames
from forgeline.serving.runtime import Prediction

if TYPE_CHECKING:
    from forgeline.config import Settings

__all__ = ["RESERVED_COLUMNS", "PredictionLog", "prediction_log_root", "read_predictions",
           "stored_name"]

log = logging.getLogger("forgeline.serving")

RESERVED_COLUMNS = ("request_id", "row", "ts", "model_version", "runtime", "shadow",
                    "prediction")
_INPUT_PREFIX = "input_"
_PART_PREFIX = "part-"


def prediction_log_root(settings: Settings) -> Path:
    """Where prediction logs live by default: ``<home>/predictions``."""
    return (Path(settings.home) / "predictions").absolute()


def stored_name(column: str) -> str:
    """The column name an input is stored under (see the module docstring)."""
    name = str(column)
    while name in RESERVED_COLUMNS or name.startswith("proba_"):
        name = _INPUT_PREFIX + name
    return name


class PredictionLog:
    """Asynchronous, bounded, append-only Parquet log of one model's predictions.

    Args:
        root: the log root (see :func:`prediction_log_root`).
        model: the model name; its records go under ``<root>/<model>``.
        max_queue_records: rows waiting to be written at most; beyond, records drop.
        flush_rows: write as soon as this many rows wait.
        flush_interval_s: ...or when the oldest has waited this long.
        classes: class labels, in the order of ``Prediction.proba``'s columns, naming
            the ``proba_<class>`` columns (``proba_0``, ``proba_1``, ... when None).

    Attributes:
        dropped: records (rows) that never reached a file: queue full, log closed, or
            a failed write.
        written: rows written.
        failed_writes: files that could not be written.
    """

    def __init__(self, root: Path, model: str, *, max_queue_records: int = 100_000,
                 flush_rows: int = 5_000, flush_interval_s: float = 5.0,
                 classes: Sequence[Any] | None = None) -> None:
        if not model or "/" in model or "\\" in model or model in (".", ".."):
            raise InvalidInput(f"Invalid model name {model!r} for the prediction log.")
        if max_queue_records < 1 or flush_rows < 1 or flush_interval_s <= 0:
            raise InvalidInput("The prediction log needs max_queue_records >= 1, "
                               "flush_rows >= 1 and flush_interval_s > 0.")
        self.directory = Path(root) / model
        self.max_queue_records = max_queue_records
        self.flush_rows = flush_rows
        self.flush_interval_s = flush_interval_s
        self.classes = None if classes is None else list(classes)
        self.dropped = 0
        self.written = 0
        self.failed_writes = 0
        self._queue: deque[tuple[Any, ...]] = deque()
        self._queued_rows = 0
        self._in_flight = 0
        self._accepted = 0  # rows ever queued
        self._settled = 0  # of those, rows written or dropped by the writer
        self._closed = False
        self._flush_now = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"predlog-{model}",
                                        daemon=True)
        self._thread.start()
        atexit.register(_close_at_exit, weakref.ref(self))

    # -- the request side ---------------------------------------------------------------
    def append(self, request_id: str | Sequence[str], frame: pd.DataFrame,
               prediction: Prediction, *, version: int | None, runtime: str,
               shadow: bool | Sequence[bool] = False, rows: Sequence[int] | None = None,
               ts: float | None = None, classes: Sequence[Any] | None = None) -> bool:
        """Queue the rows of one request, or of one model call that served several; False
        (and counted in ``dropped``) when the queue is full or the log closed. Never
        blocks on I/O, never raises for it.

        Args:
            request_id: the request's id, or one id per request when ``rows`` is given.
            frame: the validated inputs (not modified afterwards by the caller).
            prediction: what the model answered for them.
            version: the model version (None: not from the registry).
            runtime: the runtime's name.
            shadow: whether the shadow model made this prediction (one flag, or one per
                request with ``rows``).
            rows: how many of the frame's rows each request holds, in order (their sum is
                ``len(frame)``); None: one request holds them all.
            ts: seconds since the epoch; now when None.
            classes: overrides the constructor's ``classes`` for this record.
        """
        total = len(frame)
        if rows is None:
            ids: tuple[str, ...] = (str(request_id),)
            counts: tuple[int, ...] = (total,)
        else:  # plain Python here: numpy's per-call cost would dominate this small work
            ids = (request_id,) if isinstance(request_id, str) else tuple(request_id)
            counts = tuple(rows)
            if len(ids) != len(counts) or sum(counts) != total:
                raise InvalidInput(f"{len(ids)} request ids with {len(counts)} row counts "
                                   f"summing to {sum(counts)} for {total} rows.")
        flags = ((bool(shadow),) * len(counts) if isinstance(shadow, bool | np.bool_)
                 else tuple(shadow))
        if len(flags) != len(counts):
            raise InvalidInput(f"{len(flags)} shadow flags for {len(counts)} requests.")
        record = (ids, counts, flags, frame, prediction,
                  -1 if version is None else int(version), str(runtime),
                  time.time() if ts is None else float(ts), classes)
        with self._cond:
            if self._closed or self._queued_rows + total > self.max_queue_records:
                self.dropped += total
                return False
            self._queue.append(record)
            self._queued_rows += total
            self._accepted += total
            if self._queued_rows >= self.flush_rows:
                self._cond.notify()
        return True

    @property
    def queued(self) -> int:
        """Rows waiting to be written."""
        return self._queued_rows

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Write everything queued before this call (not what arrives meanwhile); True when
        done within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            target = self._accepted  # rows queued after this call need not wait
            self._flush_now = True
            self._cond.notify()
            while self._settled < target and self._thread.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self, timeout_s: float = 10.0) -> bool:
        """Stop accepting records, write what is queued, stop the writer thread.

        Returns:
            True when everything queued was written (or dropped on a failed write) in time.
        """
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    # -- the writer thread --------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                deadline = time.monotonic() + self.flush_interval_s
                while not (self._closed or self._flush_now
                           or self._queued_rows >= self.flush_rows):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch = list(self._queue)
                self._queue.clear()
                rows = self._queued_rows
                self._queued_rows, self._in_flight = 0, rows
                self._flush_now = False
                closed = self._closed
            if batch:
                self._write(batch, rows)
            with self._cond:
                self._settled += self._in_flight
                self._in_flight = 0
                self._cond.notify_all()
            if closed and not self._queue:
                return

    def _write(self, batch: list[tuple[Any, ...]], rows: int) -> None:
        try:
            table = self._frame(batch)
            days = table["ts"].dt.tz_convert(None).to_numpy().astype("datetime64[D]")
            for day in np.unique(days):  # one file per day (almost always just one)
                part = table if days[0] == days[-1] else table[days == day]
                _write_part(self.directory / f"date={day}", part)
            with self._cond:
                self.written += rows
        except Exception as e:  # a full disk, a permission, a value Arrow refuses
            with self._cond:
                self.dropped += rows
                self.failed_writes += 1
            log.warning("prediction log %s: could not write %d rows: %s", self.directory,
                        rows, e)

    def _frame(self, batch: list[tuple[Any, ...]]) -> pd.DataFrame:
        """One frame for the whole batch, built column-wise (not record by record)."""
        ids, counts, shadows, frames, predictions, versions, runtimes, stamps, classes = zip(
            *batch, strict=True)
        per_request = np.fromiter(chain.from_iterable(counts), dtype=np.int64)
        rows = np.fromiter((len(f) for f in frames), dtype=np.int64, count=len(frames))
        starts = np.repeat(np.cumsum(per_request) - per_request, per_request)
        inputs = stack_frames(frames)
        inputs.columns = [stored_name(c) for c in inputs.columns]
        stamps_us = (np.asarray(stamps, dtype=np.float64) * 1e6).astype(np.int64)
        table = pd.DataFrame({
            "request_id": np.repeat(np.asarray([i for r in ids for i in r], dtype=object),
                                    per_request),
            "row": (np.arange(per_request.sum()) - starts).astype(np.int32),
            "ts": pd.to_datetime(np.repeat(stamps_us, rows), unit="us", utc=True),
            "model_version": np.repeat(np.asarray(versions, dtype=np.int64), rows),
            "runtime": np.repeat(np.asarray(runtimes, dtype=object), rows),
            "shadow": np.repeat(np.fromiter(chain.from_iterable(shadows), dtype=bool),
                                per_request)})
        labels = np.concatenate([np.asarray(p.labels).ravel() for p in predictions])
        outputs = [pd.DataFrame({"prediction": labels})]
        names = [self._proba_names(p, c) for p, c in zip(predictions, classes, strict=True)]
        if all(n is not None and n == names[0] for n in names):  # one model: one block
            proba = np.concatenate([np.asarray(p.proba, dtype=np.float64)
                                    for p in predictions])
            outputs.append(pd.DataFrame(proba, columns=names[0]))
        elif any(n is not None for n in names):
            outputs.append(pd.concat([
                pd.DataFrame(index=range(r)) if n is None else
                pd.DataFrame(np.asarray(p.proba, dtype=np.float64), columns=n)
                for p, n, r in zip(predictions, names, rows, strict=True)], ignore_index=True))
        return pd.concat([table, _arrow_ready(inputs), *outputs], axis=1)

    def _proba_names(self, prediction: Prediction, classes: Sequence[Any] | None
                     ) -> list[str] | None:
        """The ``proba_<class>`` column names of a record; None without probabilities."""
        if prediction.proba is None:
            return None
        width = np.shape(prediction.proba)[1]
        names = classes if classes is not None else self.classes
        if names is None or len(names) != width:
            names = range(width)
        return [f"proba_{c}" for c in names]


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

    directory.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%H%M%S%f")
    name = f"{_PART_PREFIX}{stamp}-{uuid.uuid4().hex[:12]}.parquet"
    tmp = directory / f".{name}.tmp"
    try:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False, nthreads=1), tmp,
                       compression="zstd")
        os.replace(tmp, directory / name)
    finally:
        tmp.unlink(missing_ok=True)


def _close_at_exit(ref: weakref.ref[PredictionLog]) -> None:
    log_ = ref()
    if log_ is not None:
        log_.close(timeout_s=5.0)


# -- reading ----------------------------------------------------------------------------
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
        The rows (see the module docstring for the columns); empty when none match.
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
        files = sorted(str(f) for f in day.glob(f"{_PART_PREFIX}*.parquet"))
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
