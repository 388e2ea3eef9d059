"""Where work runs: "run these independent tasks and give me their results, in order".

The local engine runs them in worker processes on this machine (joblib's loky pool);
one task at a time when ``n_jobs`` is 1, in this process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

__all__ = ["Engine", "LocalEngine", "get_engine"]

T = TypeVar("T")


class Engine:
    """The one seam: map a picklable function over independent tasks, results in order."""

    n_jobs: int = 1

    def map(self, fn: Callable[[T], Any], tasks: Iterable[T]) -> list[Any]:
        raise NotImplementedError


class LocalEngine(Engine):
    def __init__(self, n_jobs: int = 1) -> None:
        self.n_jobs = max(1, os.cpu_count() or 1) if n_jobs == -1 else max(1, n_jobs)

    def map(self, fn: Callable[[T], Any], tasks: Iterable[T]) -> list[Any]:
        tasks = list(tasks)
        if self.n_jobs == 1 or len(tasks) <= 1:
            return [fn(task) for task in tasks]
        from joblib import Parallel, delayed

        return list(Parallel(n_jobs=min(self.n_jobs, len(tasks)), backend="loky")(
            delayed(fn)(task) for task in tasks))


def get_engine(name: str | None = None, n_jobs: int = 1) -> Engine:
    """``local`` (default). Ray arrives with the serving issue's batch scoring."""
    if name in (None, "local"):
        return LocalEngine(n_jobs)
    from forgeline.errors import InvalidInput

    raise InvalidInput(f"Unknown engine {name!r}.", hint="Use --engine local.")
