"""The Ray engine: the same seam (:class:`~forgeline.engines.base.Engine`), run as Ray
tasks on a cluster.

``ray`` is imported, and the cluster joined (``ray.init(address=...)``), on the first
``map`` or ``imap``; without an address Ray uses ``RAY_ADDRESS`` or starts a local
instance. The function and its tasks must be picklable (cloudpickle), and any files they
name must be reachable from the workers (a shared filesystem on a real cluster). ``fn`` is
put in the object store once per call, not once per task, and the same function object
passed to the next call is not sent again (a function carrying a large frame, such as
tuning's folds, travels once per run).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from forgeline.engines.base import Engine, OnDone, check_window
from forgeline.errors import ForgelineError, InvalidInput

__all__ = ["RayEngine"]

_CONNECT_S = 5.0
_SETTLE_S = 60.0  # the longest a failed map waits for its cancelled tasks to stop
T = TypeVar("T")
R = TypeVar("R")


class RayEngine(Engine):
    """Run tasks as Ray tasks; results come back in task order.

    Args:
        address: the cluster to join (``ray://host:10001``, ``auto``, ``host:6379``);
            None: ``RAY_ADDRESS`` or a new local instance.
        num_cpus: CPUs for a new local instance (ignored when joining a cluster).
        env_vars: environment variables set in the worker processes that run this
            driver's tasks (Ray's ``runtime_env={"env_vars": ...}``): a cluster's workers
            were started with their own environment, not the caller's, so settings the
            tasks need (e.g. the AWS_* variables of the object storage they read) travel
            this way, set on each task (so also when Ray was initialised before this
            engine). Values are visible to anyone who can inspect the tasks' runtime
            environment on the cluster.
    """

    distributed = True

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 env_vars: Mapping[str, str] | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.env_vars = dict(env_vars or {})
        self._ray: Any = None
        self._sent: tuple[Any, Any] | None = None  # the last function put, and its ref

    @property
    def n_jobs(self) -> int:
        """The cluster's CPUs once joined (1 before: nothing is started to count them)."""
        if self._ray is None:
            return 1
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def __repr__(self) -> str:
        return f"RayEngine(address={self.address!r})"

    def start(self) -> None:
        self._connect()

    def _connect(self) -> Any:
        if self._ray is not None:
            return self._ray
        _token_auth_default()
        try:
            import ray
        except ImportError:
            raise InvalidInput("The Ray engine needs Ray, which is not installed.",
                               hint="pip install 'forgeline[ray]'") from None
        if self.address not in (None, "auto", "local"):
            # also when Ray is already initialised here: a wrong address still says so
            _check_reachable(self.address)
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "logging_level": logging.WARNING,  # no INFO chatter
                                      "ignore_reinit_error": True}
            if self.address is None and self.num_cpus is not None:
                kwargs["num_cpus"] = self.num_cpus
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as e:
                where = self.address or "a local instance"
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                token = ("InvalidAuthToken" in str(e) or "uthentication" in str(e)
                         or "uthentication" in str(e.__cause__ or ""))
                raise InvalidInput(
                    f"Cannot start or join the Ray cluster ({where}): "
                    + ("its token authentication refused this client" if token else first),
                    hint="Set RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN or "
                         "RAY_AUTH_TOKEN_PATH), as `ray start` printed." if token
                    else "Check the cluster's address (e.g. ray://host:10001).") from e
        self._ray = ray
        return ray

    def _remote(self, ray: Any) -> Any:
        """The Ray task that applies any picklable callable (functions, partials,
        builtins), in a runtime environment with ``env_vars`` when there are any."""
        remote = ray.remote(_apply)
        if self.env_vars:
            remote = remote.options(runtime_env={"env_vars": self.env_vars})
        return remote

    def map(self, fn: Callable[[T], R], tasks: Iterable[T],
            on_done: OnDone | None = None) -> list[R]:
        tasks = list(tasks)
        if not tasks:
            return []
        ray = self._connect()
        remote = self._remote(ray)
        function = self._put(ray, fn)
        pending = {remote.remote(function, task): i for i, task in enumerate(tasks)}
        results: list[Any] = [None] * len(tasks)
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)  # completion order
                for ref in done:
                    i = pending.pop(ref)
                    results[i] = _get(ray, ref)
                    if on_done is not None:
                        on_done(i, results[i])
        finally:
            _cancel(ray, list(pending))
        return results

    def imap(self, fn: Callable[[T], R], tasks: Iterable[T], *,
             window: int | None = None) -> Iterator[R]:
        check_window(window, 1)  # a bad window fails here, before Ray starts
        ray = self._connect()
        return self._imap(ray, fn, tasks, check_window(window, self.n_jobs))

    def _put(self, ray: Any, fn: Callable[..., Any]) -> Any:
        """``fn`` in the object store: put once, reused while the caller passes the same
        object (kept referenced here, so its identity cannot be taken by another)."""
        if self._sent is None or self._sent[0] is not fn:
            self._sent = (fn, ray.put(fn))
        return self._sent[1]

    def _imap(self, ray: Any, fn: Callable[[T], R], tasks: Iterable[T], window: int
              ) -> Iterator[R]:
        remote = self._remote(ray)
        function = self._put(ray, fn)
        pending: deque[Any] = deque()
        try:
            for task in tasks:
                pending.append(remote.remote(function, task))
                if len(pending) >= window:
                    yield _get(ray, pending.popleft())
            while pending:
                yield _get(ray, pending.popleft())
        finally:
            _cancel(ray, list(pending))


def _cancel(ray: Any, refs: list[Any]) -> None:
    """Cancel the tasks of ``refs`` and wait until none of them still runs: a caller that
    failed cleans up after its tasks (removes the outputs they wrote), and a cancelled task
    that was already writing must not write after that clean-up."""
    if not refs:
        return
    for ref in refs:
        ray.cancel(ref)
    ray.wait(refs, num_returns=len(refs), timeout=_SETTLE_S)


def _token_auth_default() -> None:
    """``ray start`` turns token authentication on and keeps the cluster's token in
    ``~/.ray/auth_token``, yet a client sends it only with ``RAY_AUTH_MODE=token``: where a
    token is at hand (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or that file) and the mode
    is not set, use it. A cluster without authentication accepts such a client too. Ray
    reads the mode when it is imported, so this runs before the first import."""
    if "RAY_AUTH_MODE" in os.environ or "ray" in sys.modules:
        return
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or "~/.ray/auth_token").expanduser()
    if os.environ.get("RAY_AUTH_TOKEN") or path.is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


def _check_reachable(address: str) -> None:
    """Fail at once when nothing listens at the cluster's address: Ray itself retries an
    unreachable head for minutes."""
    hostport = address.removeprefix("ray://").rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise InvalidInput(f"Invalid Ray address {address!r}.",
                           hint="Use host:port (6379, the head's GCS port) or "
                                "ray://host:10001 (Ray Client).")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=_CONNECT_S).close()
    except OSError as e:
        raise InvalidInput(f"No Ray cluster answers at {address} ({e.strerror or e}).",
                           hint="Start one with `ray start --head` or check the address "
                                "and that the port is open from here.") from None


def _apply(fn: Callable[[T], Any], task: T) -> Any:
    return fn(task)


def _get(ray: Any, ref: Any) -> Any:
    """The task's result, or the error its function raised, as itself (not Ray's wrapper)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, ForgelineError):
            raise cause from None  # a user's mistake: one line, no remote traceback
        if isinstance(cause, Exception):
            raise cause from e  # Ray's error carries the remote traceback
        raise
