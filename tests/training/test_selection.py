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
from forgeline.training.selection import expected_largest, fold_se, select_model
from forgeline.training.spec import load_spec
from forgeline.training.trials import TrialOutcome
from forgeline.workflows.train import train

AUC = get_metric("roc_auc", Task.BINARY)  # higher is better
RMSE = get_metric("rmse", Task.REGRESSION)  # lower is better


def _trial(number: int, model: str, folds: list[float] | float,
           state: str = "complete") -> TrialOutcome:
    """A trial scored on five folds (a number: the same score on every fold)."""
    scores = [folds] * 5 if isinstance(folds, int | float) else list(folds)
    return TrialOutcome(number, model, {}, scores, state=state)


# Fold scores of one tuning (each fold harder or easier for every family alike).
LGBM = [0.9900, 0.9960, 0.9930, 0.9990, 0.9990]  # mean 0.9954, SE 0.0017
LOGIT = [0.9930, 0.9920, 0.9950, 0.9940, 0.9950]  # mean 0.9938: wins 2 folds, loses 3
FOREST = [0.9850, 0.9910, 0.9880, 0.9940, 0.9915]  # mean 0.9899: behind on every fold


def test_fold_se_is_the_standard_error_of_the_mean() -> None:
    scale = 0.004 * math.sqrt(5) / math.sqrt(2.5)  # deviations -2..2 have sd sqrt(2.5)
    assert fold_se([0.9 + d * scale for d in (-2, -1, 0, 1, 2)]) == pytest.approx(0.004)
    assert fold_se([0.7]) == 0.0 and fold_se([0.7, 0.7, 0.7]) == 0.0


def test_a_simpler_family_within_one_se_of_the_best_is_chosen() -> None:
    trials = [_trial(0, "logistic_regression", LOGIT), _trial(1, "random_forest", FOREST),
              _trial(2, "lightgbm", LGBM), _trial(3, "lightgbm", [x - 0.0014 for x in LGBM])]
    s = select_model(trials, AUC)
    assert s.best.number == 2 and s.chosen.number == 0 and s.overridden
    assert s.bound == pytest.approx(0.9954 - fold_se(LGBM))
    assert [(c.model, c.within) for c in s.candidates] == [
        ("lightgbm", True), ("logistic_regression", True), ("random_forest", False)]
    logit = s.candidates[1]
    assert logit.gap == pytest.approx(0.0016) and logit.gap_se == pytest.approx(0.0016912, 1e-4)
    assert s.reason == ("logistic_regression (cv roc_auc 0.9938) is within one standard "
                        "error of the best, lightgbm (0.9954): fold by fold it is 0.0016 "
                        "behind, ± 0.0017 SE; and simpler")
    record = s.to_dict()
    assert record["chosen"] == "logistic_regression" and record["best_by_score"] == "lightgbm"
    assert json.loads(json.dumps(record)) == record


def test_a_family_behind_on_every_fold_is_not_within_however_noisy_the_folds() -> None:
    """The folds spread by ±0.005, but the linear model trails by 0.001 on every one: the
    spread is how hard each fold is, not noise in the comparison (the unpaired rule of the
    best trial's SE, 0.0017, would have traded that 0.001 away)."""
    trials = [_trial(0, "logistic_regression", [x - 0.001 for x in LGBM]),
              _trial(1, "lightgbm", LGBM)]
    s = select_model(trials, AUC)
    assert s.chosen.model == "lightgbm" and not s.overridden
    assert s.candidates[1].gap == pytest.approx(0.001) and s.candidates[1].gap_se < 1e-12
    assert s.reason == ("lightgbm has the best cv roc_auc (0.9954 ± 0.0017 SE); no simpler "
                        "family is within one standard error")


def test_trials_on_other_folds_fall_back_to_the_spread_of_the_best() -> None:
    trials = [_trial(0, "logistic_regression", [0.9940, 0.9942, 0.9944]),
              _trial(1, "lightgbm", LGBM)]
    s = select_model(trials, AUC)
    assert s.chosen.model == "logistic_regression"
    assert s.candidates[1].gap_se == pytest.approx(fold_se(LGBM))


