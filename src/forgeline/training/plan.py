"""What a trial fits, in any process: the model plan (features and estimator as one
scikit-learn pipeline), the CV folds it is scored on, and the score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    TimeSeriesSplit,
)
from sklearn.pipeline import Pipeline

from forgeline.data.schema import Schema
from forgeline.data.split import keep_together
from forgeline.entities import SplitStrategy, Task
from forgeline.metrics import Metric, get_metric
from forgeline.packaging.embeddings import DEFAULT_MODEL
from forgeline.training.features import build_preprocessor, native_categories
from forgeline.training.zoo import ZOO

__all__ = ["BALANCED", "Folds", "ModelPlan", "cv_folds", "score_model"]

Folds = list[tuple[np.ndarray, np.ndarray]]
BALANCED = "balanced"  # the trial parameter that weights the classes


def _hyper(params: dict[str, Any]) -> dict[str, Any]:
    """A trial's model hyperparameters (without the class-weight switch)."""
    return {k: v for k, v in params.items() if k != BALANCED}


@dataclass(frozen=True)
class ModelPlan:
    """Everything needed to build the same pipeline in any process."""

    task: Task
    schema: Schema
    features: tuple[str, ...]
    metric: str
    seed: int
    imbalanced: bool  # class weights are worth trying (the rarest class under a quarter)
    encoding: str = "auto"
    max_onehot: int = 20
    device: str = "auto"  # where models that can use a GPU train (TrainSpec.device)
    embeddings: tuple[str, ...] = ()  # text columns encoded as sentence embeddings
    embedding_model: str = DEFAULT_MODEL
    tfidf_too: tuple[str, ...] = ()  # embedded columns that keep their TF-IDF terms too
    # per text column with LLM questions, its LLMFeatures step's arguments (spec_llm.py)
    llm: tuple[tuple[str, dict[str, Any]], ...] = ()

    @property
    def scorer(self) -> Metric:
        return get_metric(self.metric, self.task)

    def pipeline(self, model: str, params: dict[str, Any]) -> Pipeline:
        kind = ZOO[model]
        target_type = {Task.BINARY: "binary", Task.MULTICLASS: "multiclass"}.get(
            self.task, "continuous")
        native = kind.categories is not None and self.encoding == "auto"
        features = build_preprocessor(self.schema, self.features, encoding=self.encoding,
                                      max_onehot=self.max_onehot, dense=kind.dense,
                                      seed=self.seed, target_type=target_type,
                                      native=native, embeddings=self.embeddings,
                                      embedding_model=self.embedding_model,
                                      tfidf_too=self.tfidf_too, llm=self.llm)
        estimator = kind.build(self.task, _hyper(params), self.seed,
                               bool(params.get(BALANCED)))
        codes = len(native_categories(self.schema, self.features)) if native else 0
        if codes:
            estimator.set_params(**{kind.categories: list(range(codes))})
        if kind.device:
            estimator.set_params(device=self.device)
        return Pipeline([("features", features), ("model", estimator)])


def score_model(model: Pipeline, X: pd.DataFrame, y: pd.Series, metric: Metric) -> float:
    classes = getattr(model, "classes_", None)
    prediction = model.predict_proba(X) if metric.needs_proba else model.predict(X)
    return metric(np.asarray(y), prediction, classes)


def cv_folds(task: Task, y: pd.Series, n_folds: int, seed: int, *,
             strategy: SplitStrategy | None = None, groups: pd.Series | None = None,
             times: pd.Series | None = None, copies: np.ndarray | None = None) -> Folds:
    """Cross-validation folds inside the training split, matching how it was split off.

    ``copies`` (per row, its group of copies, -1 for none): each group is kept in one fold
    (:func:`forgeline.data.split.keep_together`), so no validation row is a copy of a row
    the model was fitted on.
    """
    index = np.arange(len(y))
    classify = task is not Task.REGRESSION
    if strategy is SplitStrategy.TIME and times is not None:
        order = np.argsort(times.to_numpy(), kind="stable")
        return [(order[a], order[b]) for a, b in TimeSeriesSplit(n_folds).split(order)]
    if groups is not None:
        splitter: Any = (StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed)
                         if classify else GroupKFold(n_folds))
        return list(splitter.split(index, y, groups))
    splitter = (StratifiedKFold(n_folds, shuffle=True, random_state=seed) if classify
                else KFold(n_folds, shuffle=True, random_state=seed))
    folds = list(splitter.split(index, y))
    if copies is None or not (copies >= 0).any():
        return folds
    fold_of = np.empty(len(y), dtype=np.int64)
    for k, (_, valid) in enumerate(folds):
        fold_of[valid] = k
    fold_of = keep_together(fold_of, copies)
    return [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k))
            for k in range(len(folds))]
