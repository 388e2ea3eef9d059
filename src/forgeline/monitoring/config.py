"""What a monitoring run checks and when it calls something drifted: one value object.

The drift method of a column follows Evidently's defaults unless told otherwise: with at
most ``small_sample_rows`` current values, a statistical test (Kolmogorov-Smirnov for
numbers, chi-square for categories; drifted when p < threshold); with more, a distance
(Wasserstein over the reference std for numbers, Jensen-Shannon for categories; drifted
when distance >= threshold). PSI is computed for every column and can be chosen too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from forgeline.errors import InvalidSpec

__all__ = ["CATEGORICAL_METHODS", "DEFAULT_THRESHOLDS", "METHODS", "NUMERIC_METHODS",
           "TESTS", "MonitorConfig", "choose_method"]

DEFAULT_THRESHOLDS: dict[str, float] = {"ks": 0.05, "chisquare": 0.05, "wasserstein": 0.1,
                                        "jensenshannon": 0.1, "psi": 0.1}
METHODS = tuple(DEFAULT_THRESHOLDS)
TESTS = frozenset({"ks", "chisquare"})  # scores are p-values: drifted when score < threshold
NUMERIC_METHODS = frozenset({"ks", "wasserstein", "jensenshannon", "psi"})
CATEGORICAL_METHODS = frozenset({"chisquare", "jensenshannon", "psi"})


def _check(condition: bool, message: str, hint: str | None = None) -> None:
    if not condition:
        raise InvalidSpec(f"Invalid monitoring config: {message}", hint=hint)


@dataclass(frozen=True)
class MonitorConfig:
    """Thresholds, methods, windows and alert delivery of a monitoring run.

    Attributes:
        small_sample_rows: at most this many current values -> a statistical test.
        thresholds: per method (``ks``, ``chisquare``, ``wasserstein``, ``jensenshannon``,
            ``psi``); given entries replace the defaults, the others stay.
        numeric_method: ``auto`` or a method for every numeric column.
        categorical_method: ``auto`` or a method for every categorical/boolean column.
        column_methods: column -> method, above the two settings before.
        dataset_drift_share: the dataset drifted when at least this share of its
            features drifted.
        window: time windows for the over-time views: ``auto`` (by day when the data spans
            2 to ``max_windows`` days, else 10 windows of equal rows), a pandas frequency
            (``1D``, ``6h``), a number of rows per window, or None (no windows).
        max_windows: at most this many windows (a frequency that gives more is widened).
        min_window_rows: windows with fewer rows are shown but not scored.
        time_column: the column whose times cut the windows; None (the default) picks the
            clock: the model's event-time column (its training spec's
            ``data.time_column``) when the data has it, else the prediction log's ``ts``
            (logging time), else row order (see :mod:`.windows`).
        multivariate_sigma: reconstruction error outside reference mean +- sigma * its
            standard error -> multivariate drift.
        missing_share_change: a change of the missing share by at least this -> an issue.
        out_of_range_share: values outside the training range above this share -> an issue.
        unseen_share: categories never seen in training above this share -> an issue.
        duplicate_share_change: duplicated rows above the reference share by this -> issue.
        performance_tolerance: a metric worse than its test value by more than this
            fraction of it -> degraded.
        attribution_rows: current rows explained for attribution drift (0: no attribution
            drift; see :mod:`.attribution`).
        attribution_share_change: a column whose share of the total mean |contribution|
            moved by more than this (0.05: five percentage points) -> attribution drift.
        rules: alert rules such as ``dataset_drift > 0.3`` (see ``alerts``).
        webhook: URL that receives a JSON POST when a rule fires.
        command: command run with the JSON payload on stdin when a rule fires
            (split like a shell would, but run without one).
        delivery_timeout_s: per webhook attempt.
        delivery_retries: webhook retries after the first attempt.
        command_timeout_s: the command is stopped after this long.
    """

    small_sample_rows: int = 1000
    thresholds: Mapping[str, float] = field(default_factory=dict)
    numeric_method: str = "auto"
    categorical_method: str = "auto"
    column_methods: Mapping[str, str] = field(default_factory=dict)
    dataset_drift_share: float = 0.5
    window: str | int | None = "auto"
    max_windows: int = 60
    min_window_rows: int = 30
    time_column: str | None = None
    multivariate_sigma: float = 3.0
    missing_share_change: float = 0.05
    out_of_range_share: float = 0.01
    unseen_share: float = 0.01
    duplicate_share_change: float = 0.05
    performance_tolerance: float = 0.05
    attribution_rows: int = 1000
    attribution_share_change: float = 0.05
    rules: tuple[str, ...] = ()
    webhook: str | None = None
    command: str | None = None
    delivery_timeout_s: float = 5.0
    delivery_retries: int = 2
    command_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.thresholds) - set(METHODS))
        _check(not unknown, f"unknown method(s) in thresholds: {', '.join(unknown)}.",
               f"Use {', '.join(METHODS)}.")
        merged = {**DEFAULT_THRESHOLDS, **{k: float(v) for k, v in self.thresholds.items()}}
        for name, value in merged.items():
            _check(math.isfinite(value) and value > 0, f"threshold {name} must be a positive "
                   f"number, not {value}.")
        object.__setattr__(self, "thresholds", merged)
        object.__setattr__(self, "column_methods", dict(self.column_methods))
        object.__setattr__(self, "rules", tuple(self.rules))
        for where, method in [("numeric_method", self.numeric_method),
                              ("categorical_method", self.categorical_method),
                              *((f"column_methods[{c!r}]", m)
                                for c, m in self.column_methods.items())]:
            allowed = (NUMERIC_METHODS if where == "numeric_method" else CATEGORICAL_METHODS
                       if where == "categorical_method" else set(METHODS))
            _check((method == "auto" and "column" not in where) or method in allowed,
                   f"{where} is {method!r}.", f"Use {', '.join(sorted(allowed))}"
                   + (" or auto." if "column" not in where else "."))
        _check(0 < self.dataset_drift_share <= 1, "dataset_drift_share must lie in (0, 1].")
        _check(self.small_sample_rows >= 1 and self.max_windows >= 1
               and self.min_window_rows >= 1, "row counts must be at least 1.")
        _check(self.attribution_rows >= 0, "attribution_rows must be 0 (off) or more.")
        _check(0 < self.attribution_share_change < 1,
               "attribution_share_change must lie in (0, 1).")
        _check(self.delivery_retries >= 0 and self.delivery_timeout_s > 0
               and self.command_timeout_s > 0, "timeouts must be positive, retries >= 0.")
        _check(self.time_column is None or (isinstance(self.time_column, str)
                                            and self.time_column.strip() != ""),
               f"time_column must be a column name or None, not {self.time_column!r}.")
        window = self.window
        _check(window is None or (isinstance(window, int) and not isinstance(window, bool)
                                  and window >= 1) or isinstance(window, str),
               f"window must be 'auto', a frequency such as '1D', a row count or None, not "
               f"{window!r}.")
        from forgeline.monitoring.rules import parse_rule

        for rule in self.rules:
            parse_rule(rule)  # a bad rule fails before any work is done

    def threshold(self, method: str) -> float:
        return float(self.thresholds[method])


def choose_method(config: MonitorConfig, column: str, categorical: bool, n_current: int
                  ) -> str:
    """The drift method for one column: its override, the kind's setting, or by size.

    Raises:
        InvalidSpec: a column override names a method that does not apply to its kind.
    """
    method = config.column_methods.get(column)
    allowed = CATEGORICAL_METHODS if categorical else NUMERIC_METHODS
    if method is not None:
        if method not in allowed:
            kind = "categorical" if categorical else "numeric"
            raise InvalidSpec(f"Drift method {method!r} does not apply to the {kind} column "
                              f"{column!r}.", hint=f"Use {', '.join(sorted(allowed))}.")
        return method
    method = config.categorical_method if categorical else config.numeric_method
    if method != "auto":
        return method
    small = n_current <= config.small_sample_rows
    if categorical:
        return "chisquare" if small else "jensenshannon"
    return "ks" if small else "wasserstein"
