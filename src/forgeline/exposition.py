"""The Prometheus metrics Forgeline's model server exports: one list, by name.

Three parts of the code register them (the server's own metrics in
:mod:`forgeline.serving.metrics`, the monitoring gauges in :mod:`forgeline.monitoring.gauges`,
the periodic monitor's in :mod:`forgeline.workflows.serve`); alert rules and dashboards
(:mod:`forgeline.serving.observability`) must name only what they export, and the stages
cannot import one another, so the names live here, below them all. A test compares this
list with what the registries really expose.

Each entry is ``name -> (kind, labels)``; a counter ``x`` is exposed as ``x_total`` (and
``x_created``), a histogram ``x`` as ``x_bucket``, ``x_sum`` and ``x_count`` (see
:func:`series`).
"""

from __future__ import annotations

__all__ = ["MONITOR", "MONITORING_GAUGES", "SERVER", "exported_series", "series"]

SERVER: dict[str, tuple[str, tuple[str, ...]]] = {
    "forgeline_requests": ("counter", ("route", "method", "status")),
    "forgeline_request_duration_seconds": ("histogram", ("route", "method", "status")),
    "forgeline_requests_in_flight": ("gauge", ()),
    "forgeline_batch_size_rows": ("histogram", ("name", "version")),
    "forgeline_predictions": ("counter", ("name", "version", "class")),
    "forgeline_prediction_value": ("histogram", ("name", "version")),
    "forgeline_model_info": ("gauge", ("name", "version", "runtime")),
    "forgeline_model_requests": ("counter", ("name", "version", "role")),
    "forgeline_shadow_predictions": ("counter", ("name", "version")),
    "forgeline_shadow_errors": ("counter", ("name", "version")),
    "forgeline_shadow_skipped": ("counter", ()),
    "forgeline_prediction_log_dropped": ("counter", ()),
    "forgeline_batch_stats_skipped": ("counter", ()),
    "forgeline_input_out_of_range": ("counter", ("name", "column")),
    "forgeline_input_unseen_categories": ("counter", ("name", "column")),
    "forgeline_model_switches": ("counter", ("ref",)),
}
"""The server's own metrics (:class:`forgeline.serving.metrics.ServingMetrics`)."""

MONITORING_GAUGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "forgeline_drift_score": ("Drift statistic of a feature against the reference.",
                              ("model", "feature", "method")),
    "forgeline_feature_drifted": ("1 when the feature drifted, else 0.", ("model", "feature")),
    "forgeline_dataset_drift_share": ("Share of drifted features.", ("model",)),
    "forgeline_dataset_drifted": ("1 when the dataset drifted, else 0.", ("model",)),
    "forgeline_prediction_drift_score": ("Drift statistic of the predictions.",
                                         ("model", "method")),
    "forgeline_multivariate_error": ("Mean PCA reconstruction error.", ("model",)),
    "forgeline_missing_share": ("Share of missing values of a feature.", ("model", "feature")),
    "forgeline_duplicate_share": ("Share of duplicated input rows.", ("model",)),
    "forgeline_realized_metric": ("Metric on labelled production rows.", ("model", "metric")),
    "forgeline_estimated_metric": ("Metric estimated from confidence (CBPE).",
                                   ("model", "metric")),
    "forgeline_alerts_fired": ("Alert rules that fired in the last run.", ("model",)),
    "forgeline_monitor_rows": ("Rows in the last monitoring run.", ("model",)),
    "forgeline_monitor_timestamp_seconds": ("Unix time of the last monitoring run.",
                                            ("model",)),
}
"""The gauges of a monitoring result (:mod:`forgeline.monitoring.gauges`): help, labels."""

MONITOR: dict[str, tuple[str, tuple[str, ...]]] = {
    "forgeline_monitor_runs": ("counter", ("model", "outcome")),
    "forgeline_monitor_duration_seconds": ("gauge", ("model",)),
}
"""The periodic monitor's own metrics (``forgeline serve --monitor-every``)."""

_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count",
                                                              "_created"),
             "gauge": ("",)}


def series(name: str, kind: str) -> tuple[str, ...]:
    """The series names a metric of ``kind`` is exposed as."""
    return tuple(name + suffix for suffix in _SUFFIXES[kind])


def exported_series() -> frozenset[str]:
    """Every series name the model server's ``/metrics`` may hold."""
    kinds = {**{n: k for n, (k, _) in SERVER.items()},
             **dict.fromkeys(MONITORING_GAUGES, "gauge"),
             **{n: k for n, (k, _) in MONITOR.items()}}
    return frozenset(s for name, kind in kinds.items() for s in series(name, kind))
