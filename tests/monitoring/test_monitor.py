"""monitor() end to end on prediction-log frames: windows, prediction drift, JSON."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from forgeline.errors import InvalidInput, InvalidSpec
from forgeline.monitoring import MonitorConfig, monitor
from tests.monitoring.conftest import FEATURES, SHIFTED, Model, log_frame, make_frame


def test_a_log_with_a_drifting_day(model: Model) -> None:
    days = [log_frame(model, 1_500, 60 + d, shifted=d == 2, days=1,
                      start=f"2025-03-0{d + 1}") for d in range(3)]
    log = pd.concat([d[0] for d in days], ignore_index=True)
    y = pd.concat([d[1] for d in days], ignore_index=True)
    result = monitor(model.predictor, log, labels=y)
    assert result.windows_by == "1D" and len(result.windows) == 3
    first, second, third = result.windows
    assert (first["window"], third["window"]) == ("2025-03-01", "2025-03-03")
    assert first["drifted"] == [] and second["drifted"] == []
    assert set(third["drifted"]) == SHIFTED and third["dataset_drift_share"] == 7 / 25
    assert third["prediction"]["drifted"] and not first["prediction"]["drifted"]
    assert result.prediction is not None and result.prediction.method == "wasserstein"
    assert result.period["start"].startswith("2025-03-01")
    assert result.quality.new_columns == []  # the log's own columns are expected
    assert set(result.performance.realized) >= {"roc_auc", "accuracy", "log_loss"}
    assert len(result.multivariate.windows) == 3
    data = result.to_dict()
    text = json.dumps(data, allow_nan=False)  # strict JSON: no NaN anywhere
    assert json.loads(text)["dataset"]["n_drifted"] == result.dataset.n_drifted
    assert data["features"]["n0"]["bins"]["labels"][0].startswith("< ")
    assert data["config"]["thresholds"]["psi"] == 0.1


def test_a_reference_dataframe_replaces_the_profile(model: Model) -> None:
    reference = make_frame(5_000, 70, shifted=True)[FEATURES]
    result = monitor(model.predictor, make_frame(5_000, 71, shifted=True)[FEATURES],
                     reference=reference, config=MonitorConfig(window=None))
    assert result.reference == "reference data" and result.reference_rows == 5_000
    assert result.dataset.n_drifted == 0  # shifted against shifted: no drift


def test_scoring_adds_predictions_to_a_plain_file(model: Model) -> None:
    result = monitor(model.predictor, make_frame(2_000, 72)[FEATURES], score=True,
                     config=MonitorConfig(window=None))
    assert result.prediction is not None and not result.prediction.drifted
    assert result.performance.estimated["roc_auc"] == pytest.approx(
        model.predictor.metrics["roc_auc"], abs=0.03)


@pytest.mark.parametrize(("window", "expected"), [
    (500, ["rows", 4]), ("12h", ["12h", 6]), (None, ["none", 0]), ("auto", ["1D", 3])])
def test_windows(model: Model, window: object, expected: list) -> None:
    result = monitor(model.predictor, log_frame(model, 2_000, 73, days=3)[0],
                     config=MonitorConfig(window=window))
    assert expected[0] in result.windows_by and len(result.windows) == expected[1]


def test_windows_without_times_are_equal_row_chunks(model: Model) -> None:
    result = monitor(model.predictor, make_frame(1_000, 74)[FEATURES])
    assert result.windows_by == "10 equal windows" and len(result.windows) == 10
    assert result.windows[0]["window"] == "rows 1-100"
    with pytest.raises(InvalidSpec, match="Window '1D' needs a time column"):
        monitor(model.predictor, make_frame(100, 74)[FEATURES],
                config=MonitorConfig(window="1D"))


def test_bad_input(model: Model) -> None:
    with pytest.raises(InvalidInput, match="The current data has no rows: nothing to monitor"):
        monitor(model.predictor, make_frame(10, 75)[FEATURES].iloc[:0])
    with pytest.raises(InvalidInput, match="must be a pandas DataFrame, not list"):
        monitor(model.predictor, [1, 2])
    with pytest.raises(InvalidInput, match="labels has 3 values and the current data 10 rows"):
        monitor(model.predictor, make_frame(10, 75)[FEATURES], labels=pd.Series([1, 0, 1]))
    with pytest.raises(InvalidInput, match="The reference profile is missing or malformed"):
        monitor(model.predictor, make_frame(10, 75)[FEATURES], reference={"rows": 3})


def test_inputs_the_log_stored_under_another_name_are_found() -> None:
    from types import SimpleNamespace

    from forgeline.monitoring.inputs import log_inputs as _log_inputs

    log = pd.DataFrame({"request_id": ["a"], "ts": [pd.Timestamp("2025-01-01")],
                        "shadow": [False], "runtime": ["native"], "input_runtime": [3.5],
                        "input_ts": [1.0], "x": [2.0]})
    frame, unmonitored = _log_inputs(log, SimpleNamespace(names=["runtime", "ts", "x"]))
    assert frame["runtime"].tolist() == [3.5] and "input_runtime" not in frame.columns
    assert frame["ts"].tolist() == [pd.Timestamp("2025-01-01")]  # the log's own time
    assert list(unmonitored) == ["ts"] and "stored as 'input_ts'" in unmonitored["ts"]