def test_the_simplest_within_one_se_wins_even_when_an_intermediate_one_scores_higher() -> None:
    # the forest scores above the linear model, but both are within the noise of their
    # comparison with the best: the simplest of them is chosen
    trials = [_trial(0, "random_forest", [0.9935, 0.9925, 0.9955, 0.9945, 0.9955]),
              _trial(1, "logistic_regression", LOGIT), _trial(2, "lightgbm", LGBM)]
    s = select_model(trials, AUC)
    assert [c.within for c in s.candidates] == [True, True, True]
    assert s.chosen.model == "logistic_regression"


def test_lower_is_better_metrics_look_the_other_way() -> None:
    best = [49.0, 51.0, 50.0, 48.0, 52.0]  # rmse 50
    forest = [47.0, 55.0, 50.0, 47.0, 58.5]  # 1.5 worse on average, from -2 to +6.5
    linear = [b + 2.5 for b in best]  # 2.5 worse on every fold
    trials = [_trial(0, "linear", linear), _trial(1, "random_forest", forest),
              _trial(2, "lightgbm", best)]
    s = select_model(trials, RMSE)
    assert s.best.model == "lightgbm" and s.bound == pytest.approx(50.0 + fold_se(best))
    assert s.chosen.model == "random_forest"
    assert s.candidates[1].gap == pytest.approx(1.5) and s.candidates[1].gap_se > 1.5
    # a higher-is-better reading would count the linear model's 2.5 as a gain
    trials[0] = _trial(0, "linear", [b - 0.5 for b in best])
    assert select_model(trials, RMSE).chosen.model == "linear"  # better on every fold


def test_on_time_windows_the_best_score_wins() -> None:
    """The hotel-rates case (real fold scores, RMSE, expanding time windows): the boosted
    trees lose the first window (trained on the oldest sixth of the rows) by 17.6 and win
    the four later ones by 3-7. Counted as replicates, the first window drowns the rest
    (0.5 behind ± 4.6 SE: the linear model looks within one SE); the windows are not
    replicates, and it is the trees that do better on the later test period."""
    hgb = [51.1, 20.6, 32.8, 15.5, 17.7]
    linear = [33.5, 27.4, 35.7, 21.1, 22.4]
    blew_up = [35.4, 27.5, 319.7, 21.1, 21.9]  # the default linear trial of a later run
    trials = [_trial(0, "linear", linear), _trial(1, "hist_gradient_boosting", hgb)]
    assert select_model(trials, RMSE).chosen.model == "linear"
    s = select_model(trials, RMSE, time_ordered=True)
    assert s.chosen.model == "hist_gradient_boosting" and not s.overridden
    assert s.reason.endswith("(time-ordered folds are no replicates, so no trade between "
                             "families)")
    trials[0] = _trial(0, "linear", blew_up)
    assert select_model(trials, RMSE, time_ordered=True).chosen.model == \
        "hist_gradient_boosting"


def _default(number: int, model: str, folds: list[float]) -> TrialOutcome:
    return TrialOutcome(number, model, {}, list(folds), defaults=True)


def test_on_time_windows_a_tuned_trial_must_beat_its_defaults_beyond_noise() -> None:
    """The hotel-rates case again: the best of ten LightGBM trials leads its defaults by
    2% on the windows, winning some and losing others (it scored 34-46 RMSE on the later
    period by seed alone, the defaults 29.8): the defaults ship. A tuned trial ahead on
    every window replaces them; another family's defaults are never traded for."""
    hgb = [51.1, 20.1, 32.2, 15.4, 17.4]
    defaults = [50.3, 19.8, 32.4, 15.4, 17.5]
    tuned = [49.5, 20.6, 32.9, 14.1, 16.7]  # 0.3 ahead on the mean, behind on two windows
    trials = [_default(0, "hist_gradient_boosting", hgb), _default(1, "lightgbm", defaults),
              TrialOutcome(2, "lightgbm", {"num_leaves": 84}, tuned)]
    s = select_model(trials, RMSE, time_ordered=True)
    assert s.best.number == 2 and s.chosen.number == 1 and s.overridden
    assert s.reason.startswith("lightgbm's defaults (cv rmse 27.0800) stay: its best tuned "
                               "trial (26.7600) is not ahead of them beyond noise")
    assert select_model(trials, RMSE).chosen.number == 2  # random folds: the one-SE rule's
    ahead = [d - 1.0 + 0.1 * k for k, d in enumerate(defaults)]  # ahead on every window
    trials[2] = TrialOutcome(2, "lightgbm", {"num_leaves": 84}, ahead)
    s = select_model(trials, RMSE, time_ordered=True)
    assert s.chosen.number == 2 and "ahead of its defaults beyond noise" in s.reason
    trials[1] = TrialOutcome(1, "lightgbm", {"num_leaves": 8}, defaults)  # not the defaults
    assert select_model(trials, RMSE, time_ordered=True).chosen.number == 2


