"""Distillation: small students trained on a teacher's soft predictions (``optimize``).

The training rows are joined by synthetic neighbours (MUNGE, Bucila, Caruana and
Niculescu-Mizil 2006, "Model compression"): each row is paired with its nearest neighbour
in the teacher's preprocessed space (numbers imputed with the median and standardised),
and each raw column is, with probability ``p``, replaced by the neighbour's value
(categories, booleans, dates, text, and any missing value) or, for numbers, by a draw
from a normal around the neighbour's value with sd ``|a - b| / s`` (clipped to the
column's range, rounded for integer columns). The teacher labels every row with its
soft predictions (class probabilities, or values), so the students learn its function
and not only the labels, and see it where the data is thin.

Students reuse the teacher's fitted preprocessing (the Pipeline's ColumnTransformer), so
they take the same input columns. They are stock estimators, so they are packaged,
explained and converted to ONNX like any model:

- classification: a soft target ``q`` is fitted exactly by a classifier's own loss on
  each row repeated once per class with that class as label and ``q_k`` as sample weight:
  the weighted log-loss's gradient is then ``p - q`` and its Hessian ``p (1 - p)``, the
  cross-entropy against the teacher's probabilities (binary and multiclass alike). The
  LightGBM student is an ``LGBMClassifier``, the linear one a ``LogisticRegression``.
- regression: ``LGBMRegressor`` and ``Ridge`` on the teacher's values.

A linear teacher is not distilled (there is nothing smaller to learn it with).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from forgeline.entities import Task
from forgeline.optimization.candidate import Candidate, with_final

__all__ = ["LIGHTGBM_SIZES", "distill_candidates", "distillable", "munge", "soft_targets"]

log = logging.getLogger("forgeline.optimization")

# (trees, leaves, learning rate) of the LightGBM students
LIGHTGBM_SIZES: tuple[tuple[int, int, float], ...] = ((40, 7, 0.2), (100, 15, 0.1))
_WEIGHT_FLOOR = 1e-4  # a class copy whose teacher probability is below this is left out
_NN_COLUMNS = 64  # wider preprocessed spaces are reduced (TruncatedSVD) for the search
_LINEAR = ("LogisticRegression", "Ridge", "LinearRegression", "Lasso", "ElasticNet",
           "SGDClassifier", "SGDRegressor", "LinearSVC", "LinearSVR")


def _parts(model: Any) -> tuple[Any, Any] | None:
    steps = getattr(model, "steps", None)
    if not steps or len(steps) != 2 or not hasattr(steps[0][1], "transform"):
        return None
    return steps[0][1], steps[1][1]


def distillable(model: Any, task: Task | str) -> str | None:
    """Why ``model`` cannot be distilled, or None when it can."""
    parts = _parts(model)
    if parts is None:
        return (f"a {type(model).__name__} is not a pipeline of preprocessing and one "
                "model (Forgeline's own)")
    estimator = parts[1]
    name = type(estimator).__name__
    if name in _LINEAR:
        return f"the teacher is already a linear model ({name}): no smaller student"
    if Task(task) is not Task.REGRESSION and not hasattr(estimator, "predict_proba"):
        return f"the teacher ({name}) gives no class probabilities to learn from"
    return None


def soft_targets(model: Any, X: pd.DataFrame, task: Task | str) -> np.ndarray:
    """The teacher's soft predictions: rows x classes probabilities, or values."""
    if Task(task) is Task.REGRESSION:
        return np.asarray(model.predict(X), dtype=np.float64)
    return np.asarray(model.predict_proba(X), dtype=np.float64)


def _dense(matrix: Any) -> np.ndarray:
    return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix,
                      dtype=np.float64)


def _search_space(features: Any, X: pd.DataFrame, seed: int) -> np.ndarray:
    """The preprocessed rows, imputed and standardised (reduced when wide), for the
    nearest-neighbour search."""
    matrix = features.transform(X)
    if matrix.shape[1] > _NN_COLUMNS:
        from sklearn.decomposition import TruncatedSVD

        if not hasattr(matrix, "toarray"):
            matrix = np.nan_to_num(_dense(matrix))
        matrix = TruncatedSVD(_NN_COLUMNS, random_state=seed).fit_transform(matrix)
    dense = _dense(matrix)
    with np.errstate(all="ignore"):
        median = np.nanmedian(dense, axis=0)
    dense = np.where(np.isnan(dense), np.nan_to_num(median)[None, :], dense)
    std = dense.std(axis=0)
    return (dense - dense.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _neighbours(space: np.ndarray) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    found = NearestNeighbors(n_neighbors=2).fit(space).kneighbors(space,
                                                                  return_distance=False)
    rows = np.arange(len(space))
    return np.where(found[:, 0] == rows, found[:, 1], found[:, 0])


def _is_number(column: pd.Series) -> bool:
    return (pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column))


