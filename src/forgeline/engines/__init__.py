"""Where work runs: "run these independent tasks and give me their results".

One seam, :class:`Engine` (:mod:`forgeline.engines.base`, whose docstring states the
contract): ``map`` (results in task order, ``on_done`` as each arrives) and ``imap``
(tasks drawn lazily, a bounded window in flight, results streamed in task order).
Backends: :class:`LocalEngine` (worker processes or threads on this machine,
:mod:`forgeline.engines.local`) and ``RayEngine`` (a Ray cluster,
:mod:`forgeline.engines.ray`, imported only when asked for); :func:`get_engine` picks one
by name.
"""

from __future__ import annotations

from collections.abc import Mapping

from forgeline.engines.base import Engine, OnDone
from forgeline.engines.local import WORKERS, LocalEngine, available_cores
from forgeline.errors import InvalidInput

__all__ = ["ENGINES", "WORKERS", "Engine", "LocalEngine", "OnDone", "available_cores",
           "get_engine"]

ENGINES = ("local", "ray")


def get_engine(name: str | None = None, n_jobs: int = 1, *,
               address: str | None = None, env_vars: Mapping[str, str] | None = None
               ) -> Engine:
    """An engine by name.

    Args:
        name: ``"local"`` (None: the default; worker processes) or ``"ray"``.
        n_jobs: tasks side by side for the local engine (-1: one per core); Ray runs as
            many as the cluster has CPUs.
        address: the Ray cluster to join (None: ``RAY_ADDRESS``, else a new local
            instance).
        env_vars: environment variables for the Ray tasks' worker processes (see
            ``RayEngine``); the local engine's workers inherit this process's.

    Raises:
        InvalidInput: an unknown engine name.
    """
    if name in (None, "local"):
        return LocalEngine(n_jobs)
    if name == "ray":
        from forgeline.engines.ray import RayEngine

        return RayEngine(address, env_vars=env_vars)
    raise InvalidInput(f"Unknown engine {name!r}.", hint=f"Use one of {', '.join(ENGINES)}.")
