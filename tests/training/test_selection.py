"""Choosing the model family after tuning: the one-standard-error rule and ``select: best``."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import yaml

import forgeline as fl
from forgeline.entities import Task
from forgeline.errors import InvalidSpec
from forgeline.metrics import get_metric
from forgeline.training.layout import REPORT_PATH, SELECTION_PATH
from forgeline.training.selection import fold_se, select_model
from forgeline.training.spec import load_spec
from forgeline.training.trials import TrialOutcome
from forgeline.workflows.train import train

AUC = get_metric("roc_auc", Task.BINARY)  # higher is better
RMSE = get_metric("rmse", Task.REGRESSION)  # lower is better


def _trial(number: int, model: str, mean: float, spread: float = 0.0,
           state: str = "complete") -> TrialOutcome:
    """Five fold scores with mean ``mean`` and standard error ``spread``."""
    # deviations -2..2 have sample sd sqrt(2.5): scale so that sd / sqrt(5) == spread
    scale = spread * math.sqrt(5) / math.sqrt(2.5)
    return TrialOutcome(number, model, {}, [mean + d * scale for d in (-2, -1, 0, 1, 2)],
                        state=state)


def test_fold_se_is_the_standard_error_of_the_mean() -> None:
    assert fold_se(_trial(0, "lightgbm", 0.9, 0.004).fold_scores) == pytest.approx(0.004)
    assert fold_se([0.7]) == 0.0 and fold_se([0.7, 0.7, 0.7]) == 0.0


def test_a_simpler_family_within_one_se_of_the_best_is_chosen() -> None:
    trials = [_trial(0, "logistic_regression", 0.9938, 0.002),
              _trial(1, "random_forest", 0.9899, 0.002),
              _trial(2, "lightgbm", 0.9954, 0.003),
              _trial(3, "lightgbm", 0.9940, 0.003)]
    s = select_model(trials, AUC)
    assert s.best.number == 2 and s.chosen.number == 0 and s.overridden
    assert s.bound == pytest.approx(0.9954 - 0.003)
    assert [(c.model, c.within) for c in s.candidates] == [
        ("lightgbm", True), ("logistic_regression", True), ("random_forest", False)]
    assert s.reason == ("logistic_regression (cv roc_auc 0.9938) is within one standard "
                        "error of the best, lightgbm (0.9954 ± 0.0030 SE), and simpler")
    record = s.to_dict()
    assert record["chosen"] == "logistic_regression" and record["best_by_score"] == "lightgbm"
    assert json.loads(json.dumps(record)) == record


def test_a_family_outside_one_se_is_not_chosen() -> None:
    trials = [_trial(0, "logistic_regression", 0.985, 0.002), _trial(1, "lightgbm", 0.995, 0.003)]
    s = select_model(trials, AUC)
    assert s.chosen.model == "lightgbm" and not s.overridden
    assert s.reason == ("lightgbm has the best cv roc_auc (0.9950 ± 0.0030 SE); no simpler "
                        "family is within one standard error")


def test_the_simplest_within_one_se_wins_even_when_an_intermediate_one_scores_higher() -> None:
    trials = [_trial(0, "random_forest", 0.994, 0.001), _trial(1, "logistic_regression", 0.993),
              _trial(2, "lightgbm", 0.995, 0.003)]
    assert select_model(trials, AUC).chosen.model == "logistic_regression"


def test_lower_is_better_metrics_look_the_other_way() -> None:
    # rmse: lightgbm 50 +- 2 is best; forest 51.9 is within one SE (<= 52), linear 52.5 not
    trials = [_trial(0, "linear", 52.5, 1.0), _trial(1, "random_forest", 51.9, 1.0),
              _trial(2, "lightgbm", 50.0, 2.0)]
    s = select_model(trials, RMSE)
    assert s.best.model == "lightgbm" and s.bound == pytest.approx(52.0)
    assert s.chosen.model == "random_forest"
    # a higher-is-better reading would take 48 as the bound and keep lightgbm
    trials[0] = _trial(0, "linear", 51.0, 1.0)
    assert select_model(trials, RMSE).chosen.model == "linear"
    # a worse (higher) rmse than the bound is out even for the simplest family
    trials[0] = _trial(0, "linear", 52.01, 0.0)
    assert select_model(trials, RMSE).chosen.model == "random_forest"


def test_ties() -> None:
    # equal scores, no spread: the simpler family
    tied = [_trial(0, "lightgbm", 0.97), _trial(1, "logistic_regression", 0.97)]
    s = select_model(tied, AUC)
    assert s.best.model == "lightgbm" and s.chosen.model == "logistic_regression"
    # with no spread only an exact tie is within one SE
    near = [_trial(0, "lightgbm", 0.97), _trial(1, "logistic_regression", 0.9699)]
    assert select_model(near, AUC).chosen.model == "lightgbm"
    # the same level and score: the earlier trial; within a family, the earlier trial too
    same = [_trial(0, "xgboost", 0.97), _trial(1, "lightgbm", 0.97), _trial(2, "lightgbm", 0.97)]
    assert select_model(same, AUC).chosen.number == 0
    # the same level, within one SE: the better score
    level = [_trial(0, "xgboost", 0.968, 0.002), _trial(1, "lightgbm", 0.97, 0.003)]
    assert select_model(level, AUC).chosen.model == "lightgbm"


def test_only_complete_trials_with_a_finite_score_count() -> None:
    trials = [_trial(0, "lightgbm", 0.95, 0.001),
              _trial(1, "logistic_regression", 0.99, state="pruned"),
              _trial(2, "random_forest", 0.99, state="failed"),
              _trial(3, "logistic_regression", float("nan"))]
    s = select_model(trials, AUC)
    assert s.chosen.number == 0 and [c.model for c in s.candidates] == ["lightgbm"]
    assert s.reason.endswith("it is the simplest family within one standard error")
    with pytest.raises(ValueError, match="no complete trial"):
        select_model(trials[1:], AUC)


def test_best_rule_and_determinism() -> None:
    trials = [_trial(i, m, 0.99 - 0.001 * i, 0.003) for i, m in enumerate(
        ["lightgbm", "random_forest", "logistic_regression", "lightgbm", "xgboost"])]
    best = select_model(trials, AUC, "best")
    assert best.chosen is best.best and best.chosen.number == 0 and best.bound is None
    assert best.reason == "lightgbm has the best cv roc_auc (0.9900) (tuning.select: best)"
    chosen = select_model(trials, AUC).chosen.number
    assert chosen == 2
    for seed in range(5):
        shuffled = trials[:]
        random.Random(seed).shuffle(shuffled)
        assert select_model(shuffled, AUC).chosen.number == chosen
    with pytest.raises(ValueError, match="unknown selection rule"):
        select_model(trials, AUC, "worst")


def test_the_spec_option_is_validated() -> None:
    base = {"name": "m", "data": {"path": "x.csv", "target": "y"}}
    assert load_spec(base).tuning.select == "one_se"
    assert load_spec(base, ["tuning.select=best"]).tuning.select == "best"
    with pytest.raises(InvalidSpec, match=r"tuning\.select: Input should be 'one_se' or 'best'"):
        load_spec(base, ["tuning.select=worst"])


def test_a_real_run_picks_the_simpler_family_within_one_se(tmp_path: Path) -> None:
    """breast_cancer: with these settings LightGBM has the best mean CV ROC AUC, logistic
    regression is within one standard error of it and is chosen, and the run says why."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "y"})
    frame.to_csv(tmp_path / "bc.csv", index=False)
    spec = {"name": "bc", "data": {"path": "bc.csv", "target": "y"},
            "models": ["logistic_regression", "lightgbm"],
            "tuning": {"trials": 4, "cv_folds": 5}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    result = train(tmp_path / "spec.yaml")
    s = result.selection
    assert s["rule"] == "one_se"
    assert s["best_by_score"] == "lightgbm" and s["chosen"] == "logistic_regression"
    assert result.model == "logistic_regression" and result.score > 0.99
    by_model = {c["model"]: c for c in s["candidates"]}
    best, chosen = by_model["lightgbm"], by_model["logistic_regression"]
    assert best["score"] > chosen["score"] >= best["score"] - best["se"]
    assert result.cv_score == pytest.approx(chosen["score"])
    assert "within one standard error of the best, lightgbm" in s["reason"]

    client = fl.Client()
    run = client.get_run(result.run_id)
    assert run.params["model"] == "logistic_regression" and run.params["select"] == "one_se"
    assert run.tags["forgeline.selection.best_by_score"] == "lightgbm"
    assert run.tags["forgeline.selection.chosen"] == "logistic_regression"
    assert run.tags["forgeline.selection.reason"] == s["reason"]
    assert run.metrics["cv_roc_auc_se"] == pytest.approx(chosen["se"])
    saved = client.download_artifacts(result.run_id, SELECTION_PATH, tmp_path / "sel")
    assert json.loads(saved.read_text())["chosen"] == "logistic_regression"
    report = client.download_artifacts(result.run_id, REPORT_PATH, tmp_path / "rep")
    assert "model selection" in report.read_text()
    assert fl.load_model("bc").model.steps[-1][1].__class__.__name__ == "LogisticRegression"
