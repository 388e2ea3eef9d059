"""Global explanations: how much each input column moves a model's output, over many rows.

:func:`global_explanation` explains a sample of rows with :class:`~.explain.Explainer` and
keeps the per-row contributions (for the training report's summary and dependence plots),
each column's mean absolute contribution and its share of the total (the global
importance), and, where it is cheap, the mean absolute SHAP interaction between columns.

Interactions come from ``shap.TreeExplainer.shap_interaction_values`` on the features the
model sees, summed back onto the input columns like the contributions. They are computed
only for tree models shap walks (LightGBM, XGBoost, random forests, gradient boosting
without native categories), on a small sample, and only when a pilot on a few rows says
the whole sample finishes within :data:`INTERACTION_SECONDS`; otherwise the explanation
says why they were skipped. A linear model has none (its contributions are additive).

:func:`attribution_record` is the JSON kept in the model package (``attributions.json``)
and in the training run: what monitoring compares production's attributions with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forgeline.errors import NotExplainable
from forgeline.packaging.explain import Explainer, Explanation, _family

__all__ = ["ATTRIBUTIONS_FORMAT", "EXPLAIN_ROWS", "INTERACTION_ROWS", "INTERACTION_SECONDS",
           "GlobalExplanation", "attribution_record", "explain_or_note", "global_explanation",
           "sample_rows", "shares"]

ATTRIBUTIONS_FORMAT = 1
EXPLAIN_ROWS = 1_000  # rows explained for the global view (tree and linear methods)
AGNOSTIC_ROWS = 200  # fewer with the model-agnostic Shapley values: each row costs more
EXPLAIN_SECONDS = 3.0  # as many rows are explained as fit in this (after the first)
AGNOSTIC_BACKGROUND = 25  # background rows of the model-agnostic method: a mean over many
# rows needs fewer per row than one row's explanation (agnostic.BACKGROUND_ROWS)
INTERACTION_ROWS = 200
INTERACTION_SECONDS = 3.0
_PILOT_ROWS = 5  # rows timed first with the model-agnostic method (or interactions)
_FIRST_ROWS = 100  # rows timed first with the exact methods
_TREE_FAMILIES = ("lightgbm", "xgboost", "forest", "hist_gradient_boosting")


@dataclass(frozen=True)
class GlobalExplanation:
    """Contributions over a sample of rows, and what they say about the model as a whole.

    Attributes:
        explanation: the per-row explanation of the sample (``data``: the rows).
        mean_abs: column -> mean |contribution|, largest first.
        interactions: columns x columns mean |SHAP interaction| (off-diagonal: the pair's
            interaction, each half on one side; diagonal: the column's main effect), in the
            order of ``interaction_columns``; None when skipped.
        interaction_columns: the columns of ``interactions``.
        interaction_rows: rows the interactions were measured on.
        interaction_note: why interactions were skipped, or how they were measured.
    """

    explanation: Explanation
    mean_abs: dict[str, float]
    interactions: np.ndarray | None
    interaction_columns: tuple[str, ...]
    interaction_rows: int
    interaction_note: str

    @property
    def rows(self) -> int:
        return len(self.explanation.output)

    @property
    def shares(self) -> dict[str, float]:
        """column -> its share of the total mean |contribution| (they add up to 1)."""
        return shares(self.mean_abs)


def shares(values: dict[str, float]) -> dict[str, float]:
    """column -> its share of the total of ``values`` (all 0 when the total is 0)."""
    total = sum(values.values())
    return {c: (v / total if total > 0 else 0.0) for c, v in values.items()}


def sample_rows(frame: pd.DataFrame, rows: int, seed: int = 0) -> pd.DataFrame:
    """At most ``rows`` rows of ``frame``, drawn without replacement, in random order (so
    the first rows of the sample are a random sample too)."""
    return frame.sample(min(rows, len(frame)), random_state=seed)


def mean_abs(explanation: Explanation) -> dict[str, float]:
    """column -> mean |contribution| over the rows explained, largest first."""
    values = np.abs(np.asarray(explanation.contributions, dtype=float)).mean(axis=0)
    order = np.argsort(-values, kind="stable")
    return {explanation.columns[i]: float(values[i]) for i in order}


def global_explanation(model: Any, data: pd.DataFrame, *, rows: int | None = None,
                       seed: int = 0, interactions: bool = True,
                       background: pd.DataFrame | None = None,
                       seconds: float = EXPLAIN_SECONDS) -> GlobalExplanation:
    """Explain a sample of ``data`` and summarise it.

    Args:
        model: a :class:`~.predictor.Predictor` or a fitted Forgeline pipeline.
        data: rows like the model's input (e.g. the test split).
        rows: at most this many rows are explained; by default :data:`EXPLAIN_ROWS`, or
            :data:`AGNOSTIC_ROWS` when the model has only the model-agnostic method.
        seed: the sample's seed.
        interactions: measure interactions where cheap (see the module's docstring).
        background: rows like the training data, for the linear and agnostic methods.
        seconds: the first rows of the sample (100; 5 with the slow model-agnostic method,
            against :data:`AGNOSTIC_BACKGROUND` background rows) are timed, and only as
            many more as fit in ``seconds`` are explained; interactions are skipped when
            they would take longer than this (or :data:`INTERACTION_SECONDS`).

    Raises:
        NotExplainable: a model :class:`~.explain.Explainer` cannot explain.
        InvalidInput: rows a predictor's signature rejects.
    """
    explainer = Explainer(model, background=background)
    agnostic = explainer.method == "shap.ExactExplainer"
    if agnostic:  # each row costs (coalitions x background rows) model outputs
        explainer = Explainer(model, background=sample_rows(
            explainer._background(background), AGNOSTIC_BACKGROUND, seed))
    if rows is None:
        rows = AGNOSTIC_ROWS if agnostic else EXPLAIN_ROWS
    sample = sample_rows(data, rows, seed)
    first = _PILOT_ROWS if agnostic else _FIRST_ROWS
    if len(sample) <= first:
        started = time.perf_counter()
        explanation = explainer.explain(sample)
        per_row = (time.perf_counter() - started) / max(1, len(sample))
    else:  # time the first rows, then explain only as many more as fit in ``seconds``
        if agnostic:
            explainer.explain(sample.iloc[:1])  # the first call compiles shap's numba code
        started = time.perf_counter()
        pilot = explainer.explain(sample.iloc[:first])
        per_row = (time.perf_counter() - started) / first
        more = min(len(sample), int(seconds / max(per_row, 1e-9))) - first
        explanation = (_concat(pilot, explainer.explain(sample.iloc[first:][:more]))
                       if more > 0 else pilot)
    matrix, columns, measured, note = None, explanation.columns, 0, "not asked for"
    if interactions:
        matrix, measured, note = _interactions(explainer, explanation.data, seed,
                                               min(seconds, INTERACTION_SECONDS), per_row)
    return GlobalExplanation(explanation, mean_abs(explanation), matrix, columns, measured,
                             note)


def explain_or_note(model: Any, data: pd.DataFrame, *, background: pd.DataFrame,
                    seed: int = 0, seconds: float = EXPLAIN_SECONDS
                    ) -> tuple[GlobalExplanation | None, str]:
    """:func:`global_explanation`, or None and why when the model cannot be explained (a
    report says so rather than fails)."""
    try:
        return global_explanation(model, data, seed=seed, seconds=seconds,
                                  background=sample_rows(background, EXPLAIN_ROWS, seed)), ""
    except NotExplainable as e:
        return None, str(e)


def attribution_record(g: GlobalExplanation) -> dict[str, Any]:
    """The JSON form kept as ``attributions.json``: per column its mean |contribution|, its
    share and its rank (1: largest), with the units, method and rows behind them."""
    shares = g.shares
    return {"format": ATTRIBUTIONS_FORMAT, "units": g.explanation.units,
            "method": g.explanation.method, "rows": g.rows,
            "columns": {c: {"mean_abs": v, "share": shares[c], "rank": i + 1}
                        for i, (c, v) in enumerate(g.mean_abs.items())}}


def _concat(a: Explanation, b: Explanation) -> Explanation:
    return Explanation(a.columns, np.vstack([a.contributions, b.contributions]),
                       np.concatenate([a.base, b.base]), np.concatenate([a.output, b.output]),
                       a.units, a.method, None if a.explained is None
                       else [*a.explained, *(b.explained or [])],
                       pd.concat([a.data, b.data], ignore_index=True))


def _interactions(explainer: Explainer, X: pd.DataFrame, seed: int, limit: float,
                  per_row: float) -> tuple[np.ndarray | None, int, str]:
    """Mean |interaction| between input columns; None and why when skipped.

    ``per_row``: the seconds a row's contributions took. A row's interactions cost about
    as many times that as the model has features (TreeSHAP once per feature), which rules
    out the large models before shap parses their trees; a pilot of a few rows times the
    rest."""
    family = _family(explainer.estimator)
    if family == "linear":
        return None, 0, "a linear model has none, its contributions simply add up"
    if family not in _TREE_FAMILIES or explainer.method == "shap.ExactExplainer":
        return None, 0, ("no exact method for this model (shap's TreeExplainer covers "
                         "tree models without native categories)")
    rows = min(INTERACTION_ROWS, len(X))
    width = len(explainer._matrix)
    if (guess := per_row * width * rows) > limit:
        return None, 0, (f"skipped, as {rows} rows would take about {guess:.0f} s "
                         f"(the limit is {limit:.0f} s)")
    import shap

    try:
        tree = shap.TreeExplainer(explainer.estimator)
        sample = sample_rows(X, INTERACTION_ROWS, seed)
        Xt = explainer._transform(sample)
        started = time.perf_counter()
        pilot = _interaction_values(tree, Xt[:_PILOT_ROWS], explainer)
        per_row = (time.perf_counter() - started) / max(1, len(pilot))
        estimate = per_row * len(Xt)
        if estimate > limit:
            return None, 0, (f"skipped, as {len(Xt)} rows would take about {estimate:.0f} s "
                             f"(the limit is {limit:.0f} s)")
        values = np.concatenate([pilot, _interaction_values(tree, Xt[_PILOT_ROWS:],
                                                            explainer)])
    except Exception as e:  # shap's tree walk does not support every model
        return None, 0, f"shap could not compute them ({type(e).__name__}: {e})"
    M = explainer._matrix  # features x columns
    on_columns = np.einsum("fc,nfg,gd->ncd", M, values, M)
    return np.abs(on_columns).mean(axis=0), len(Xt), (
        f"mean |SHAP interaction| over {len(Xt)} rows (shap.TreeExplainer)")


def _interaction_values(tree: Any, Xt: np.ndarray, explainer: Explainer) -> np.ndarray:
    """rows x features x features, for the class each row is explained for (binary: the
    positive class; multiclass: the mean of the classes' |values|)."""
    if len(Xt) == 0:
        return np.zeros((0, Xt.shape[1], Xt.shape[1]))
    raw = tree.shap_interaction_values(Xt)
    values = np.stack(raw, axis=-1) if isinstance(raw, list) else np.asarray(raw)
    if values.ndim == 3:
        return values.astype(float)
    classes = explainer.classes
    if classes is not None and len(classes) > 2:
        return np.abs(values).mean(axis=-1)
    return values[..., -1].astype(float)
