"""Per-prediction explanations: each input column's contribution, in the model's own units.

The contributions of a row, plus the base value, add up to the model's output for that row
(exactly, to floating-point rounding). They are computed on the features the model sees
and summed back onto the input columns they came from (:mod:`feature_sources`), so a
one-hot column, a missing-value indicator, a datetime part or a TF-IDF term counts for
the column that made it.

Method and units per family (the output the contributions add up to):

=========================  ============================  ================================
family                     method                        units
=========================  ============================  ================================
lightgbm                   LightGBM ``pred_contrib``     log-odds (binary), the class's
                           (native TreeSHAP, exact)      raw score (multiclass), value
xgboost                    XGBoost ``pred_contribs``     as LightGBM
hist_gradient_boosting     ``shap.TreeExplainer``; with  as LightGBM
                           native categories (whose
                           splits shap's tree walk
                           misreads) Shapley values
                           over the input columns
random_forest              ``shap.TreeExplainer``        probability (classifiers), value
linear/logistic_regression coefficient x (feature -      log-odds / the class's logit,
                           background mean), exact       value
any other model            Shapley values over the       decision function, else
                           input columns (agnostic.py)   probability; value
=========================  ============================  ================================

A binary classifier is explained for its positive class (the second of ``classes``); a
multiclass one for the class it predicts in each row. The tree methods are path-dependent
TreeSHAP and need no background data; a linear model's base value is its output at the
mean of the transformed background features, and the model-agnostic values are measured
against background rows (:mod:`agnostic`): a frame given to :class:`Explainer`, or, for a
packaged model, a sample drawn from its training profile (:mod:`background`).
``shap`` is imported only when a model needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from forgeline.errors import NotExplainable
from forgeline.packaging.coercion import Part, rows_of
from forgeline.packaging.feature_sources import aggregation_matrix, feature_sources
from forgeline.packaging.reasons import format_reasons

if TYPE_CHECKING:
    from forgeline.packaging.predictor import Predictor

__all__ = ["Explainer", "Explanation", "explain"]


@dataclass(frozen=True)
class Explanation:
    """The explanation of some rows.

    Attributes:
        columns: the input columns, in the model's order.
        contributions: rows x columns, in ``units``.
        base: the base value of each row (the same for all rows of one class).
        output: the model's output per row in ``units`` (``base + contributions.sum(1)``).
        units: "log-odds", "logit", "probability" or "value".
        method: how the contributions were computed.
        explained: the class explained in each row (None for regression).
        rows: the rows explained (what the reasons quote): a frame, or its columns by name
            (a server's few records, never made a frame); :attr:`data` is the frame.
        preprocessing: what transformed the rows for the model: "scikit-learn" (the
            pipeline itself) or a faster equivalent given to the :class:`Explainer`.
    """

    columns: tuple[str, ...]
    contributions: np.ndarray
    base: np.ndarray
    output: np.ndarray
    units: str
    method: str
    explained: list[Any] | None
    rows: pd.DataFrame | Mapping[str, Any]
    preprocessing: str = "scikit-learn"

    @cached_property
    def data(self) -> pd.DataFrame:
        """The rows explained, as a frame indexed 0 .. n - 1."""
        if isinstance(self.rows, pd.DataFrame):
            return self.rows.reset_index(drop=True)
        return pd.DataFrame(dict(self.rows))

    def reasons(self, row: int, top: int = 3) -> list[str]:
        """The ``top`` columns that moved row ``row`` most, in words: ``amount 2,450 (+0.31)``."""
        # only the top columns' values are read: no row Series (~0.5 ms), no frame
        return format_reasons(_Cells(self.rows, row), self.columns, self.contributions[row],
                              top)

    def frame(self) -> pd.DataFrame:
        """``contrib_<column>`` per column, then ``base_value``, one row per row explained."""
        out = pd.DataFrame(self.contributions, index=self.data.index,
                           columns=[f"contrib_{c}" for c in self.columns])
        out["base_value"] = self.base
        return out

    def records(self, top: int = 3) -> list[dict[str, Any]]:
        """One JSON-ready dict per row: contributions, base value, output, class, reasons."""
        rows = []
        for i in range(len(self.output)):
            row = {"contributions": dict(zip(self.columns,
                                             self.contributions[i].tolist(), strict=True)),
                   "base_value": float(self.base[i]), "output": float(self.output[i]),
                   "reasons": self.reasons(i, top)}
            if self.explained is not None:
                row["class"] = _plain(self.explained[i])
            rows.append(row)
        return rows


class _Cells:
    """Row ``row`` of a frame or of columns by name, read cell by cell."""

    __slots__ = ("frame", "row", "rows")

    def __init__(self, rows: pd.DataFrame | Mapping[str, Any], row: int) -> None:
        self.rows, self.row = rows, row
        self.frame = isinstance(rows, pd.DataFrame)

    def __getitem__(self, column: str) -> Any:
        if self.frame:
            return self.rows[column].iat[self.row]
        return self.rows[column][self.row]


class Explainer:
    """Explains a fitted Forgeline pipeline (``features`` then ``model``); built once, reused.

    Args:
        model: a :class:`Predictor` (its input is validated first) or a fitted Pipeline.
        background: rows like the training data, for the linear models' base value; by
            default a sample drawn from a predictor's training profile.

    Raises:
        NotExplainable: a model that is not such a pipeline, or an estimator with no method.
    """

    def __init__(self, model: Predictor | Any, *, background: pd.DataFrame | None = None
                 ) -> None:
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline

        self.predictor = (None if isinstance(model, Pipeline) or not hasattr(model, "prepare")
                          else model)
        pipeline = model if self.predictor is None else self.predictor.model
        if not (isinstance(pipeline, Pipeline) and len(pipeline.steps) == 2
                and isinstance(pipeline.steps[0][1], ColumnTransformer)):
            raise NotExplainable(f"Cannot explain a {type(pipeline).__name__}: only a "
                                 "pipeline of Forgeline's features and one model is explained.",
                                 hint="Explain a model trained by Forgeline.")
        self.features: Any = pipeline.steps[0][1]
        self.estimator: Any = pipeline.steps[1][1]
        self.columns = tuple(str(c) for c in self.features.feature_names_in_)
        self._matrix = aggregation_matrix(feature_sources(self.features), self.columns)
        self.classes = getattr(self.estimator, "classes_", None)
        self._on_columns = False  # the method's values are on the input columns already
        self.method, self._compute = self._pick(background)
        self._fast: Callable[[Part], np.ndarray] | None = None
        self.preprocessing = "scikit-learn"

    @property
    def reads_matrix(self) -> bool:
        """Whether the method takes the preprocessed matrix (else the input columns)."""
        return not self._on_columns

    def use_preprocessing(self, transform: Callable[[Part], np.ndarray], name: str) -> None:
        """Preprocess rows with ``transform`` from now on: a faster equivalent of the
        pipeline's preprocessing (a validated frame, or its columns from
        :meth:`Signature.coerce_records`, in; the matrix the model takes out)
        that the caller has checked equal to it; ``name`` is reported as the
        explanations' ``preprocessing``. Only for a method that :attr:`reads_matrix`."""
        if not self.reads_matrix:
            raise ValueError(f"{self.method} reads the input columns, not the matrix")
        self._fast, self.preprocessing = transform, name

    @property
    def units(self) -> str:
        """What the contributions are measured in (see the module's table)."""
        if self.classes is None:
            return "value"
        if not hasattr(self.estimator, "decision_function") and _family(self.estimator) not in (
                "lightgbm", "xgboost"):
            return "probability"
        return "log-odds" if len(self.classes) == 2 else "logit"

    def explain(self, data: pd.DataFrame | Any) -> Explanation:
        """The explanation of ``data`` (a DataFrame, or records for a predictor).

        Raises:
            InvalidInput: input the predictor's signature rejects.
        """
        X = self._validate(data)
        n = rows_of(X)
        if self._on_columns:
            contrib, base = self._compute(X[list(self.columns)].reset_index(drop=True))
        else:
            contrib, base = self._compute(self._transform(X))
        # contrib: rows x outputs x features (or columns); base: rows x outputs
        if self.classes is not None and len(self.classes) > 2 and contrib.shape[1] > 1:
            totals = base + contrib.sum(axis=2)
            pick = totals.argmax(axis=1)
        else:  # binary: the positive class (the last output); regression: the one output
            pick = np.full(n, contrib.shape[1] - 1)
        rows = np.arange(n)
        values = contrib[rows, pick]
        values = values if self._on_columns else values @ self._matrix
        chosen = base[rows, pick]
        explained = None
        if self.classes is not None:
            explained = ([self.classes[i] for i in pick] if len(self.classes) > 2
                         else [self.classes[-1]] * n)
        if not isinstance(X, pd.DataFrame):
            X = dict(zip(self.predictor.signature.names, X, strict=True))
        return Explanation(self.columns, values, chosen, chosen + contrib[rows, pick].sum(1),
                           self.units, self.method, explained, X, self.preprocessing)

    def _validate(self, data: pd.DataFrame | Any) -> Part:
        """The model's input: a predictor's few records stay columns (no frame, ~0.25 ms
        for one row) when a faster preprocessing reads them; else a validated frame."""
        predictor = self.predictor
        if predictor is None:
            return data
        if (self._fast is not None and not isinstance(data, pd.DataFrame)
                and not predictor.hashed_inputs):
            return predictor.signature.coerce_records(data)
        return predictor.prepare(data)

    def _pick(self, background: pd.DataFrame | None) -> tuple[str, Any]:
        family = _family(self.estimator)
        if family == "lightgbm":
            return "lightgbm.pred_contrib", self._lightgbm
        if family == "xgboost":
            return "xgboost.pred_contribs", self._xgboost
        if family == "forest" or (family == "hist_gradient_boosting"
                                  and not np.any(self.estimator.is_categorical_)):
            import shap

            tree = shap.TreeExplainer(self.estimator)
            return "shap.TreeExplainer", lambda Xt: _from_shap(tree, Xt, self.estimator)
        if family == "linear":
            mean = self._background_mean(background)
            return "linear", lambda Xt: _linear(self.estimator, mean, Xt)
        # anything else (HistGradientBoosting splitting on categories, which shap's tree
        # walk reads wrongly): Shapley values over the input columns against a background
        from forgeline.packaging.agnostic import column_shapley

        rows = self._background(background)
        self._on_columns = True
        return ("shap.ExactExplainer", lambda X: column_shapley(self._output, X, rows))

    def _output(self, X: pd.DataFrame) -> np.ndarray:
        """The model's output in :attr:`units`, rows x outputs."""
        Xt = self.features.transform(X)
        if self.classes is None:
            out = self.estimator.predict(Xt)
        elif hasattr(self.estimator, "decision_function"):
            out = self.estimator.decision_function(Xt)
        else:
            out = self.estimator.predict_proba(Xt)
        out = np.asarray(out, dtype=float)
        return out.reshape(len(X), -1)

    def _transform(self, X: Part) -> np.ndarray:
        if self._fast is not None:
            return self._fast(X)
        Xt = self.features.transform(X)
        return np.asarray(Xt.toarray() if hasattr(Xt, "toarray") else Xt, dtype=float)

    def _background_mean(self, background: pd.DataFrame | None) -> np.ndarray:
        Xt = self.features.transform(self._background(background))
        return np.asarray(Xt.mean(axis=0), dtype=float).ravel()

    def _background(self, background: pd.DataFrame | None) -> pd.DataFrame:
        if background is None:
            if self.predictor is None or not self.predictor.profile:
                raise NotExplainable(f"Explaining a {type(self.estimator).__name__} model "
                                     "needs background data.",
                                     hint="Pass background= rows like the training data.")
            from forgeline.packaging.background import sample_from_profile

            background = sample_from_profile(self.predictor.profile, self.predictor.signature)
        return background[list(self.columns)]

    def _lightgbm(self, Xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # the booster itself: the scikit-learn wrapper's checks cost a few ms on one row
        jobs = getattr(self.estimator, "n_jobs", None)
        threads = {"num_threads": jobs} if isinstance(jobs, int) and jobs > 0 else {}
        raw = np.asarray(self.estimator.booster_.predict(Xt, pred_contrib=True, **threads),
                         dtype=float)
        return _split_native(raw, len(Xt), Xt.shape[1])

    def _xgboost(self, Xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import xgboost

        booster = self.estimator.get_booster()
        raw = np.asarray(booster.predict(xgboost.DMatrix(Xt), pred_contribs=True), dtype=float)
        return _split_native(raw, len(Xt), Xt.shape[1])


def explain(model: Predictor | Any, data: pd.DataFrame | Any, *,
            background: pd.DataFrame | None = None) -> Explanation:
    """Explain ``data`` with a one-off :class:`Explainer` (build one to explain repeatedly)."""
    return Explainer(model, background=background).explain(data)


def _family(estimator: Any) -> str:
    module = type(estimator).__module__
    name = type(estimator).__name__
    if module.startswith("lightgbm") or getattr(estimator, "explain_as", None) == "lightgbm":
        return "lightgbm"  # explain_as: a compiled LightGBM (packaging/compiled.py)
    if module.startswith("xgboost"):
        return "xgboost"
    if name.startswith("RandomForest"):
        return "forest"
    if name.startswith("HistGradientBoosting"):
        return "hist_gradient_boosting"
    if module.startswith("sklearn.linear_model") and hasattr(estimator, "coef_"):
        return "linear"
    return "other"


def _split_native(raw: np.ndarray, rows: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """LightGBM's and XGBoost's contributions (features then the bias, per class)."""
    raw = raw.reshape(rows, -1, width + 1)
    return raw[..., :-1], raw[..., -1]


def _from_shap(tree: Any, Xt: np.ndarray, estimator: Any) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(tree.shap_values(Xt), dtype=float)
    values = values[:, None, :] if values.ndim == 2 else values.transpose(0, 2, 1)
    base = np.broadcast_to(np.atleast_1d(np.asarray(tree.expected_value, dtype=float)),
                           (len(Xt), values.shape[1]))
    return values, np.array(base)


def _linear(estimator: Any, mean: np.ndarray, Xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=float))  # outputs x features
    intercept = np.atleast_1d(np.asarray(estimator.intercept_, dtype=float))
    contrib = (Xt - mean)[:, None, :] * coef[None, :, :]
    base = np.broadcast_to(intercept + coef @ mean, (len(Xt), len(intercept)))
    return contrib, np.array(base)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
