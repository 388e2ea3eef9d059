"""The engine contract: "run these independent tasks and give me their results".

Every piece of parallel work in Forgeline (tuning trials, batch-scoring chunks,
monitoring's column binning) goes through an :class:`Engine`; no module runs its own
pool. Backends: :class:`~forgeline.engines.local.LocalEngine` (processes or threads on
this machine) and :class:`~forgeline.engines.ray.RayEngine` (a Ray cluster).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from forgeline.errors import InvalidInput

__all__ = ["Engine", "OnDone"]

T = TypeVar("T")
R = TypeVar("R")

OnDone = Callable[[int, Any], None]
"""``on_done(index, result)``: told of each result as it arrives (progress bars)."""


class Engine(abc.ABC):
    """Runs a function over independent tasks, side by side; the one seam for parallel work.

    The contract every engine keeps (``tests/engines`` checks it over each):

    - ``fn`` and each task must be picklable where the engine runs tasks in other
      processes (any function a module defines, ``functools.partial``, builtins; the local
      process engine and Ray also take lambdas and closures, through cloudpickle). ``fn``
      must not rely on running in the caller's process or thread.
    - :meth:`map` returns the results **in task order**, whatever order they finish in.
      ``on_done(index, result)`` is called once per task **as each result arrives**, in
      completion order, always from the calling thread (a progress bar needs no lock).
    - :meth:`imap` streams: it draws tasks from ``tasks`` lazily, keeps at most ``window``
      of them in flight (drawn but not yet yielded), and yields each result **in task
      order** as soon as it and those before it are ready. Memory holds ``window`` tasks
      and results whatever the number of tasks, so a caller can read, score and write a
      file chunk by chunk. The generator must be consumed or closed (``contextlib.closing``)
      for its clean-up to run at once.
    - **Errors**: an exception raised by ``fn`` reaches the caller as itself (its class,
      message and attributes, e.g. a :class:`~forgeline.errors.ForgelineError`), from
      :meth:`map` at once and from :meth:`imap` when that task's turn to be yielded comes.
      So does an exception raised by ``tasks`` or ``on_done``. Either way the tasks not yet
      started are cancelled; tasks already running may finish, and their results are
      dropped. Ray and the thread pool wait until those have finished or stopped before
      the error reaches the caller, so that it can clean up after them (remove what they
      wrote).
    - ``n_jobs``: how many tasks run at the same time; ``n_jobs == 1`` may run each task
      in the calling thread.
    - ``distributed``: whether tasks run on a cluster (other processes or machines, with
      CPUs to spare) rather than in this machine's fixed pool: a caller may then split its
      work finer (tuning runs each CV fold as a task of its own).
    """

    distributed: bool = False

    def start(self) -> None:  # noqa: B027 - a no-op unless the engine has a cluster to join
        """Get ready to run tasks now (join the cluster), so that a bad address fails
        before any work starts; :meth:`map` and :meth:`imap` do it themselves otherwise."""

    @property
    @abc.abstractmethod
    def n_jobs(self) -> int:
        """How many tasks run at the same time (at least 1)."""

    @abc.abstractmethod
    def map(self, fn: Callable[[T], R], tasks: Iterable[T],
            on_done: OnDone | None = None) -> list[R]:
        """``[fn(t) for t in tasks]``, run side by side; results in task order.

        Args:
            fn: the function each task is given to.
            tasks: the tasks (read whole before the first starts).
            on_done: called as ``on_done(index, result)`` as each result arrives, in
                completion order, from the calling thread.

        Returns:
            The results, in task order.

        Raises:
            Exception: the first error raised by ``fn`` to arrive (itself), the others
                not yet started being cancelled.
        """

    @abc.abstractmethod
    def imap(self, fn: Callable[[T], R], tasks: Iterable[T], *,
             window: int | None = None) -> Iterator[R]:
        """Stream ``fn(t)`` for each task: tasks drawn lazily, results yielded in task order.

        Args:
            fn: the function each task is given to.
            tasks: an iterable, drawn from only as the window has room (a generator
                reading a file chunk by chunk, say).
            window: the most tasks in flight (drawn, not yet yielded); None: ``n_jobs``.

        Yields:
            ``fn(t)`` for each task, in task order.

        Raises:
            InvalidInput: ``window`` below 1.
            Exception: an error raised by ``fn``, at its task's turn (the tasks still in
                flight being cancelled).
        """


def check_window(window: int | None, n_jobs: int) -> int:
    """``window`` or, when None, ``n_jobs``.

    Raises:
        InvalidInput: a window below 1.
    """
    if window is None:
        return n_jobs
    if window < 1:
        raise InvalidInput(f"The window of tasks in flight must be at least 1, got {window}.")
    return window
