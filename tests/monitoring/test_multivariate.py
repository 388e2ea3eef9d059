"""Multivariate drift: a broken correlation raises the PCA reconstruction error."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forgeline.data.pca import fit_reference
from forgeline.monitoring import MonitorConfig, monitor
from forgeline.monitoring.multivariate import multivariate_drift
from tests.monitoring.conftest import FEATURES, NUMERIC, Model, make_frame

CORRELATED = NUMERIC[:6]  # six normal columns, N(10, 2) each


def _frame(n: int, seed: int, correlated: bool) -> pd.DataFrame:
    frame = make_frame(n, seed)[FEATURES]
    rng = np.random.default_rng(seed + 1)
    common = rng.normal(size=n)
    for name in CORRELATED:
        own = rng.normal(size=n)
        driver = common if correlated else rng.normal(size=n)
        frame[name] = 10 + 2 * (0.9 * driver + np.sqrt(1 - 0.81) * own)  # same marginal
    return frame


def test_a_correlation_change_no_univariate_test_sees(model: Model) -> None:
    reference = _frame(20_000, 1, correlated=True)
    config = MonitorConfig(window=2_000)
    same = monitor(model.predictor, _frame(10_000, 7, correlated=True), reference=reference,
                   config=config)
    broken = monitor(model.predictor, _frame(10_000, 7, correlated=False),
                     reference=reference, config=config)
    for result in (same, broken):
        assert not any(result.features[c].drifted for c in CORRELATED)
        assert result.dataset.n_drifted == 0
    assert not same.multivariate.drifted
    assert broken.multivariate.drifted
    assert broken.multivariate.error > broken.multivariate.upper
    assert len(broken.multivariate.windows) == 5
    assert all(w["drifted"] for w in broken.multivariate.windows)
    assert not any(w["drifted"] for w in same.multivariate.windows)
    assert broken.values()["multivariate_drifted"] == 1.0


def test_large_data_is_measured_on_evenly_spaced_rows(model: Model,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("forgeline.monitoring.multivariate.MAX_ERROR_ROWS", 2_500)
    reference = _frame(20_000, 1, correlated=True)
    result = monitor(model.predictor, _frame(10_000, 8, correlated=False),
                     reference=reference, config=MonitorConfig(window=2_000))
    assert result.multivariate.step == 4 and result.multivariate.rows == 2_500
    assert result.multivariate.drifted
    assert [w["rows"] for w in result.multivariate.windows] == [500] * 5


def test_the_reference_section_is_small_json_and_bounded() -> None:
    train, test = _frame(5_000, 3, True)[NUMERIC], _frame(2_000, 4, True)[NUMERIC]
    train.loc[::7, "n3"] = np.nan  # imputed with the median
    section = fit_reference(train, test)
    assert section is not None and json.loads(json.dumps(section)) == section
    assert 1 <= len(section["components"]) <= 10
    assert len(section["components"][0]) == len(NUMERIC) == len(section["medians"])
    assert section["rows"] == 2_000 and section["chunk_size"] == 200
    # a held-out sample from the same distribution stays inside its band
    errors_ok = multivariate_drift(section, _errors(section, _frame(3_000, 9, True)), 3.0)
    assert not errors_ok.drifted
    assert fit_reference(train[["n0"]], test[["n0"]]) is None  # one column: nothing to do


def _errors(section: dict, frame: pd.DataFrame) -> np.ndarray:
    from forgeline.data.pca import reconstruction_errors

    return reconstruction_errors(section, {c: frame[c].to_numpy(dtype=float)
                                           for c in section["columns"]})
