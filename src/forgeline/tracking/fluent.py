"""``fl.start_run`` and friends: act on the active run of the current context.

The active run lives in a ContextVar, so threads and asyncio tasks each see their own.
Runs started inside another run's ``with`` block become its children.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from forgeline.entities import Dataset, RunStatus
from forgeline.errors import InvalidInput
from forgeline.store import Store
from forgeline.tracking.client import Client
from forgeline.tracking.run import ActiveRun

__all__ = ["active_run", "end_run", "log_artifact", "log_dataset", "log_metric", "log_metrics",
           "log_param", "log_params", "set_tag", "set_tags", "start_run"]

_active: ContextVar[ActiveRun | None] = ContextVar("forgeline_active_run", default=None)


def start_run(experiment: str | None = None, name: str | None = None,
              tags: Mapping[str, Any] | None = None, *, store: str | Store | None = None,
              nested: bool = True) -> ActiveRun:
    """Start a run and make it the active one.

    Inside another active run it becomes a child (same store and, by default, the same
    experiment) unless ``nested=False``. Use it as ``with fl.start_run(...) as run:``;
    an exception inside the block marks the run FAILED and propagates.
    """
    parent = _active.get() if nested else None
    if parent is not None and store is None and isinstance(parent.client, Client):
        client = parent.client
        experiment = experiment or client.store.get_experiment(parent.experiment_id).name
    else:
        client = Client(store)
    run = client.start_run(experiment, name, tags, parent.run_id if parent else None)
    token = _active.set(run)

    def release() -> None:
        # Ended from another context: leave that context's state alone.
        with contextlib.suppress(ValueError):
            _active.reset(token)

    run.on_end = release
    return run


def active_run() -> ActiveRun | None:
    return _active.get()


def _require() -> ActiveRun:
    run = _active.get()
    if run is None:
        raise InvalidInput("No active run.",
                           hint="Start one with `with fl.start_run(experiment=...) as run:`.")
    return run


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    _require().end(status)


def log_param(key: str, value: Any) -> None:
    _require().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    _require().log_params(params)


def log_metric(key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
    _require().log_metric(key, value, step, timestamp)


def log_metrics(metrics: Mapping[str, float], step: int = 0) -> None:
    _require().log_metrics(metrics, step)


def set_tag(key: str, value: Any) -> None:
    _require().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    _require().set_tags(tags)


def log_artifact(local_path: str | Path, artifact_path: str | None = None) -> list[str]:
    return _require().log_artifact(local_path, artifact_path)


def log_dataset(dataset: Dataset, context: str = "train") -> None:
    _require().log_dataset(dataset, context)
