"""Prometheus gauges: set from a result, updated in place, stale label sets removed."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from forgeline.monitoring import MonitorConfig, monitor, register_gauges
from tests.monitoring.conftest import FEATURES, Model, log_frame, make_frame


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_gauges_follow_the_latest_result(model: Model) -> None:
    registry = CollectorRegistry()
    shifted = monitor(model.predictor, log_frame(model, 3_000, 51, shifted=True)[0])
    register_gauges(shifted, registry)
    m = shifted.model
    assert _value(registry, "forgeline_dataset_drift_share", model=m) == shifted.dataset.share
    assert _value(registry, "forgeline_feature_drifted", model=m, feature="c0") == 1.0
    assert _value(registry, "forgeline_drift_score", model=m, feature="n0",
                  method="wasserstein") == shifted.features["n0"].stats["wasserstein"]
    assert _value(registry, "forgeline_estimated_metric", model=m, metric="roc_auc") == \
        shifted.performance.estimated["roc_auc"]
    assert _value(registry, "forgeline_prediction_drift_score", model=m,
                  method="psi") is not None
    assert _value(registry, "forgeline_monitor_rows", model=m) == 3_000

    # the next run replaces the values; a column it lacks loses its samples
    clean = monitor(model.predictor, make_frame(600, 52)[FEATURES].drop(columns=["c0"]),
                    config=MonitorConfig(window=None))
    register_gauges(clean, registry)
    assert _value(registry, "forgeline_feature_drifted", model=m, feature="c0") is None
    assert _value(registry, "forgeline_feature_drifted", model=m, feature="n0") == 0.0
    assert _value(registry, "forgeline_drift_score", model=m, feature="n0",
                  method="ks") == clean.features["n0"].stats["ks"]
    assert _value(registry, "forgeline_estimated_metric", model=m, metric="roc_auc") is None
    assert b"forgeline_dataset_drift_share" in generate_latest(registry)


def test_gauges_exist_before_the_first_result_and_multiprocess_files_get_nan(
        model: Model, monkeypatch, tmp_path) -> None:
    import math

    from forgeline.monitoring.gauges import GAUGES, ensure_gauges

    registry = CollectorRegistry()
    gauges = ensure_gauges(registry)
    assert set(gauges) == set(GAUGES) and ensure_gauges(registry) == gauges  # created once
    text = generate_latest(registry).decode()
    assert "# TYPE forgeline_dataset_drift_share gauge" in text
    assert "forgeline_dataset_drift_share{" not in text  # no sample yet

    full = monitor(model.predictor, make_frame(600, 53)[FEATURES],
                   config=MonitorConfig(window=None))
    register_gauges(full, registry)
    # Several server workers share prometheus_client's files, which cannot forget a label
    # set: a feature the next result lacks reads NaN there instead of disappearing.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    fewer = monitor(model.predictor, make_frame(600, 54)[FEATURES].drop(columns=["c0"]),
                    config=MonitorConfig(window=None))
    register_gauges(fewer, registry)
    assert math.isnan(_value(registry, "forgeline_feature_drifted", model=full.model,
                             feature="c0"))
    assert _value(registry, "forgeline_feature_drifted", model=full.model, feature="n0") == 0.0
