"""Where work runs: "run these independent tasks and give me their results, in order".

The local engine runs them in worker processes on this machine (joblib's loky pool);
one task at a time when ``n_jobs`` is 1, in this process. The Ray engine
(:mod:`forgeline.engines.ray`) runs them on a Ray cluster. ``map`` may report each
result as it arrives through ``on_done(index, result)`` (progress bars).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

__all__ = ["ENGINES", "Engine", "LocalEngine", "get_engine"]

ENGINES = ("local", "ray")

T = TypeVar("T")


class Engine:
    """The one seam: map a picklable function over independent tasks, results in order."""

    n_jobs: int = 1

    def map(self, fn: Callable[[T], Any], tasks: Iterable[T],
            on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
        raise NotImplementedError


class LocalEngine(Engine):
    def __init__(self, n_jobs: int = 1) -> None:
        self.n_jobs = max(1, os.cpu_count() or 1) if n_jobs == -1 else max(1, n_jobs)

    def map(self, fn: Callable[[T], Any], tasks: Iterable[T],
            on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
        tasks = list(tasks)
        if self.n_jobs == 1 or len(tasks) <= 1:
            results = []
            for i, task in enumerate(tasks):
                results.append(fn(task))
                if on_done is not None:
                    on_done(i, results[-1])
            return results
        from joblib import Parallel, delayed

        results = list(Parallel(n_jobs=min(self.n_jobs, len(tasks)), backend="loky")(
            delayed(fn)(task) for task in tasks))
        if on_done is not None:
            for i, result in enumerate(results):
                on_done(i, result)
        return results


def get_engine(name: str | None = None, n_jobs: int = 1, *,
               address: str | None = None) -> Engine:
    """``local`` (default) or ``ray`` (joining ``address``, else RAY_ADDRESS or a new local
    instance).

    Raises:
        InvalidInput: an unknown engine name.
    """
    if name in (None, "local"):
        return LocalEngine(n_jobs)
    if name == "ray":
        from forgeline.engines.ray import RayEngine

        return RayEngine(address)
    from forgeline.errors import InvalidInput

    raise InvalidInput(f"Unknown engine {name!r}.", hint=f"Use one of {', '.join(ENGINES)}.")
