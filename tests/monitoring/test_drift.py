"""Drift on synthetic data with known shifts: every shifted column found, no other one."""

from __future__ import annotations

import pytest

from forgeline.errors import InvalidSpec
from forgeline.monitoring import MonitorConfig, monitor
from tests.monitoring.conftest import FEATURES, SHIFTED, Model, make_frame

NO_WINDOWS = MonitorConfig(window=None)


def _drifted(result) -> set[str]:
    return {name for name, f in result.features.items() if f.drifted}


@pytest.mark.parametrize(("rows", "seed", "methods"), [
    (500, 1001, {"numeric": "ks", "categorical": "chisquare"}),
    (50_000, 2001, {"numeric": "wasserstein", "categorical": "jensenshannon"}),
])
def test_exactly_the_shifted_columns_drift(model: Model, rows: int, seed: int,
                                           methods: dict[str, str]) -> None:
    result = monitor(model.predictor, make_frame(rows, seed, shifted=True)[FEATURES],
                     config=NO_WINDOWS)
    assert _drifted(result) == SHIFTED
    for f in result.features.values():
        kind = "numeric" if f.kind == "numeric" else "categorical"
        assert f.method == methods[kind] and f.n_current == rows
    assert result.dataset.n_drifted == len(SHIFTED) and result.dataset.n_features == 25
    assert result.dataset.share == pytest.approx(7 / 25) and not result.dataset.drifted


def test_no_column_drifts_without_a_shift(model: Model) -> None:
    for rows, seed in ((500, 3001), (50_000, 3002)):
        result = monitor(model.predictor, make_frame(rows, seed)[FEATURES], config=NO_WINDOWS)
        assert _drifted(result) == set(), rows


def test_small_sample_tests_hold_their_false_positive_rate(model: Model) -> None:
    """At p < 0.05 a test flags about 5% of unchanged columns by chance (the binned KS a
    little less: it is conservative); the shifted ones are found every time."""
    runs, false, missed = 20, 0, 0
    for seed in range(runs):
        found = _drifted(monitor(model.predictor, make_frame(500, 5000 + seed, True)[FEATURES],
                                 config=NO_WINDOWS))
        false += len(found - SHIFTED)
        missed += len(SHIFTED - found)
    assert missed == 0
    assert false / (runs * (25 - len(SHIFTED))) <= 0.05


def test_methods_and_thresholds_are_configurable(model: Model) -> None:
    frame = make_frame(2_000, 11, shifted=True)[FEATURES]
    config = MonitorConfig(window=None, numeric_method="psi", categorical_method="psi",
                           column_methods={"n0": "ks"}, thresholds={"psi": 0.2},
                           dataset_drift_share=0.2)
    result = monitor(model.predictor, frame, config=config)
    assert result.features["n0"].method == "ks"
    assert {f.method for n, f in result.features.items() if n != "n0"} == {"psi"}
    assert all(f.threshold == 0.2 for f in result.features.values() if f.method == "psi")
    assert result.dataset.drifted  # 5 or more of 25 drifted, at a share threshold of 0.2
    for f in result.features.values():  # every statistic is there whatever the method
        assert "psi" in f.stats and "jensenshannon" in f.stats
        assert ("chisquare_pvalue" in f.stats) == (f.kind == "categorical")


@pytest.mark.parametrize(("config", "message"), [
    ({"thresholds": {"psy": 0.1}}, "unknown method(s) in thresholds: psy"),
    ({"numeric_method": "chisquare"}, "numeric_method is 'chisquare'"),
    ({"column_methods": {"n0": "t-test"}}, "column_methods['n0'] is 't-test'"),
    ({"dataset_drift_share": 0}, "dataset_drift_share must lie in (0, 1]"),
    ({"window": 1.5}, "window must be 'auto'"),
])
def test_a_bad_config_is_refused(config: dict, message: str) -> None:
    with pytest.raises(InvalidSpec, match="Invalid monitoring config") as info:
        MonitorConfig(**config)
    assert message in str(info.value)


def test_a_method_that_does_not_fit_the_column_kind_is_refused(model: Model) -> None:
    config = MonitorConfig(column_methods={"c0": "ks"})
    with pytest.raises(InvalidSpec, match="Drift method 'ks' does not apply to the "
                                          "categorical column 'c0'"):
        monitor(model.predictor, make_frame(100, 1)[FEATURES], config=config)
