"""Forgeline: one tool for the machine-learning engineering lifecycle.

    import forgeline as fl
    with fl.start_run(experiment="fraud") as run:
        run.log_params({"lr": 0.1})
        run.log_metric("auc", 0.91)
    fl.Client().search_runs("fraud", "metrics.auc > 0.9")
"""

from __future__ import annotations

from forgeline.entities import (
    Artifact,
    Dataset,
    Experiment,
    Lineage,
    Metric,
    ModelVersion,
    RegisteredModel,
    Run,
    RunStatus,
)
from forgeline.errors import (
    AlreadyExists,
    Conflict,
    ForgelineError,
    IntegrityError,
    InvalidInput,
    InvalidSpec,
    LeakageDetected,
    NotFound,
    StoreError,
)
from forgeline.tracking.client import Client
from forgeline.tracking.fluent import (
    active_run,
    end_run,
    log_artifact,
    log_dataset,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    set_tag,
    set_tags,
    start_run,
)
from forgeline.tracking.run import ActiveRun
from forgeline.version import __version__ as __version__


def __getattr__(name: str) -> object:
    """``fl.train`` and ``fl.load_model`` load scikit-learn only when first used."""
    if name == "train":
        from forgeline.training.train import train

        return train
    if name == "load_model":
        from forgeline.packaging import load_model

        return load_model
    raise AttributeError(f"module 'forgeline' has no attribute {name!r}")

__all__ = [
    "ActiveRun",
    "AlreadyExists",
    "Artifact",
    "Client",
    "Conflict",
    "Dataset",
    "Experiment",
    "ForgelineError",
    "IntegrityError",
    "InvalidInput",
    "InvalidSpec",
    "LeakageDetected",
    "Lineage",
    "Metric",
    "ModelVersion",
    "NotFound",
    "RegisteredModel",
    "Run",
    "RunStatus",
    "StoreError",
    "active_run",
    "end_run",
    "load_model",
    "log_artifact",
    "log_dataset",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "set_tag",
    "set_tags",
    "start_run",
    "train",
]
