"""Choosing the model family after tuning: the best score, or the one-standard-error rule.

Tuning tries many settings of each family on the same folds, so the top mean CV score is
an optimistic estimate (the winner of many noisy comparisons), and a flexible family with a
large search space wins by margins far smaller than the noise of the folds. The
one-standard-error rule (Breiman et al. 1984; Hastie, Tibshirani & Friedman, *The Elements
of Statistical Learning*, 7.10) takes the best complete trial of each family and, among the
families within one standard error of the overall best, chooses the simplest.

"Within one standard error" is judged fold by fold: every trial is scored on the same
folds, so a family is within when its mean shortfall against the best, fold by fold, is at
most the standard error of those paired differences. The spread of the folds themselves
(how hard each fold is) cancels out of a paired difference, so the rule trades away only
what the noise of the comparison allows: a family that loses on every fold is not within
however noisy the folds are, while one that wins some folds and loses others is. Trials
scored on different folds fall back to the standard error of the best trial's scores.

On a time split (``time_ordered``) the rule does not trade between families and the best
family wins: the folds are expanding windows, not replicates of one another (the first
trains on a sixth of the rows in the oldest period, the last on five sixths next to the
period the model will serve), so how differently two families fare on them is no measure
of noise. On hotel prices, a linear model that lost every window but the first by 3-7
RMSE, or blew up on one window, came out "within one standard error" of the boosted
trees, and was 3-8 RMSE worse on the test period.

Within that family, though, a tuned trial replaces the family's defaults only when it
beats them beyond noise, window by window: the period served lies beyond every window,
where the edge of the best of many tuned trials is least likely to hold. The best of
``k`` tuned trials leads by the largest of ``k`` noisy gaps even where no setting is
better (the optimizer's curse: Smith & Winkler 2006), so its lead must pass the expected
largest of ``k`` standard normal draws (Blom's approximation; at least 1) times the
standard error of its paired gaps, ``k`` counting every tuned trial of the family the
search compared (pruned ones too). On hotel prices the best of a dozen LightGBM trials led
its defaults by 2% on the windows (1.4 SE) and scored 34-46 RMSE on the later summer,
depending only on its seed; the defaults scored 29.8, as the default HistGradientBoosting
did.

Simplicity is a fixed order of families (``ModelKind.complexity`` in the zoo):

0. ``linear`` / ``logistic_regression``: one regularisation hyperparameter, smooth in its
   inputs, the cheapest to serve and to explain.
1. ``random_forest``: averaged, independently grown trees; few hyperparameters that matter
   and little to overfit in the search.
2. ``hist_gradient_boosting``, ``lightgbm``, ``xgboost``: sequentially fitted boosted trees,
   flexible families with large search spaces.
3. ``mlp``: a neural network, the most flexible, the largest search space and the most
   variance between seeds.

Within one level the better mean score wins, then the earlier trial, so the choice depends
on the trial outcomes alone (the same spec, data and seed give the same model). Only
complete trials count: a pruned trial has not run every fold, a failed one has no score.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from forgeline.metrics import Metric

if TYPE_CHECKING:
    from forgeline.training.trials import TrialOutcome

__all__ = ["RULES", "Candidate", "Selection", "expected_largest", "fold_se", "select_model"]

RULES: tuple[str, ...] = ("one_se", "best")


def fold_se(scores: Sequence[float]) -> float:
    """Standard error of the mean of fold scores: sample sd / sqrt(folds); 0 for one fold."""
    if len(scores) < 2:
        return 0.0
    # statistics.stdev sums exactly: equal fold scores give exactly 0, not float noise
    return statistics.stdev(float(s) for s in scores) / math.sqrt(len(scores))


@dataclass(frozen=True, slots=True)
class Candidate:
    """The best complete trial of one model family."""

    model: str
    trial: int
    score: float  # mean CV score
    se: float  # standard error of its fold scores
    complexity: int
    within: bool = False  # within one SE of the overall best (always True for the best)
    gap: float = 0.0  # mean shortfall against the best, fold by fold, in the metric's units
    gap_se: float = 0.0  # the standard error of that shortfall

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "trial": self.trial, "score": self.score, "se": self.se,
                "complexity": self.complexity, "within_one_se": self.within,
                "gap": self.gap, "gap_se": self.gap_se}


@dataclass(frozen=True, slots=True)
class Selection:
    """Which trial was chosen, the best by raw score, and why."""

    rule: str
    chosen: TrialOutcome  # the trial refitted and evaluated
    best: TrialOutcome  # the trial with the best mean CV score
    candidates: tuple[Candidate, ...]  # one per family with a complete trial, best first
    bound: float | None  # one_se: the best score less one SE of its folds (for reference)
    reason: str

    @property
    def overridden(self) -> bool:
        """True when the rule chose another family than the best by raw score."""
        return self.chosen.number != self.best.number

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "chosen": self.chosen.model,
                "chosen_trial": self.chosen.number, "best_by_score": self.best.model,
                "best_trial": self.best.number, "bound": self.bound, "reason": self.reason,
                "candidates": [c.to_dict() for c in self.candidates]}


def _complexity(name: str) -> int:
    from forgeline.training.zoo import ZOO

    kind = ZOO.get(name)
    return kind.complexity if kind is not None else max(k.complexity for k in ZOO.values())


def select_model(trials: Sequence[TrialOutcome], metric: Metric, rule: str = "one_se", *,
                 complexity: Mapping[str, int] | Callable[[str], int] | None = None,
                 time_ordered: bool = False) -> Selection:
    """Choose the trial to refit among tuning's ``trials``.

    Args:
        trials: Tuning's outcomes (only complete trials with a finite score count).
        metric: The tuning metric (its direction decides "better" and "within").
        rule: ``"one_se"`` (the simplest family within one SE of the best) or ``"best"``.
        complexity: Family -> level (lower is simpler); default: the zoo's order.
        time_ordered: the folds are expanding time windows: the best family wins, its
            defaults unless a tuned trial beats them beyond noise.

    Raises:
        ValueError: no complete trial with a finite score, or an unknown rule.
    """
    if rule not in RULES:
        raise ValueError(f"unknown selection rule {rule!r}; expected one of {RULES}")
    level: Callable[[str], int] = (
        _complexity if complexity is None
        else complexity.__getitem__ if isinstance(complexity, Mapping) else complexity)
    sign = 1.0 if metric.greater_is_better else -1.0
    per_family: dict[str, tuple[float, TrialOutcome]] = {}
    for t in sorted(trials, key=lambda t: t.number):
        score = t.score
        if t.state != "complete" or score is None or not math.isfinite(score):
            continue
        held = per_family.get(t.model)
        if held is None or metric.better(score, held[0]):  # a tie keeps the earlier trial
            per_family[t.model] = (score, t)
    if not per_family:
        raise ValueError("no complete trial with a finite score to choose from")
    # best first: by score in the metric's direction, then the earlier trial
    ranked = sorted(per_family.values(), key=lambda st: (-sign * st[0], st[1].number))
    top, best = ranked[0]
    best_se = fold_se(best.fold_scores)
    bound = top - sign * best_se
    candidates = tuple(_candidate(t, score, best, sign, level(t.model)) for score, t in ranked)
    name = metric.name
    if rule == "best":
        return Selection(rule, best, best, candidates, None,
                         f"{best.model} has the best cv {name} ({top:.4f}) "
                         "(tuning.select: best)")
    if time_ordered:
        return _time_ordered(trials, best, top, candidates, sign, name, level(best.model))
    pick = min((c for c in candidates if c.within),
               key=lambda c: (c.complexity, -sign * c.score, c.trial))
    chosen = per_family[pick.model][1]
    if chosen is best:
        simpler = [c.model for c in candidates if c.complexity < pick.complexity]
        reason = (f"{best.model} has the best cv {name} ({top:.4f} ± {best_se:.4f} SE)"
                  + ("; no simpler family is within one standard error" if simpler
                     else "; it is the simplest family within one standard error"))
    else:
        reason = (f"{chosen.model} (cv {name} {pick.score:.4f}) is within one standard "
                  f"error of the best, {best.model} ({top:.4f}): fold by fold it is "
                  f"{pick.gap:.4f} behind, ± {pick.gap_se:.4f} SE; and simpler")
    return Selection(rule, chosen, best, candidates, bound, reason)


def _time_ordered(trials: Sequence[TrialOutcome], best: TrialOutcome, top: float,
                  candidates: tuple[Candidate, ...], sign: float, name: str,
                  complexity: int) -> Selection:
    """The best family; its defaults unless its best tuned trial beats them beyond noise,
    window by window (see the module docstring)."""
    why = "time-ordered folds are no replicates, so no trade between families"
    defaults = [t for t in trials if t.defaults and t.model == best.model
                and t.state == "complete" and t.score is not None and math.isfinite(t.score)]
    if best.defaults or not defaults:
        return Selection("one_se", best, best, candidates, None,
                         f"{best.model} has the best cv {name} ({top:.4f}) ({why})")
    default = max(defaults, key=lambda t: (sign * t.score, -t.number))  # type: ignore[operator]
    held = _candidate(default, default.score, best, sign, complexity)  # type: ignore[arg-type]
    tried = sum(1 for t in trials if t.model == best.model and not t.defaults
                and t.state in ("complete", "pruned"))
    curse = expected_largest(tried)
    lead = (f"the defaults {held.gap:.4f} behind window by window, ± {held.gap_se:.4f} SE; "
            f"beyond noise is over {curse:.2f} SE for the best of {tried} tuned "
            f"trial{'s' if tried != 1 else ''}")
    if held.gap > curse * held.gap_se:
        return Selection("one_se", best, best, candidates, None,
                         f"{best.model} has the best cv {name} ({top:.4f}), ahead of its "
                         f"defaults beyond noise ({lead}) ({why})")
    return Selection("one_se", default, best, candidates, None,
                     f"{best.model}'s defaults (cv {name} {held.score:.4f}) stay: its best "
                     f"tuned trial ({top:.4f}) is not ahead of them beyond noise ({lead}); "
                     "the period served lies beyond every time window "
                     f"({why})")


def expected_largest(k: int) -> float:
    """The expected largest of ``k`` standard normal draws (Blom's approximation), at least
    1: how many standard errors the best of ``k`` equally good trials leads by."""
    if k < 2:
        return 1.0
    return max(1.0, NormalDist().inv_cdf((k - 0.375) / (k + 0.25)))


def _candidate(t: TrialOutcome, score: float, best: TrialOutcome, sign: float,
               complexity: int) -> Candidate:
    """``t`` against the best trial: its shortfall fold by fold and whether it is within
    one standard error of it (see the module docstring)."""
    if t is best:
        return Candidate(t.model, t.number, score, fold_se(t.fold_scores), complexity, True)
    if len(t.fold_scores) == len(best.fold_scores) and len(t.fold_scores) > 1:
        shortfalls = [sign * (b - c) for b, c in zip(best.fold_scores, t.fold_scores,
                                                      strict=True)]
        gap, gap_se = statistics.fmean(shortfalls), fold_se(shortfalls)
    else:  # not scored on the same folds: the spread of the best trial's folds
        gap, gap_se = sign * (best.score - score), fold_se(best.fold_scores)  # type: ignore[operator]
    return Candidate(t.model, t.number, score, fold_se(t.fold_scores), complexity,
                     within=gap <= gap_se, gap=gap, gap_se=gap_se)
