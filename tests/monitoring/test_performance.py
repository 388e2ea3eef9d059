"""Performance: CBPE estimates before labels, realised metrics after, the feedback join."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from forgeline.errors import InvalidInput
from forgeline.monitoring import MonitorConfig, monitor, performance
from forgeline.monitoring.perf import estimate_binary
from forgeline.monitoring.windows import split_windows
from forgeline.store.predictions import join_feedback
from tests.monitoring.conftest import Model, log_frame


def test_cbpe_is_close_to_the_truth_on_calibrated_probabilities() -> None:
    rng = np.random.default_rng(0)
    p = rng.beta(2, 3, 50_000)  # calibrated: y ~ Bernoulli(p)
    y = rng.random(len(p)) < p
    predicted = p >= 0.5
    estimate = estimate_binary(p, predicted)
    truth = {"accuracy": accuracy_score(y, predicted), "precision": precision_score(y, predicted),
             "recall": recall_score(y, predicted), "f1": f1_score(y, predicted),
             "roc_auc": roc_auc_score(y, p)}
    for name, value in truth.items():
        assert estimate[name] == pytest.approx(value, abs=0.01), name


def test_estimated_and_realised_metrics_beside_the_test_metrics(model: Model) -> None:
    log, y = log_frame(model, 6_000, 31, days=3)
    windows = split_windows(log, MonitorConfig())
    result = performance(log, y.where(np.arange(len(y)) % 2 == 0), "binary", (0, 1),
                         model.predictor.metrics, windows=windows,
                         calibration=model.predictor.profile["prediction"]["calibration"])
    assert result.labelled == 3_000 and result.calibrated
    truth = roc_auc_score(y[::2], log["proba_1"][::2])
    assert result.realized["roc_auc"] == pytest.approx(truth)
    assert result.estimated["roc_auc"] == pytest.approx(truth, abs=0.02)
    assert result.reference["roc_auc"] == model.predictor.metrics["roc_auc"]
    assert result.degraded == []
    assert [w["window"] for w in result.windows] == ["2025-03-01", "2025-03-02", "2025-03-03"]
    for w in result.windows:
        assert w["labelled"] == 1_000 and w["realized"]["accuracy"] is not None
        assert w["estimated"]["accuracy"] == pytest.approx(w["realized"]["accuracy"], abs=0.05)


def test_a_worse_model_is_flagged_degraded(model: Model) -> None:
    log, y = log_frame(model, 2_000, 32)
    wrong = 1 - y  # labels flipped: the model looks terrible
    result = performance(log, wrong, "binary", (0, 1), model.predictor.metrics)
    assert "roc_auc" in result.degraded and "accuracy" in result.degraded


def test_join_feedback_counts_matches_and_keeps_every_prediction() -> None:
    predictions = pd.DataFrame({"request_id": ["a", "b", "c", "d"], "x": [1, 2, 3, 4]})
    labels = pd.DataFrame({"request_id": ["b", "d", "d", "zz", "yy", None, "c"],
                           "is_fraud": [1, 0, 1, 1, 0, 1, None]})
    joined, stats = join_feedback(predictions, labels, "request_id", "is_fraud")
    assert joined["is_fraud"].tolist()[1::2] == [1, 1]  # the last label of a repeated id
    assert joined["is_fraud"].isna().tolist() == [True, False, True, False]
    assert (stats.labels, stats.matched, stats.unmatched) == (6, 3, 2)
    assert (stats.labelled, stats.duplicate_ids, stats.missing_labels) == (2, 1, 1)
    assert stats.unmatched_examples == ("zz", "yy")
    assert "2 of 6 label ids match no prediction" in stats.message


def test_labels_whose_ids_match_nothing_give_a_message_not_a_crash(model: Model) -> None:
    log, _ = log_frame(model, 500, 33)
    labels = pd.DataFrame({"request_id": ["x1", "x2", "x3"], "y": [0, 1, 1]})
    result = monitor(model.predictor, log, labels=labels, config=MonitorConfig(window=None))
    assert result.performance.labelled == 0 and result.performance.realized == {}
    assert result.performance.estimated["roc_auc"] is not None  # still estimated
    (warning,) = [w for w in result.warnings if w.startswith("labels:")]
    assert "none of the 3 label ids match a prediction (e.g. 'x1', 'x2', 'x3')" in warning


def test_ids_match_across_types_and_bad_tables_are_refused() -> None:
    predictions = pd.DataFrame({"id": [1, 2, 3]})
    ids = pd.Series(["2", 3.0], dtype=object)  # text from one file, floats from another
    joined, stats = join_feedback(predictions, pd.DataFrame({"id": ids, "y": [1, 0]}),
                                  "id", "y")
    assert stats.matched == 2 and joined["y"].notna().sum() == 2
    with pytest.raises(InvalidInput, match="The labels have no column 'label'"):
        join_feedback(predictions, pd.DataFrame({"id": [1]}), "id", "label")
    with pytest.raises(InvalidInput, match="The predictions already have a column 'id'"):
        join_feedback(predictions, pd.DataFrame({"id": [1]}), "id", "id")


def test_fairness_per_window_on_the_labelled_rows(model: Model) -> None:
    """A sensitive request field logged beside the inputs gets fairlearn's figures,
    overall and per window, on the labelled rows only."""
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    log, y = log_frame(model, 3_000, 32, days=3)
    log["band"] = np.where(np.arange(len(log)) % 3 == 0, "young", "old")
    labels = y.where(np.arange(len(y)) % 2 == 0)
    windows = split_windows(log, MonitorConfig())
    result = performance(log, labels, "binary", (0, 1), model.predictor.metrics,
                         windows=windows, sensitive=["band", "absent"])
    known = labels.notna().to_numpy()
    truth, chosen = y[known].astype(int), log["prediction"][known].astype(int)
    groups = log["band"][known]
    assert set(result.fairness) == {"band"}
    assert result.fairness["band"]["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(truth, chosen, sensitive_features=groups))
    first = (windows.ids == 0) & known
    assert result.windows[0]["fairness"]["band"]["demographic_parity_difference"] == (
        pytest.approx(demographic_parity_difference(
            y[first].astype(int), log["prediction"][first].astype(int),
            sensitive_features=log["band"][first])))
