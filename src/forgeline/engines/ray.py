"""The Ray engine: the same "map these tasks" seam, run as Ray tasks on a cluster.

``ray`` is imported, and the cluster joined (``ray.init(address=...)``), on the first
``map``; without an address Ray uses ``RAY_ADDRESS`` or starts a local instance. The
function and its tasks must be picklable, and any files they name must be reachable from
the workers (a shared filesystem on a real cluster).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from forgeline.engines import Engine
from forgeline.errors import ForgelineError, InvalidInput

__all__ = ["RayEngine"]

T = TypeVar("T")


class RayEngine(Engine):
    """Run tasks as Ray tasks; results come back in task order.

    Args:
        address: the cluster to join (``ray://host:10001``, ``auto``, ``host:6379``);
            None: ``RAY_ADDRESS`` or a new local instance.
        num_cpus: CPUs for a new local instance (ignored when joining a cluster).
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self._ray: Any = None

    @property
    def n_jobs(self) -> int:  # type: ignore[override]
        if self._ray is None:
            return 1
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def _connect(self) -> Any:
        if self._ray is not None:
            return self._ray
        try:
            import ray
        except ImportError:
            raise InvalidInput("The Ray engine needs Ray, which is not installed.",
                               hint="pip install 'forgeline[ray]'") from None
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "ignore_reinit_error": True}
            if self.address is None and self.num_cpus is not None:
                kwargs["num_cpus"] = self.num_cpus
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as e:
                where = self.address or "a local instance"
                raise InvalidInput(f"Cannot start or join the Ray cluster ({where}): {e}",
                                   hint="Check --ray-address (e.g. ray://host:10001).") from e
        self._ray = ray
        return ray

    def map(self, fn: Callable[[T], Any], tasks: Iterable[T],
            on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
        """``[fn(t) for t in tasks]`` as Ray tasks; ``on_done(i, result)`` as each ends.

        Raises:
            ForgelineError: as raised by ``fn`` in a task (the original error).
        """
        tasks = list(tasks)
        if not tasks:
            return []
        ray = self._connect()
        remote = ray.remote(_apply)  # any picklable callable: functions, partials, builtins
        function = ray.put(fn)
        pending = {remote.remote(function, task): i for i, task in enumerate(tasks)}
        results: list[Any] = [None] * len(tasks)
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    i = pending.pop(ref)
                    results[i] = _get(ray, ref)
                    if on_done is not None:
                        on_done(i, results[i])
        except BaseException:
            for ref in pending:
                ray.cancel(ref)
            raise
        return results


def _apply(fn: Callable[[T], Any], task: T) -> Any:
    return fn(task)


def _get(ray: Any, ref: Any) -> Any:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = e.cause if isinstance(getattr(e, "cause", None), BaseException) else None
        if isinstance(cause, ForgelineError):
            raise cause from None
        raise
