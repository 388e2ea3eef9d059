"""Prometheus gauges of a monitoring result, for a server to expose and refresh.

``register_gauges(result, registry)`` creates the gauges in ``registry`` on first use and
sets them from ``result``; calling it again (periodically) updates the same gauges, and
removes label sets that the new result no longer has (a dropped feature). Every gauge has
a ``model`` label, so one registry can carry several models. ``ensure_gauges(registry)``
creates them without values (a server that exports them before the first run).

    forgeline_drift_score{model,feature,method}   score of each statistic of a feature
    forgeline_feature_drifted{model,feature}      1 when the feature drifted
    forgeline_dataset_drift_share{model}          share of drifted features
    forgeline_dataset_drifted{model}              1 when the dataset drifted
    forgeline_prediction_drift_score{model,method}
    forgeline_multivariate_error{model}           mean PCA reconstruction error
    forgeline_missing_share{model,feature}
    forgeline_duplicate_share{model}
    forgeline_realized_metric{model,metric}       on labelled rows
    forgeline_estimated_metric{model,metric}      estimated from confidence (binary)
    forgeline_alerts_fired{model}                 rules that fired
    forgeline_monitor_rows{model}                 rows in the last run
    forgeline_monitor_timestamp_seconds{model}    when the last run finished

In prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, a server with
several workers) the gauges keep the most recent value written by any live process, with
no ``pid`` label; the files cannot forget a label set, so one the new result lacks is set
to NaN instead of removed.
"""

from __future__ import annotations

import math
import os
import threading
import time
import weakref
from typing import Any

from forgeline.exposition import MONITORING_GAUGES
from forgeline.monitoring.result import MonitorResult

__all__ = ["GAUGES", "ensure_gauges", "register_gauges"]

GAUGES = MONITORING_GAUGES  # declared below the stages: alert rules name them too

_LOCK = threading.Lock()
# registry -> (gauges by name, {(gauge name, model): label tuples set last time})
_STATE: weakref.WeakKeyDictionary[Any, tuple[dict[str, Any], dict[tuple[str, str], set]]] = (
    weakref.WeakKeyDictionary())


def _gauges(registry: Any) -> tuple[dict[str, Any], dict[tuple[str, str], set]]:
    from prometheus_client import Gauge

    state = _STATE.get(registry)
    if state is None:
        state = ({name: Gauge(name, doc, labels, registry=registry,
                              multiprocess_mode="livemostrecent")
                  for name, (doc, labels) in GAUGES.items()}, {})
        _STATE[registry] = state
    return state


def _samples(result: MonitorResult) -> dict[str, dict[tuple[str, ...], float]]:
    m = result.model
    out: dict[str, dict[tuple[str, ...], float]] = {name: {} for name in GAUGES}
    for name, f in result.features.items():
        for stat, value in f.stats.items():
            out["forgeline_drift_score"][(m, name, stat)] = value
        out["forgeline_feature_drifted"][(m, name)] = float(f.drifted)
    out["forgeline_dataset_drift_share"][(m,)] = result.dataset.share
    out["forgeline_dataset_drifted"][(m,)] = float(result.dataset.drifted)
    if result.prediction is not None:
        for stat, value in result.prediction.stats.items():
            out["forgeline_prediction_drift_score"][(m, stat)] = value
    if result.multivariate is not None:
        out["forgeline_multivariate_error"][(m,)] = result.multivariate.error
    for name, row in result.quality.columns.items():
        out["forgeline_missing_share"][(m, name)] = row.get("missing_share")
    out["forgeline_duplicate_share"][(m,)] = result.quality.duplicate_share
    if result.performance is not None:
        for metric, value in result.performance.realized.items():
            out["forgeline_realized_metric"][(m, metric)] = value
        for metric, value in result.performance.estimated.items():
            out["forgeline_estimated_metric"][(m, metric)] = value
    out["forgeline_alerts_fired"][(m,)] = float(len(result.fired))
    out["forgeline_monitor_rows"][(m,)] = float(result.rows)
    out["forgeline_monitor_timestamp_seconds"][(m,)] = time.time()
    return {name: {k: float(x) for k, x in samples.items()
                   if x is not None and math.isfinite(float(x))}
            for name, samples in out.items()}


def _multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def ensure_gauges(registry: Any = None) -> dict[str, Any]:
    """The monitoring gauges of ``registry`` (the default one when None), created empty on
    first use: a scrape lists them (without samples) before the first result."""
    if registry is None:
        from prometheus_client import REGISTRY as registry
    with _LOCK:
        return dict(_gauges(registry)[0])


def register_gauges(result: MonitorResult, registry: Any = None) -> dict[str, Any]:
    """Set the monitoring gauges of ``result.model`` in ``registry`` (created on first use).

    Args:
        result: a monitoring result.
        registry: a ``prometheus_client.CollectorRegistry``; the default registry when None.

    Returns:
        The gauges by metric name.
    """
    if registry is None:
        from prometheus_client import REGISTRY as registry
    with _LOCK:
        gauges, previous = _gauges(registry)
        for name, samples in _samples(result).items():
            gauge = gauges[name]
            key = (name, result.model)
            for labels in previous.get(key, set()) - set(samples):
                if _multiprocess():
                    gauge.labels(*labels).set(math.nan)
                else:
                    gauge.remove(*labels)
            for labels, value in samples.items():
                gauge.labels(*labels).set(value)
            previous[key] = set(samples)
    return dict(gauges)
