"""The server's write queue to the prediction log (:mod:`forgeline.store.predictions`).

``append`` never blocks and never raises: records wait in a bounded queue (counted in
rows) that a background thread assembles into the log's columns and hands to
:func:`~forgeline.store.predictions.write_predictions` every ``flush_rows`` rows or
``flush_interval_s`` seconds; when the queue is full the record is dropped and counted.

Personal data never reaches a file in clear: the columns named ``personal`` (the model
package's personal columns, used as features or not) and every column whose values look
personal in a batch (:func:`~forgeline.data.personal.detect_personal`: text, and numbers
such as a card number or, in a column named for it, a phone number stored as an integer;
the column then stays hashed for good) are written as their keyed HMAC-SHA256 hex, so
labels and audits can still join on them by hashing the value with the same key (a whole
number is hashed as its integer text, ``4111111111111111``, however it arrived). A column
judged not personal on a full sample (``SAMPLE`` values) is not examined again.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Collection, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgeline.data.personal import SAMPLE, detect_personal
from forgeline.errors import InvalidInput
from forgeline.packaging.coercion import stack_frames
from forgeline.serving.runtime import Prediction
from forgeline.store.predictions import proba_columns, write_predictions
from forgeline.util.privacy import keyed_hash_series

__all__ = ["PredictionLog"]

log = logging.getLogger("forgeline.serving")

class PredictionLog:
    """Asynchronous, bounded, append-only Parquet log of one model's predictions.

    Args:
        root: the log root (:func:`~forgeline.store.predictions.prediction_log_root`).
        model: the model name; its records go under ``<root>/<model>``.
        max_queue_records: rows waiting to be written at most; beyond, records drop.
        flush_rows: write as soon as this many rows wait.
        flush_interval_s: ...or when the oldest has waited this long.
        classes: class labels, in the order of ``Prediction.proba``'s columns, naming
            the ``proba_<class>`` columns (``proba_0``, ``proba_1``, ... when None).
        personal: input columns always stored as keyed hashes.
        hash_key: the HMAC key (:func:`~forgeline.config.hash_key`); without one, a
            column that is or looks personal is not stored at all rather than in clear.
        detect: also hash the columns whose values look personal.

    Attributes:
        personal: the columns stored hashed (grows as detection finds more).
        dropped: records (rows) that never reached a file: queue full, log closed, or
            a failed write.
        written: rows written.
        failed_writes: files that could not be written.
    """

    def __init__(self, root: Path, model: str, *, max_queue_records: int = 100_000,
                 flush_rows: int = 5_000, flush_interval_s: float = 5.0,
                 classes: Sequence[Any] | None = None, personal: Collection[str] = (),
                 hash_key: bytes | None = None, detect: bool = True) -> None:
        if not model or "/" in model or "\\" in model or model in (".", ".."):
            raise InvalidInput(f"Invalid model name {model!r} for the prediction log.")
        if max_queue_records < 1 or flush_rows < 1 or flush_interval_s <= 0:
            raise InvalidInput("The prediction log needs max_queue_records >= 1, "
                               "flush_rows >= 1 and flush_interval_s > 0.")
        self.root = Path(root)
        self.model = model
        self.directory = self.root / model
        self.max_queue_records = max_queue_records
        self.flush_rows = flush_rows
        self.flush_interval_s = flush_interval_s
        self.classes = None if classes is None else list(classes)
        self.personal = set(personal)
        self.hash_key = hash_key
        self.detect = detect
        self._cleared: set[str] = set()
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
            write_predictions(self.root, self.model, *self._frames(batch))
            with self._cond:
                self.written += rows
        except Exception as e:  # a full disk, a permission, a value Arrow refuses
            with self._cond:
                self.dropped += rows
                self.failed_writes += 1
            log.warning("prediction log %s: could not write %d rows: %s", self.directory,
                        rows, e)

    def _frames(self, batch: list[tuple[Any, ...]]
                ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """The log's columns, the inputs and the outputs of the whole batch, built
        column-wise (not record by record)."""
        ids, counts, shadows, frames, predictions, versions, runtimes, stamps, classes = zip(
            *batch, strict=True)
        per_request = np.fromiter(chain.from_iterable(counts), dtype=np.int64)
        rows = np.fromiter((len(f) for f in frames), dtype=np.int64, count=len(frames))
        starts = np.repeat(np.cumsum(per_request) - per_request, per_request)
        inputs = self._private(stack_frames(frames))
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
        return table, inputs, pd.concat(outputs, axis=1)

    def _private(self, inputs: pd.DataFrame) -> pd.DataFrame:
        """``inputs`` with every personal column hashed (or left out without a key)."""
        if self.detect:
            unknown = [c for c in inputs.columns if c not in self.personal
                       and c not in self._cleared
                       and not pd.api.types.is_bool_dtype(inputs[c].dtype)
                       and not pd.api.types.is_datetime64_any_dtype(inputs[c].dtype)]
            if unknown:
                found = detect_personal(inputs, unknown)
                self.personal.update(found)
                # judged on a full sample and not personal: not examined again
                self._cleared.update(c for c in unknown if c not in found
                                     and inputs[c].count() >= SAMPLE)
        present = [c for c in inputs.columns if c in self.personal]
        if not present:
            return inputs
        if self.hash_key is None:
            return inputs.drop(columns=present)
        out = inputs.copy()
        for name in present:
            out[name] = keyed_hash_series(out[name], self.hash_key)
        return out

    def _proba_names(self, prediction: Prediction, classes: Sequence[Any] | None
                     ) -> list[str] | None:
        """The ``proba_<class>`` column names of a record; None without probabilities."""
        if prediction.proba is None:
            return None
        width = np.shape(prediction.proba)[1]
        names = classes if classes is not None else self.classes
        if names is None or len(names) != width:
            names = range(width)
        return proba_columns(names)


def _close_at_exit(ref: weakref.ref[PredictionLog]) -> None:
    log_ = ref()
    if log_ is not None:
        log_.close(timeout_s=5.0)
