"""forgeline.fairness: fairlearn's figures per group, bootstrap intervals, limits."""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

from forgeline.errors import InvalidSpec
from forgeline.fairness import Limit, check_limits, group_fairness, parse_limit


@pytest.fixture(scope="module")
def case() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    n = 3000
    group = rng.choice(["a", "b", "c"], n, p=[0.6, 0.38, 0.02]).astype(object)
    group[:5] = "tiny"  # 5 rows: counted, not compared
    y = rng.random(n) < np.where(group == "a", 0.3, 0.5)
    p = np.clip(0.3 * y + rng.random(n) * 0.7 - np.where(group == "b", 0.05, 0.0), 0, 1)
    return y, p >= 0.5, p, group


def test_the_figures_are_fairlearns_with_intervals_around_them(case) -> None:
    y, yhat, p, group = case
    found = group_fairness("binary", y, yhat, group, positive=True, proba=p, resamples=200)
    big = group != "tiny"
    y, yhat, p, group = y[big], yhat[big], p[big], group[big]
    assert found["excluded"] == ["tiny"] and found["sizes"]["tiny"] == 5
    expected = {"demographic_parity_difference": demographic_parity_difference,
                "demographic_parity_ratio": demographic_parity_ratio,
                "equalized_odds_difference": equalized_odds_difference,
                "equalized_odds_ratio": equalized_odds_ratio}
    for name, metric in expected.items():
        value = found["metrics"][name]
        assert value["value"] == pytest.approx(metric(y, yhat, sensitive_features=group))
        low, high = value["ci"]
        assert low < value["value"] < high, name
    frame = MetricFrame(metrics={"selection_rate": selection_rate, "tpr": true_positive_rate,
                                 "fpr": false_positive_rate},
                        y_true=y, y_pred=yhat, sensitive_features=group).by_group
    rows = {r["group"]: r for r in found["groups"]}
    assert list(rows) == ["a", "b", "c"] and rows["c"]["count"] == int((group == "c").sum())
    for name, row in rows.items():
        for metric in ("selection_rate", "tpr", "fpr"):
            assert row[metric] == pytest.approx(frame.loc[name, metric])
        inside = group == name
        assert row["mean_predicted"] == pytest.approx(p[inside].mean())
        assert row["observed_rate"] == pytest.approx(y[inside].mean())
        assert row["brier"] == pytest.approx(np.mean((p[inside] - y[inside]) ** 2))
    # the small group's interval is wider than the large one's: its gap is less certain
    width = {k: r["selection_rate_ci"][1] - r["selection_rate_ci"][0] for k, r in rows.items()}
    assert width["c"] > 2 * width["a"]


def test_the_bootstrap_is_seeded_and_can_be_turned_off(case) -> None:
    y, yhat, _, group = case
    one = group_fairness("binary", y, yhat, group, positive=True, resamples=50, seed=1)
    two = group_fairness("binary", y, yhat, group, positive=True, resamples=50, seed=1)
    other = group_fairness("binary", y, yhat, group, positive=True, resamples=50, seed=2)
    assert one["metrics"] == two["metrics"] and one["metrics"] != other["metrics"]
    off = group_fairness("binary", y, yhat, group, positive=True, resamples=0)
    assert all(m["ci"] == [None, None] for m in off["metrics"].values())
    assert off["metrics"]["equalized_odds_difference"]["value"] == pytest.approx(
        one["metrics"]["equalized_odds_difference"]["value"])


def test_multiclass_and_regression_say_what_they_compute() -> None:
    group = np.array(["a", "b"] * 50)
    pred = np.where(group == "a", "x", np.array(["y", "z"] * 50))
    multi = group_fairness("multiclass", pred, pred, group, classes=["x", "y", "z"])
    assert multi["groups"][0]["selection_rate"] == {"x": 1.0, "y": 0.0, "z": 0.0}
    assert multi["metrics"]["demographic_parity_difference"]["value"] == pytest.approx(1.0)
    values = np.arange(100, dtype=float)
    reg = group_fairness("regression", values, values + 1, group)
    assert reg["metrics"] == {} and reg["groups"][0]["mean_prediction"] == pytest.approx(50.0)


def test_no_group_large_enough_to_compare_leaves_the_figures_undefined() -> None:
    """One row per group (an identifier named sensitive): every group is excluded, every
    figure undefined, and a limit on it fails rather than passing or raising."""
    y = np.array([0, 1] * 20)
    ids = np.array([f"id{i}" for i in range(40)], dtype=object)
    for task, classes in (("binary", None), ("multiclass", [0, 1]), ("regression", None)):
        found = group_fairness(task, y, y, ids, positive=1, classes=classes, resamples=10)
        assert found["groups"] == [] and len(found["excluded"]) == 40, task
        assert all(m["value"] is None for m in found["metrics"].values()), task
    found = group_fairness("binary", y, y, ids, positive=1, resamples=10)
    [row] = check_limits([parse_limit("demographic_parity_difference <= 0.1")], {"id": found})
    assert row["value"] is None and not row["passed"]


def test_limits_parse_check_and_refuse_what_they_cannot_read() -> None:
    limit = parse_limit(" equalized_odds_difference<=0.1 ")
    assert limit == Limit("equalized_odds_difference", "<=", 0.1)
    assert limit.holds(0.1) and not limit.holds(0.2) and not limit.holds(None)
    assert parse_limit("demographic_parity_ratio >= 0.8").holds(0.9)
    fairness = {"g": {"metrics": {"equalized_odds_difference": {"value": 0.3,
                                                                "ci": [0.1, 0.5]}}}}
    [checked] = check_limits([limit], fairness)
    assert checked == {"limit": "equalized_odds_difference <= 0.1", "column": "g",
                       "metric": "equalized_odds_difference", "value": 0.3,
                       "ci": [0.1, 0.5], "passed": False}
    with pytest.raises(InvalidSpec, match="Unknown fairness metric 'parity'") as caught:
        parse_limit("parity <= 0.1")
    assert "equalized_odds_ratio" in caught.value.hint
    with pytest.raises(InvalidSpec, match="expected 'metric op number'"):
        parse_limit("equalized_odds_difference ~ 0.1")
