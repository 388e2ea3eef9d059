"""One request's way through the models: validate, predict, shadow, log.

Shared by ``/predict`` and the OIP ``infer`` routes, so both validate, batch, shadow and
log the same way. The shadow model is scored after the response's own prediction, in a
background task with its own batcher, so it never delays an answer; when it falls too far
behind, requests are not shadowed (and counted) rather than queued without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import numpy as np
import pandas as pd

from forgeline.errors import ForgelineError, InvalidInput
from forgeline.serving.batching import BatchHook, Part, rows_of
from forgeline.serving.metrics import ServingMetrics, version_label
from forgeline.serving.models import PRIMARY, Deployment, ServedModel
from forgeline.serving.runtime_base import Prediction

__all__ = ["PredictionSink", "Scored", "Scorer", "json_array"]

log = logging.getLogger("forgeline.serving")

Rows = Sequence[Mapping[str, Any]] | pd.DataFrame
_INLINE_ROWS = 64  # validated on the event loop up to here; bigger bodies in a thread
_SHADOW_BACKLOG_BATCHES = 8  # skip shadowing when this many batches wait already


class PredictionSink(Protocol):
    """What the server needs of a prediction log: ``serving.predlog.PredictionLog``.

    ``append`` takes one model call: the requests' ids (or one id for all rows), their
    row counts and whether each was a shadow prediction. It must not block: a log that
    cannot keep up drops records and counts them in ``dropped`` (cumulative, in rows),
    which ``/metrics`` reports. ``flush()``, when the log has it, is called at shutdown.
    """

    dropped: int

    def append(self, request_id: str | Sequence[str], frame: pd.DataFrame,
               prediction: Prediction, *, version: int | None, runtime: str,
               shadow: bool | Sequence[bool] = False, rows: Sequence[int] | None = None,
               ts: float | None = None, classes: Sequence[Any] | None = None) -> bool: ...


@dataclass(frozen=True, slots=True)
class Scored:
    """What a request got: the model (and its role) and the prediction."""

    model: ServedModel
    role: str
    prediction: Prediction


def json_array(values: np.ndarray | None) -> Any:
    """An array orjson can write: numeric arrays as they are, object arrays as lists."""
    if values is None:
        return None
    if values.dtype == object or values.dtype.kind in "USMm":
        return values.tolist()
    return np.ascontiguousarray(values)


class Scorer:
    """Scores requests against a deployment, shadows them, and logs them.

    Logging and batch metrics happen once per model call (the hook :meth:`on_batch`
    gives each model's batcher), not once per request.

    Args:
        deployment: the served models.
        metrics: where request-level counts go.
        prediction_log: an optional :class:`PredictionSink`; None logs nothing.
    """

    def __init__(self, deployment: Deployment, metrics: ServingMetrics,
                 prediction_log: PredictionSink | None = None) -> None:
        self.deployment = deployment
        self.metrics = metrics
        self.prediction_log = prediction_log
        self._shadow_tasks: set[asyncio.Task[None]] = set()
        self._log_failed = False

    async def score(self, rows: Rows, request_id: str, model: ServedModel | None = None,
                    role: str = PRIMARY) -> Scored:
        """Validate ``rows`` and predict them with ``model`` (routed by id when None).

        Raises:
            InvalidInput: the rows do not match the signature, or the model refused them.
            Exception: an unexpected model failure (the caller answers 500).
        """
        if model is None:
            model, role = self.deployment.route(request_id)
        model.acquire()  # keeps this version alive through a swap until we are done
        try:
            part = await self._validate(model, rows)
            extras = (ignored_fields(rows, model.signature.names)
                      if self.prediction_log is not None else None)
            try:
                prediction = await model.predict(part, (request_id, False, extras))
            except ValueError as e:  # how estimators refuse input they cannot score
                raise InvalidInput(f"The model could not score the input: {e}",
                                   hint="Check the values against the model signature.") from e
        finally:
            model.release()
        self.metrics.model_requests.labels(model.name, version_label(model.version),
                                           role).inc()
        self._shadow(model, part, request_id)
        return Scored(model, role, prediction)

    def on_batch(self, model: ServedModel) -> BatchHook:
        """The hook of ``model``'s batcher: batch metrics and the prediction log."""
        submit = partial(self.metrics.submit_batch, model.name, model.version,
                         model.signature)

        def record(frame: pd.DataFrame, prediction: Prediction, tags: list[Any],
                   rows: list[int]) -> None:
            submit(frame, prediction)
            if self.prediction_log is not None:
                ids, shadows = [t[0] for t in tags], [t[1] for t in tags]
                extras = [t[2] if len(t) > 2 else None for t in tags]
                logged = frame if all(e is None for e in extras) else with_fields(
                    frame, extras, rows)
                self._log(model, logged, prediction, ids, shadows, rows)

        return record

    async def _validate(self, model: ServedModel, rows: Rows) -> Part:
        try:
            if len(rows) <= _INLINE_ROWS:
                return model.validate(rows)
            return await asyncio.to_thread(model.validate, rows)
        except ForgelineError:
            raise
        except (TypeError, ValueError, OverflowError) as e:  # values no column could hold
            raise InvalidInput(f"Input does not match the model signature: {_nested(rows) or e}.",
                               hint="Send numbers, strings, booleans or null as values."
                               ) from None

    # -- shadow -------------------------------------------------------------------------
    def _shadow(self, served_by: ServedModel, part: Part, request_id: str) -> None:
        shadow = self.deployment.shadow
        if shadow is None or shadow is served_by or shadow.batcher is None:
            return
        if shadow.batcher.backlog_rows > _SHADOW_BACKLOG_BATCHES * \
                self.deployment.config.batching.max_batch_size:
            self.metrics.shadow_skipped.inc()
            return
        shadow.acquire()
        task = asyncio.get_running_loop().create_task(
            self._score_shadow(shadow, served_by, part, request_id))
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)

    async def _score_shadow(self, shadow: ServedModel, served_by: ServedModel,
                            part: Part, request_id: str) -> None:
        try:
            if shadow.signature.inputs != served_by.signature.inputs:
                part = shadow.signature.validate(served_by.signature.combine([part]))
            await shadow.predict(part, (request_id, True))
        except Exception as e:
            self.metrics.shadow_errors.labels(shadow.name, version_label(shadow.version)).inc()
            log.warning("shadow %s failed on request %s: %s", shadow.label, request_id, e)
            return
        finally:
            shadow.release()
        self.metrics.shadow_predictions.labels(shadow.name, version_label(shadow.version)
                                               ).inc(rows_of(part))

    async def drain(self, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) for the shadow predictions still running."""
        if self._shadow_tasks:
            await asyncio.wait(set(self._shadow_tasks), timeout=timeout_s)

    # -- the prediction log -------------------------------------------------------------
    def _log(self, model: ServedModel, frame: pd.DataFrame, prediction: Prediction,
             ids: Sequence[str], shadows: Sequence[bool], rows: Sequence[int]) -> None:
        sink = self.prediction_log
        if sink is None:
            return
        try:
            sink.append(ids, frame, prediction, version=model.version,
                        runtime=model.runtime.name, shadow=shadows, rows=rows,
                        ts=time.time(), classes=model.signature.classes)
            self.metrics.sync_log_dropped(int(sink.dropped))
        except Exception:  # the log must never fail a request
            if not self._log_failed:
                log.exception("the prediction log failed; predictions go unlogged")
                self._log_failed = True


def ignored_fields(rows: Rows, inputs: Sequence[str]) -> pd.DataFrame | None:
    """The request fields the model does not take (logged too, for joins and audits);
    None when there are none. Values that are not scalars are kept as their text."""
    known = set(inputs)
    if isinstance(rows, pd.DataFrame):
        extra = [c for c in rows.columns if c not in known]
        return rows[extra].reset_index(drop=True) if extra else None
    names = list(dict.fromkeys(k for row in rows for k in row if k not in known))
    if not names:
        return None
    return pd.DataFrame({n: [_scalar(row.get(n)) for row in rows] for n in names})


def _scalar(value: Any) -> Any:
    return str(value) if isinstance(value, dict | list | tuple) else value


def with_fields(frame: pd.DataFrame, extras: Sequence[pd.DataFrame | None],
                rows: Sequence[int]) -> pd.DataFrame:
    """``frame`` (the batch's model inputs) beside each request's ignored fields."""
    parts = [e if e is not None else pd.DataFrame(index=range(n))
             for e, n in zip(extras, rows, strict=True)]
    fields = pd.concat(parts, ignore_index=True)
    return pd.concat([frame.reset_index(drop=True), fields], axis=1)


def _nested(rows: Rows) -> str | None:
    """Where the first array or object value sits (a value no column takes), if any."""
    if isinstance(rows, pd.DataFrame):
        rows = rows.to_dict("records")
    for i, row in enumerate(rows):
        for key, value in row.items():
            if isinstance(value, list | dict):
                kind = "an array" if isinstance(value, list) else "an object"
                return f"row {i}, column {key!r}: {kind} is not a value a column takes"
    return None
