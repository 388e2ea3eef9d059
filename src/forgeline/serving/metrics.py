"""Prometheus metrics of the server: requests, batches, predictions, models.

Every metric lives in a registry of its own (two apps in one process never collide).
With ``PROMETHEUS_MULTIPROC_DIR`` set before prometheus_client is imported (the server
does so when it starts several workers), each worker writes its values to files there and
``/metrics`` adds up the files of all workers, whichever worker answers the scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from forgeline.packaging.coercion import stack_frames
from forgeline.packaging.llm_features import LLMStats, llm_stats
from forgeline.serving.runtime_base import Prediction

__all__ = ["CONTENT_TYPE_LATEST", "MULTIPROC_ENV", "ServingMetrics", "value_buckets"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            10.0)
_ROWS = tuple(float(2 ** i) for i in range(13))  # 1 .. 4096 rows
_MODEL = ["name", "version"]
_DRAIN_S = 0.25  # how often batch statistics are recorded
_MAX_PENDING = 20_000  # batches waiting for their statistics at most; beyond, skipped

log = logging.getLogger("forgeline.serving")


def value_buckets(profile: dict[str, Any] | None) -> tuple[float, ...]:
    """Histogram buckets for regression predictions: the target's training quantile edges.

    Monitoring compares prediction histograms with the training target, so the same edges
    make the two directly comparable. Falls back to prometheus' default buckets.
    """
    target = (profile or {}).get("target") or {}
    edges = ((target.get("bins") or {}).get("edges") or []) if target.get(
        "kind") == "numeric" else []
    inner = sorted({float(e) for e in edges
                    if isinstance(e, int | float) and math.isfinite(float(e))})
    return tuple(inner) if len(inner) >= 2 else Histogram.DEFAULT_BUCKETS[:-1]


def version_label(version: int | None) -> str:
    return "" if version is None else str(version)


class ServingMetrics:
    """The metrics of one app; safe to update from the batchers' worker threads.

    Args:
        value_buckets: histogram buckets for regression predictions.
    """

    def __init__(self, value_buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS[:-1], *,
                 llm: bool = False) -> None:
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.requests = Counter("forgeline_requests", "HTTP requests answered, by route and "
                                "status.", ["route", "method", "status"], registry=r)
        self.latency = Histogram("forgeline_request_duration_seconds", "Time to answer an "
                                 "HTTP request, by route and status.",
                                 ["route", "method", "status"], buckets=_LATENCY, registry=r)
        self.in_flight = Gauge("forgeline_requests_in_flight", "HTTP requests being answered.",
                               registry=r, multiprocess_mode="livesum")
        self.batch_size = Histogram("forgeline_batch_size_rows", "Rows per model call (one "
                                    "micro-batch).", _MODEL, buckets=_ROWS, registry=r)
        self.predictions = Counter("forgeline_predictions", "Rows predicted, by class "
                                   "(classifiers).", [*_MODEL, "class"], registry=r)
        self.values = Histogram("forgeline_prediction_value", "Predicted values (regression).",
                                _MODEL, buckets=tuple(value_buckets), registry=r)
        self.model_info = Gauge("forgeline_model_info", "1 for each model version loaded to "
                                "answer or shadow requests.", ["name", "version", "runtime"],
                                registry=r, multiprocess_mode="livemax")
        self.model_requests = Counter("forgeline_model_requests", "Requests answered, by model "
                                      "version and role (primary or canary).",
                                      [*_MODEL, "role"], registry=r)
        self.shadow_predictions = Counter("forgeline_shadow_predictions", "Rows scored by the "
                                          "shadow model.", _MODEL, registry=r)
        self.shadow_errors = Counter("forgeline_shadow_errors", "Requests the shadow model "
                                     "failed to score.", _MODEL, registry=r)
        self.shadow_skipped = Counter("forgeline_shadow_skipped", "Requests not shadow-scored "
                                      "because the shadow model was too far behind.",
                                      registry=r)
        self.log_dropped = Counter("forgeline_prediction_log_dropped", "Prediction-log records "
                                   "dropped because the log could not keep up.", registry=r)
        self.stats_skipped = Counter("forgeline_batch_stats_skipped", "Model calls left out "
                                     "of the prediction and input statistics because their "
                                     "recording fell behind.", registry=r)
        self.out_of_range = Counter("forgeline_input_out_of_range", "Input values outside the "
                                    "range seen in training, by column.", ["name", "column"],
                                    registry=r)
        self.unseen = Counter("forgeline_input_unseen_categories", "Input categories not seen "
                              "in training, by column.", ["name", "column"], registry=r)
        self.switches = Counter("forgeline_model_switches", "Times a watched reference moved "
                                "and its new version was swapped in.", ["ref"], registry=r)
        self._llm_seen: LLMStats | None = None
        if llm:  # a model with LLM features: its calls, answers and waiting, synced below
            self._llm_seen = LLMStats()
            self.llm_answers = Counter("forgeline_llm_feature_answers", "LLM feature answers, "
                                       "by source (cache or llm: asked live).", ["source"],
                                       registry=r)
            self.llm_errors = Counter("forgeline_llm_feature_errors", "LLM feature questions "
                                      "that failed (unreachable, refused, timed out).",
                                      registry=r)
            self.llm_invalid = Counter("forgeline_llm_feature_invalid", "LLM answers that "
                                       "named no allowed answer (a missing value).",
                                       registry=r)
            self.llm_seconds = Counter("forgeline_llm_feature_wait_seconds", "Time spent "
                                       "waiting for live LLM answers (divide by the llm "
                                       "answers for the mean latency).", registry=r)
        self._lock = threading.Lock()
        self._log_dropped_seen = 0
        # Batch statistics are computed off the event loop, in one thread of their own that
        # wakes every _DRAIN_S (not once per batch: fewer thread switches, less GIL churn).
        self._pending: list[tuple[Any, ...]] = []
        self._pending_lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._closed = threading.Event()
        self._observer = threading.Thread(target=self._drain_loop, name="forgeline-metrics",
                                          daemon=True)
        self._observer.start()

    # -- recording ----------------------------------------------------------------------
    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        code = str(status)
        self.requests.labels(route, method, code).inc()
        self.latency.labels(route, method, code).observe(seconds)

    def submit_batch(self, name: str, version: int | None, signature: Any,
                     frame: pd.DataFrame, prediction: Prediction) -> None:
        """Record a model call later (:meth:`observe_batches`, in the metrics thread);
        returns at once."""
        with self._pending_lock:
            if len(self._pending) < _MAX_PENDING:
                self._pending.append((name, version, signature, frame, prediction))
                return
        self.stats_skipped.inc()

    async def settle(self) -> None:
        """Record every batch submitted so far (a scrape sees them all)."""
        await asyncio.to_thread(self._drain)

    def close(self) -> None:
        self._closed.set()
        self._observer.join()

    def _drain_loop(self) -> None:
        while not self._closed.wait(_DRAIN_S):
            self._drain()
        self._drain()

    def _sync_llm(self) -> None:
        """Carry the LLM feature counters of this process into the metrics."""
        if self._llm_seen is None:
            return
        now, seen = llm_stats(), self._llm_seen
        self.llm_answers.labels("cache").inc(now.cache_hits - seen.cache_hits)
        self.llm_answers.labels("llm").inc(now.calls - seen.calls)
        self.llm_errors.inc(now.errors - seen.errors)
        self.llm_invalid.inc(now.invalid - seen.invalid)
        self.llm_seconds.inc(max(0.0, now.seconds - seen.seconds))
        self._llm_seen = now

    def _drain(self) -> None:
        with self._drain_lock:
            self._sync_llm()
            with self._pending_lock:
                pending, self._pending = self._pending, []
            calls: dict[tuple[str, int | None, int], list[tuple[Any, ...]]] = {}
            for call in pending:  # per model version: its statistics in one pass
                calls.setdefault((call[0], call[1], id(call[2])), []).append(call)
            for (name, version, _), group in calls.items():
                try:
                    self.observe_batches(name, version, group[0][2], [c[3] for c in group],
                                         [c[4] for c in group])
                except Exception:
                    log.exception("recording the batches of %s failed", name)

    def observe_batches(self, name: str, version: int | None, signature: Any,
                        frames: Sequence[pd.DataFrame], predictions: Sequence[Prediction]
                        ) -> None:
        """Record model calls of one model version: their sizes, the predictions, unusual
        inputs (counted over all of them at once: far cheaper than call by call)."""
        v = version_label(version)
        sizes = self.batch_size.labels(name, v)
        for frame in frames:
            sizes.observe(len(frame))
        frame = frames[0] if len(frames) == 1 else stack_frames(frames)
        labels = np.concatenate([np.asarray(p.labels) for p in predictions])
        if signature.is_classifier:
            try:  # the labels of one model are of one type: no str per row
                classes, counts = np.unique(labels, return_counts=True)
            except TypeError:
                classes, counts = np.unique(labels.astype(object).astype(str),
                                            return_counts=True)
            for cls, count in zip(classes.tolist(), counts.tolist(), strict=True):
                self.predictions.labels(name, v, str(cls)).inc(count)
        else:
            child = self.values.labels(name, v)
            for value in labels.astype(np.float64).tolist():
                if math.isfinite(value):
                    child.observe(value)
        for column, count in signature.out_of_range(frame).items():
            self.out_of_range.labels(name, column).inc(count)
        if signature.unseen_categories == "allow":
            for column, count in signature.unseen(frame).items():
                self.unseen.labels(name, column).inc(count)

    def set_model(self, name: str, version: int | None, runtime: str, *, loaded: bool) -> None:
        """Mark a model version as loaded (1) or no longer loaded."""
        labels = (name, version_label(version), runtime)
        if loaded:
            self.model_info.labels(*labels).set(1)
        elif self.multiprocess_dir:
            self.model_info.labels(*labels).set(0)  # files keep every label ever written
        else:
            with contextlib.suppress(KeyError):
                self.model_info.remove(*labels)

    def sync_log_dropped(self, dropped: int) -> None:
        """Carry a prediction log's cumulative ``dropped`` count into the counter."""
        with self._lock:
            delta = dropped - self._log_dropped_seen
            if delta > 0:
                self._log_dropped_seen = dropped
                self.log_dropped.inc(delta)

    # -- exposition ---------------------------------------------------------------------
    def exposition(self) -> bytes:
        """The text format for ``/metrics``: this process, or every worker's files."""
        if self.multiprocess_dir:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
            return generate_latest(registry)
        return generate_latest(self.registry)

    def process_exit(self) -> None:
        """Tell the multiprocess files this worker is gone (its live gauges disappear)."""
        if self.multiprocess_dir:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)