def _perturb_numbers(a: pd.Series, b: pd.Series, swap: np.ndarray, s: float,
                     rng: np.random.Generator) -> pd.Series:
    av = a.to_numpy(dtype=np.float64, na_value=np.nan)
    bv = b.to_numpy(dtype=np.float64, na_value=np.nan)
    both = ~np.isnan(av) & ~np.isnan(bv)
    drawn = bv.copy()  # a missing value on either side: the neighbour's value
    drawn[both] = rng.normal(bv[both], np.abs(av[both] - bv[both]) / s)
    finite = av[~np.isnan(av)]
    if finite.size:
        drawn = np.clip(drawn, finite.min(), finite.max())
    if pd.api.types.is_integer_dtype(a):
        drawn = np.round(drawn)
    values = np.where(swap, drawn, av)
    if pd.api.types.is_integer_dtype(a) and np.isnan(values).any():
        return pd.Series(values, index=a.index).astype("Int64")
    return pd.Series(values, index=a.index).astype(a.dtype)


def munge(X: pd.DataFrame, features: Any, *, p: float = 0.5, s: float = 5.0,
          copies: int = 1, seed: int = 0) -> pd.DataFrame:
    """``copies`` x ``len(X)`` synthetic rows made from ``X`` (see the module docstring).

    Args:
        X: raw input rows (any column kinds, missing values allowed).
        features: the teacher's fitted preprocessing (its ``transform`` gives the space
            the nearest neighbours are found in).
        p: the probability that a column of a row takes from the neighbour.
        s: the numbers' spread: sd = |a - b| / s.
        copies: how many synthetic rows per row.
        seed: the random seed; the same arguments give the same rows.
    """
    X = X.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    neighbour = _neighbours(_search_space(features, X, seed))
    out = []
    for _ in range(copies):
        synthetic = {}
        swap = rng.random((len(X), X.shape[1])) < p
        for j, name in enumerate(X.columns):
            a = X[name]
            b = a.iloc[neighbour].set_axis(a.index)
            if _is_number(a):
                synthetic[name] = _perturb_numbers(a, b, swap[:, j], s, rng)
            else:
                synthetic[name] = a.where(~swap[:, j], b)
        out.append(pd.DataFrame(synthetic, index=X.index))
    return pd.concat(out, ignore_index=True)


def _soft_rows(matrix: Any, targets: np.ndarray, classes: np.ndarray
               ) -> tuple[Any, np.ndarray, np.ndarray]:
    """Each row once per class it has probability on: (rows, labels, weights)."""
    take, labels, weights = [], [], []
    for k in range(len(classes)):
        keep = np.flatnonzero(targets[:, k] > _WEIGHT_FLOOR)
        take.append(keep)
        labels.append(np.full(len(keep), k))
        weights.append(targets[keep, k])
    index = np.concatenate(take)
    return (matrix[index], classes[np.concatenate(labels)], np.concatenate(weights))


def _native_codes(estimator: Any) -> list[int]:
    """The category-code columns the teacher was told of (Forgeline's native encoding)."""
    params = estimator.get_params() if hasattr(estimator, "get_params") else {}
    for key in ("categorical_column", "categorical_features"):
        value = params.get(key)
        if isinstance(value, list | tuple) and all(isinstance(v, int | np.integer)
                                                   for v in value):
            return [int(v) for v in value]
    return []


def _lightgbm(task: Task, trees: int, leaves: int, rate: float, codes: list[int],
              seed: int) -> Any:
    import lightgbm

    kwargs: dict[str, Any] = {
        "n_estimators": trees, "num_leaves": leaves, "learning_rate": rate,
        "min_child_samples": 20, "random_state": seed, "n_jobs": 1, "verbosity": -1,
        "deterministic": True, "force_row_wise": True}
    if codes:
        kwargs["categorical_column"] = codes
    if task is Task.REGRESSION:
        return lightgbm.LGBMRegressor(**kwargs)
    # soft targets near 0 or 1 have Hessians near 0: a leaf's Newton step is capped so the
    # first trees do not overshoot (it diverged without, 40 trees at 0.2); on the log-odds
    # scale only (a regression's leaves are in the target's units)
    return lightgbm.LGBMClassifier(**kwargs, max_delta_step=2.0)


