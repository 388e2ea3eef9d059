"""Alert rules: ``<quantity>[.<column>] <op> <number>``, parsed by hand (never ``eval``).

Examples::

    dataset_drift > 0.3          share of drifted features
    psi.amount > 0.25            PSI of one column
    drift.* > 0.1                the drift score of any column (fires once, lists them)
    drifted."card type" == 1     quoted column names may hold spaces and dots
    roc_auc < 0.8                realised on labelled rows
    estimated_roc_auc < 0.8      estimated from confidence (binary models)

Operators: ``>``, ``>=``, ``<``, ``<=``, ``==``, ``!=``. The quantities are listed in
:data:`GLOBAL`, :data:`PER_COLUMN` and the metric names; ``drift.<col>`` is the score of the
column's method: a distance for ``wasserstein``, ``jensenshannon`` and ``psi`` (higher is
more drift) and a p-value for ``ks`` and ``chisquare`` (lower is more drift), so
``drifted.<col> == 1`` is the rule that does not depend on the method.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from forgeline.errors import InvalidSpec
from forgeline.metrics import METRICS

__all__ = ["ESTIMATED", "GLOBAL", "PER_COLUMN", "Rule", "parse_rule"]

GLOBAL = {
    "dataset_drift": "share of drifted features",
    "dataset_drifted": "1 when the dataset drifted, else 0",
    "drifted_features": "number of drifted features",
    "prediction_drift": "drift score of the predictions",
    "prediction_drifted": "1 when the predictions drifted",
    "prediction_psi": "PSI of the predictions",
    "multivariate_error": "mean PCA reconstruction error",
    "multivariate_drifted": "1 when the reconstruction error left its band",
    "duplicate_share": "share of duplicated input rows",
    "attribution_drifted": "1 when a column's share of the attributions moved",
    "attribution_drifted_features": "number of columns whose attribution share moved",
    "attribution_share_change": "the largest change of a column's attribution share",
    "rows": "rows monitored",
}
PER_COLUMN = {
    "drift": "score of the column's drift method", "drifted": "1 when the column drifted",
    "psi": "population stability index", "ks": "Kolmogorov-Smirnov statistic",
    "ks_pvalue": "Kolmogorov-Smirnov p-value", "wasserstein": "normed Wasserstein distance",
    "jensenshannon": "Jensen-Shannon distance", "chisquare_pvalue": "chi-square p-value",
    "missing_share": "share of missing values",
    "missing_share_change": "missing share minus the reference's",
    "out_of_range_share": "share of values outside the training range",
    "unseen_share": "share of categories not seen in training",
    "attribution_share": "the column's share of the mean |contribution| (current)",
    "attribution_change": "its attribution share minus the reference's",
}
ESTIMATED = ("accuracy", "precision", "recall", "f1", "roc_auc")
_METRIC_NAMES = {*METRICS, *(f"estimated_{m}" for m in ESTIMATED)}
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
    ">": operator.gt, "<": operator.lt}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE = re.compile(r"[^\s<>=!]+")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True, slots=True)
class Rule:
    """One parsed rule. ``column`` is None for a global quantity, ``"*"`` for any column."""

    text: str
    name: str
    column: str | None
    op: str
    threshold: float

    @property
    def subject(self) -> str:
        return self.name if self.column is None else f"{self.name}.{self.column}"

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the comparison (NaN never does)."""
        return value == value and _OPS[self.op](value, self.threshold)


def _fail(rule: str, position: int, expected: str) -> InvalidSpec:
    found = repr(rule[position:position + 12]) if position < len(rule) else "the end"
    return InvalidSpec(f"Invalid alert rule {rule!r}: expected {expected} at position "
                       f"{position + 1}, found {found}.",
                       hint="Write <quantity>[.<column>] <op> <number>, e.g. "
                            "'psi.amount > 0.25' or 'dataset_drift >= 0.5'.")


def _skip(rule: str, i: int) -> int:
    while i < len(rule) and rule[i].isspace():
        i += 1
    return i


def _column(rule: str, i: int) -> tuple[str, int]:
    if i < len(rule) and rule[i] in "\"'":
        end = rule.find(rule[i], i + 1)
        if end < 0:
            raise _fail(rule, i, f"a closing {rule[i]}")
        if end == i + 1:
            raise _fail(rule, i, "a column name")
        return rule[i + 1:end], end + 1
    match = _BARE.match(rule, i)
    if not match:
        raise _fail(rule, i, "a column name (or * for any column)")
    return match.group(), match.end()


def parse_rule(rule: str) -> Rule:
    """Parse one rule.

    Raises:
        InvalidSpec: naming the rule and the position (1-based) of the problem.
    """
    if not isinstance(rule, str):
        raise InvalidSpec(f"Invalid alert rule {rule!r}: a rule is a string.")
    i = _skip(rule, 0)
    match = _NAME.match(rule, i)
    if not match:
        raise _fail(rule, i, "a quantity such as dataset_drift or psi")
    name, start, i = match.group(), i, match.end()
    known = name in GLOBAL or name in PER_COLUMN or name in _METRIC_NAMES
    if not known:
        raise InvalidSpec(
            f"Invalid alert rule {rule!r}: unknown quantity {name!r} at position {start + 1}.",
            hint=f"Use one of {', '.join(GLOBAL)}; per column (name.column) "
                 f"{', '.join(PER_COLUMN)}; or a metric such as roc_auc or "
                 "estimated_roc_auc.")
    column = None
    if i < len(rule) and rule[i] == ".":
        if name not in PER_COLUMN:
            raise _fail(rule, i, f"an operator ({name} is not per column)")
        column, i = _column(rule, i + 1)
    elif name in PER_COLUMN:
        raise _fail(rule, i, f"'.<column>' after {name} (or .* for any column)")
    i = _skip(rule, i)
    op = next((o for o in _OPS if rule.startswith(o, i)), None)
    if op is None:
        raise _fail(rule, i, "an operator (>, >=, <, <=, ==, !=)")
    i = _skip(rule, i + len(op))
    number = _NUMBER.match(rule, i)
    if not number:
        raise _fail(rule, i, "a number")
    end = _skip(rule, number.end())
    if end != len(rule):
        raise _fail(rule, end, "the end of the rule")
    return Rule(rule.strip(), name, column, op, float(number.group()))