def test_the_best_of_many_tuned_trials_must_lead_by_more() -> None:
    """A lead of 1.4 standard errors of the paired gaps is beyond noise for one tuned trial,
    not for the best of eleven (ten of them pruned: the search compared them too), whose
    best leads by about 1.6 SE on noise alone."""
    defaults = [50.3, 19.8, 32.4, 15.4, 17.5]
    tuned = [48.8, 20.3, 31.2, 15.6, 16.75]  # 0.55 ahead, ± 0.39 SE
    trials = [_default(0, "lightgbm", defaults), TrialOutcome(1, "lightgbm", {"a": 1}, tuned)]
    assert select_model(trials, RMSE, time_ordered=True).chosen.number == 1
    trials += [TrialOutcome(n, "lightgbm", {"a": n}, [60.0], state="pruned")
               for n in range(2, 12)]
    trials.append(TrialOutcome(12, "random_forest", {"a": 1}, [61.0], state="pruned"))
    s = select_model(trials, RMSE, time_ordered=True)
    assert s.chosen.number == 0 and "over 1.59 SE for the best of 11 tuned trials" in s.reason
    assert expected_largest(1) == expected_largest(3) == 1.0
    assert expected_largest(10) == pytest.approx(1.539, abs=0.01)  # the exact value


def test_ties() -> None:
    # equal scores, no spread: the simpler family
    tied = [_trial(0, "lightgbm", 0.97), _trial(1, "logistic_regression", 0.97)]
    s = select_model(tied, AUC)
    assert s.best.model == "lightgbm" and s.chosen.model == "logistic_regression"
    # behind on every fold by the same margin: not within, however small the margin
    near = [_trial(0, "lightgbm", 0.97), _trial(1, "logistic_regression", 0.9699)]
    assert select_model(near, AUC).chosen.model == "lightgbm"
    # the same level and score: the earlier trial; within a family, the earlier trial too
    same = [_trial(0, "xgboost", 0.97), _trial(1, "lightgbm", 0.97), _trial(2, "lightgbm", 0.97)]
    assert select_model(same, AUC).chosen.number == 0
    # the same level, within one SE: the better score
    level = [_trial(0, "xgboost", [0.9935, 0.9915, 0.9950, 0.9930, 0.9950]),
             _trial(1, "lightgbm", LOGIT)]
    assert select_model(level, AUC).chosen.model == "lightgbm"


def test_only_complete_trials_with_a_finite_score_count() -> None:
    trials = [_trial(0, "lightgbm", LGBM),
              _trial(1, "logistic_regression", 0.999, state="pruned"),
              _trial(2, "random_forest", 0.999, state="failed"),
              _trial(3, "logistic_regression", float("nan"))]
    s = select_model(trials, AUC)
    assert s.chosen.number == 0 and [c.model for c in s.candidates] == ["lightgbm"]
    assert s.reason.endswith("it is the simplest family within one standard error")
    with pytest.raises(ValueError, match="no complete trial"):
        select_model(trials[1:], AUC)


def test_best_rule_and_determinism() -> None:
    trials = [_trial(i, m, [x - 0.0004 * i for x in LGBM]) for i, m in enumerate(
        ["lightgbm", "random_forest", "logistic_regression", "lightgbm", "xgboost"])]
    trials[2] = _trial(2, "logistic_regression", LOGIT)
    best = select_model(trials, AUC, "best")
    assert best.chosen is best.best and best.chosen.number == 0 and best.bound is None
    assert best.reason == "lightgbm has the best cv roc_auc (0.9954) (tuning.select: best)"
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
    assert best["score"] > chosen["score"] and chosen["within_one_se"]
    assert 0 < chosen["gap"] <= chosen["gap_se"]
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
