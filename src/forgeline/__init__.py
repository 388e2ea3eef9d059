"""Forgeline: one tool for the machine-learning engineering lifecycle.

    import forgeline as fl
    with fl.start_run(experiment="fraud") as run:
        run.log_params({"lr": 0.1})
        run.log_metric("auc", 0.91)
    fl.Client().search_runs("fraud", "metrics.auc > 0.9")
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from forgeline.version import __version__ as __version__

if TYPE_CHECKING:  # what the names below are, for type checkers and editors
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
    from forgeline.packaging import load_model
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
    from forgeline.workflows.train import train

# Each public name is imported from its module on first use, so ``import forgeline`` (and
# every ``forgeline`` command, whose package this is) pays only for what it uses:
# ``fl.train`` loads scikit-learn, ``fl.Client`` SQLAlchemy, and only when first touched.
_WHERE = {
    **dict.fromkeys(["Artifact", "Dataset", "Experiment", "Lineage", "Metric", "ModelVersion",
                     "RegisteredModel", "Run", "RunStatus"], "forgeline.entities"),
    **dict.fromkeys(["AlreadyExists", "Conflict", "ForgelineError", "IntegrityError",
                     "InvalidInput", "InvalidSpec", "LeakageDetected", "NotFound",
                     "StoreError"], "forgeline.errors"),
    **dict.fromkeys(["active_run", "end_run", "log_artifact", "log_dataset", "log_metric",
                     "log_metrics", "log_param", "log_params", "set_tag", "set_tags",
                     "start_run"], "forgeline.tracking.fluent"),
    "ActiveRun": "forgeline.tracking.run",
    "Client": "forgeline.tracking.client",
    "load_model": "forgeline.packaging",
    "train": "forgeline.workflows.train",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(_WHERE[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'forgeline' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
