"""The models Forgeline can train: how to build each one and the space to tune it in.

Each entry builds an estimator from keyword hyperparameters (scikit-learn's contract) and
samples those hyperparameters from an Optuna trial. Built with no hyperparameters, an entry
is its library's default (the histogram gradient boosting is exactly scikit-learn's default
``HistGradientBoosting*``, the baseline a user would try first). Class weights are a
hyperparameter like the others (``balanced``), tried when the classes are imbalanced and
kept only when the metric says they help. Parallelism stays at the level of trials, so every
model uses a single thread.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge

from forgeline.entities import Task
from forgeline.errors import InvalidSpec

__all__ = ["DEFAULT_MODELS", "ZOO", "ModelKind", "available_models", "resolve_models"]


@dataclass(frozen=True, slots=True)
class ModelKind:
    name: str
    tasks: frozenset[Task]
    # build(task, params, seed, weighted) -> an unfitted estimator
    build: Callable[[Task, dict[str, Any], int, bool], BaseEstimator]
    space: Callable[[optuna.Trial], dict[str, Any]]
    dense: bool = False  # needs a dense feature matrix
    needs: str | None = None  # the importable package it needs
    # Simplicity order for the one-standard-error rule (selection.py): 0 linear, 1 bagged
    # trees, 2 boosted trees, 3 neural networks. Lower is simpler.
    complexity: int = 2
    # The order the families' default trials run in: strong and fast on large data first,
    # so a tight budget is spent on the family most likely to win (lower runs earlier).
    first: int = 0
    # The estimator's parameter naming the columns it splits on as categories, for models
    # that do (features.py passes them as integer codes, first); None: encoded for it.
    # LightGBM's is its Dataset parameter "categorical_column", which its own fit() sets
    # from fit(categorical_feature=...); a Pipeline's fit() cannot pass that on.
    categories: str | None = None
    # trains on the spec's ``device`` (auto, cpu, cuda): the estimator's "device" parameter
    device: bool = False

    @property
    def installed(self) -> bool:
        return self.needs is None or importlib.util.find_spec(self.needs) is not None


_CLS = frozenset({Task.BINARY, Task.MULTICLASS})
_ALL = frozenset(Task)


def _linear(task: Task, params: dict[str, Any], seed: int, weighted: bool) -> BaseEstimator:
    if task is Task.REGRESSION:
        return Ridge(alpha=params.get("alpha", 1.0))
    return LogisticRegression(C=params.get("C", 1.0), max_iter=2000,
                              class_weight="balanced" if weighted else None)


def _forest(task: Task, params: dict[str, Any], seed: int, weighted: bool) -> BaseEstimator:
    kwargs = {"n_estimators": params.get("n_estimators", 200),
              "max_depth": params.get("max_depth"),
              "min_samples_leaf": params.get("min_samples_leaf", 1),
              "max_features": params.get("max_features", "sqrt"),
              "random_state": seed, "n_jobs": 1}
    if task is Task.REGRESSION:
        return RandomForestRegressor(**{**kwargs, "max_features": params.get("max_features",
                                                                             1.0)})
    return RandomForestClassifier(**kwargs,
                                  class_weight="balanced_subsample" if weighted else None)


def _forest_space(trial: optuna.Trial) -> dict[str, Any]:
    return {"n_estimators": trial.suggest_int("n_estimators", 100, 400, step=50),
            "max_depth": trial.suggest_categorical("max_depth", [None, 6, 10, 16]),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
            "max_features": trial.suggest_categorical("max_features", ["sqrt", 0.5, 1.0])}


def _hgb(task: Task, params: dict[str, Any], seed: int, weighted: bool) -> BaseEstimator:
    # scikit-learn's defaults unless tuned; early stopping on its own validation share
    # from 10,000 rows ("auto"), so more iterations cost nothing where they do not help
    kwargs = {"learning_rate": params.get("learning_rate", 0.1),
              "max_iter": params.get("max_iter", 100),
              "max_leaf_nodes": params.get("max_leaf_nodes", 31),
              "min_samples_leaf": params.get("min_samples_leaf", 20),
              "l2_regularization": params.get("l2_regularization", 0.0),
              "early_stopping": "auto", "random_state": seed}
    if task is Task.REGRESSION:
        return HistGradientBoostingRegressor(**kwargs)
    return HistGradientBoostingClassifier(**kwargs, class_weight="balanced" if weighted else None)


def _hgb_space(trial: optuna.Trial) -> dict[str, Any]:
    return {"learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "max_iter": trial.suggest_int("max_iter", 100, 1000, step=50),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 15, 63),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 100, log=True),
            "l2_regularization": trial.suggest_float("l2_regularization", 1e-8, 10.0, log=True)}


def _lightgbm(task: Task, params: dict[str, Any], seed: int, weighted: bool) -> BaseEstimator:
    import lightgbm

    kwargs = {"n_estimators": params.get("n_estimators", 300),
              "learning_rate": params.get("learning_rate", 0.05),
              "num_leaves": params.get("num_leaves", 31),
              "min_child_samples": params.get("min_child_samples", 20),
              "subsample": params.get("subsample", 1.0), "subsample_freq": 1,
              "colsample_bytree": params.get("colsample_bytree", 1.0),
              "reg_lambda": params.get("reg_lambda", 0.0),
              "random_state": seed, "n_jobs": 1, "verbosity": -1, "deterministic": True,
              "force_row_wise": True}
    if task is Task.REGRESSION:
        return lightgbm.LGBMRegressor(**kwargs)
    return lightgbm.LGBMClassifier(**kwargs, class_weight="balanced" if weighted else None)


def _lightgbm_space(trial: optuna.Trial) -> dict[str, Any]:
    return {"n_estimators": trial.suggest_int("n_estimators", 100, 600, step=50),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 15, 127, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
            "subsample": trial.suggest_float("subsample", 0.6, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-8, 10.0, log=True)}


def _xgboost(task: Task, params: dict[str, Any], seed: int, weighted: bool) -> BaseEstimator:
    import xgboost

    kwargs = {"n_estimators": params.get("n_estimators", 300),
              "learning_rate": params.get("learning_rate", 0.1),
              "max_depth": params.get("max_depth", 6),
              "subsample": params.get("subsample", 1.0),
              "colsample_bytree": params.get("colsample_bytree", 1.0),
              "reg_lambda": params.get("reg_lambda", 1.0),
              "random_state": seed, "n_jobs": 1, "tree_method": "hist"}
    if task is Task.REGRESSION:
        return xgboost.XGBRegressor(**kwargs)
    return xgboost.XGBClassifier(**kwargs)


def _xgboost_space(trial: optuna.Trial) -> dict[str, Any]:
    return {"n_estimators": trial.suggest_int("n_estimators", 100, 600, step=50),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "max_depth": trial.suggest_int("max_depth", 3, 10),
            "subsample": trial.suggest_float("subsample", 0.6, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-8, 10.0, log=True)}


def _mlp(task: Task, params: dict[str, Any], seed: int, weighted: bool) -> BaseEstimator:
    from forgeline.training.mlp import MLPClassifier, MLPRegressor

    keys = ("width", "depth", "dropout", "learning_rate", "weight_decay", "batch_size",
            "max_epochs")
    kwargs = {k: params[k] for k in keys if k in params}
    if task is Task.REGRESSION:
        return MLPRegressor(**kwargs, random_state=seed)
    return MLPClassifier(**kwargs, random_state=seed,
                         class_weight="balanced" if weighted else None)


def _mlp_space(trial: optuna.Trial) -> dict[str, Any]:
    return {"width": trial.suggest_int("width", 32, 512, log=True),
            "depth": trial.suggest_int("depth", 1, 4),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
            "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-7, 1e-2, log=True),
            "batch_size": trial.suggest_categorical("batch_size", [128, 256, 512, 1024]),
            "max_epochs": trial.suggest_int("max_epochs", 10, 100, step=10)}


ZOO: dict[str, ModelKind] = {m.name: m for m in [
    ModelKind("logistic_regression", _CLS, _linear,
              lambda t: {"C": t.suggest_float("C", 1e-3, 1e2, log=True)}, complexity=0,
              first=3),
    ModelKind("linear", frozenset({Task.REGRESSION}), _linear,
              lambda t: {"alpha": t.suggest_float("alpha", 1e-3, 1e2, log=True)},
              complexity=0, first=3),
    ModelKind("random_forest", _ALL, _forest, _forest_space, complexity=1, first=4),
    ModelKind("hist_gradient_boosting", _ALL, _hgb, _hgb_space, dense=True, complexity=2,
              first=0, categories="categorical_features"),
    ModelKind("lightgbm", _ALL, _lightgbm, _lightgbm_space, needs="lightgbm", complexity=2,
              first=1, categories="categorical_column"),
    ModelKind("xgboost", _ALL, _xgboost, _xgboost_space, needs="xgboost", complexity=2,
              first=2),
    # PyTorch (the torch extra); never a default: slower to train than boosted trees and
    # rarely better on tables. Category codes feed its embeddings.
    ModelKind("mlp", _ALL, _mlp, _mlp_space, dense=True, needs="torch", complexity=3,
              first=5, categories="categorical_columns", device=True),
]}

# A default gradient boosting (scikit-learn's) is always among them: the obvious baseline.
DEFAULT_MODELS = {
    Task.BINARY: ("hist_gradient_boosting", "lightgbm", "logistic_regression", "random_forest"),
    Task.MULTICLASS: ("hist_gradient_boosting", "lightgbm", "logistic_regression",
                      "random_forest"),
    Task.REGRESSION: ("hist_gradient_boosting", "lightgbm", "linear", "random_forest"),
}


def available_models(task: Task) -> list[str]:
    return [name for name, kind in ZOO.items() if task in kind.tasks and kind.installed]


def resolve_models(names: tuple[str, ...], task: Task, device: str = "auto"
                   ) -> list[ModelKind]:
    """The spec's model names (the task's defaults when empty), checked and installed;
    ``device`` (the spec's) "cuda" needs a GPU that torch sees when a model uses it."""
    chosen = names or tuple(n for n in DEFAULT_MODELS[task] if ZOO[n].installed)
    kinds = []
    for name in chosen:
        kind = ZOO.get(name)
        if kind is None or task not in kind.tasks:
            raise InvalidSpec(f"Model {name!r} is not available for a {task} task.",
                              hint=f"Choose from: {', '.join(available_models(task))}.")
        if not kind.installed:
            raise InvalidSpec(f"Model {name!r} needs the {kind.needs} package, which is not "
                              "installed.", hint=f"pip install 'forgeline[{kind.needs}]', "
                                                 f"or remove {name} from models.")
        kinds.append(kind)
    if device == "cuda" and any(kind.device for kind in kinds):
        import torch

        if not torch.cuda.is_available():
            raise InvalidSpec("device is cuda, but torch sees no CUDA GPU on this machine.",
                              hint="Set device: auto (a GPU when there is one) or cpu.")
    return kinds