def _cleaned(model: Any, needs_cleaning: bool) -> Any:
    """``model`` behind an imputer and a scaler when the teacher's matrix holds raw
    numbers, missing values and category codes (trees' native encoding)."""
    if not needs_cleaning:
        return model
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(SimpleImputer(strategy="median", add_indicator=True,
                                       keep_empty_features=True), StandardScaler(), model)


def _linear(task: Task, needs_cleaning: bool) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge

    model = Ridge(alpha=1.0) if task is Task.REGRESSION else LogisticRegression(
        C=1.0, max_iter=2000)
    return _cleaned(model, needs_cleaning)


def _fit(estimator: Any, matrix: Any, targets: np.ndarray, task: Task,
         classes: np.ndarray | None) -> Any:
    if task is Task.REGRESSION:
        return estimator.fit(matrix, targets)
    rows, labels, weights = _soft_rows(matrix, targets, np.asarray(classes))
    if hasattr(estimator, "steps"):  # a pipeline: the weight goes to its last step
        return estimator.fit(rows, labels, **{f"{estimator.steps[-1][0]}__sample_weight":
                                              weights})
    return estimator.fit(rows, labels, sample_weight=weights)


def distill_candidates(model: Any, X_train: pd.DataFrame, task: Task | str, seed: int = 0,
                       *, copies: int = 1, p: float = 0.5, s: float = 5.0,
                       sizes: Sequence[tuple[int, int, float]] = LIGHTGBM_SIZES,
                       linear: bool = True, students: Mapping[str, Any] | None = None
                       ) -> list[Candidate]:
    """Students of ``model`` (a fitted Pipeline of preprocessing and one estimator).

    Args:
        model: the teacher.
        X_train: the raw rows it was trained on (its input columns).
        task: ``binary``, ``multiclass`` or ``regression``.
        seed: the random seed (MUNGE and the students).
        copies: synthetic rows per training row; ``p`` and ``s``: see :func:`munge`.
        sizes: (trees, leaves, learning rate) of each LightGBM student.
        linear: add a linear student.
        students: more unfitted final estimators to distil into, by name (e.g. a small
            MLP from the model zoo); each must accept ``sample_weight`` in ``fit`` for a
            classification task.

    Returns:
        One :class:`Candidate` per student (empty when :func:`distillable` says why not).
    """
    task = Task(task)
    if distillable(model, task) is not None:
        return []
    features, teacher = _parts(model)  # type: ignore[misc]
    X_train = X_train.reset_index(drop=True)
    synthetic = munge(X_train, features, p=p, s=s, copies=copies, seed=seed)
    rows = pd.concat([X_train, synthetic], ignore_index=True)
    targets = soft_targets(model, rows, task)
    matrix = features.transform(rows)
    classes = getattr(model, "classes_", None)
    codes = _native_codes(teacher)
    dense = not hasattr(matrix, "toarray")
    needs_cleaning = bool(codes) or (dense and bool(np.isnan(np.asarray(
        matrix, dtype=np.float64)).any()))
    where = (f"{len(X_train):,} training rows and {len(synthetic):,} MUNGE neighbours "
             f"(p={p:g}, s={s:g})")
    common = {"rows": len(X_train), "synthetic": len(synthetic), "munge_p": p, "munge_s": s,
              "teacher": type(teacher).__name__}
    made: list[tuple[str, Any, dict[str, Any], str]] = []
    for trees, leaves, rate in sizes:
        made.append((f"distilled-lightgbm-{trees}x{leaves}",
                     _lightgbm(task, trees, leaves, rate, codes, seed),
                     {"student": "lightgbm", "trees": trees, "leaves": leaves,
                      "learning_rate": rate},
                     f"LightGBM student, {trees} trees of {leaves} leaves"))
    if linear:
        kind = "linear regression (ridge)" if task is Task.REGRESSION else (
            "logistic regression")
        made.append(("distilled-linear", _linear(task, needs_cleaning),
                     {"student": "linear"}, f"{kind.capitalize()} student"))
    for name, estimator in (students or {}).items():
        made.append((f"distilled-{name}", _cleaned(estimator, needs_cleaning),
                     {"student": name}, f"{name.upper()} student"))

    out = []
    for name, estimator, params, text in made:
        try:
            fitted = _fit(estimator, matrix, targets, task, classes)
        except Exception as e:  # a student from elsewhere that cannot fit here: left out
            if params["student"] in ("lightgbm", "linear"):
                raise
            log.warning("distillation: the %s student could not be fitted (%s: %s)",
                        params["student"], type(e).__name__, e)
            continue
        out.append(Candidate(name, "distillation", with_final(model, fitted), {**params, **common},
                             f"{text}, on the teacher's soft predictions over {where}"))
    return out
