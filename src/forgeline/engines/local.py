"""The local engine: tasks run side by side in worker processes or threads on this machine.

Two kinds of workers, for two kinds of work:

``processes`` (the default)
    CPU-bound work that holds the GIL: pure Python, scikit-learn fits (tuning trials).
    :meth:`~LocalEngine.map` runs them through joblib's ``Parallel`` on its loky backend
    (what scikit-learn uses), asked for results as they complete
    (``return_as="generator_unordered"``), because

    - large numpy arrays in the tasks (a training frame's columns) are memory-mapped into
      the workers, not pickled into every task;
    - it pickles the rest with cloudpickle: functions defined in ``__main__`` or a
      notebook, lambdas and closures travel, and a script needs no ``__main__`` guard;
    - its workers live on between calls (tuning calls :meth:`~LocalEngine.map` once per
      batch of trials), start from a fresh interpreter (never forked from a parent that
      runs threads), and a worker that dies fails its task instead of hanging;
    - each worker's native thread pools (OpenMP, BLAS) are limited to ``cores // n_jobs``
      so that ``n_jobs`` workers do not oversubscribe the cores.

    :meth:`~LocalEngine.imap` submits to the same executor (joblib's memory-mapping one)
    directly, so that it never draws more than its window of tasks.

``threads``
    Work that releases the GIL (numpy, Arrow, ONNX Runtime: batch-scoring chunks,
    monitoring's column binning): nothing is pickled or copied. A pool is made per call
    and shut down before the call returns (or the :meth:`~LocalEngine.imap` generator
    closes), after the running tasks end.

With ``n_jobs == 1`` each task runs in the calling thread, with no pool (so does a
:meth:`~LocalEngine.map` of a single task). :meth:`~LocalEngine.imap` with ``window``
above 1 is the exception: one worker runs the tasks while the calling thread draws the
next ones, which is what the window asks for (reading the next chunk while one is scored).
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, as_completed
from typing import Any, TypeVar

from forgeline.engines.base import Engine, OnDone, check_window
from forgeline.errors import InvalidInput

__all__ = ["WORKERS", "LocalEngine", "available_cores"]

T = TypeVar("T")
R = TypeVar("R")

WORKERS = ("processes", "threads")
# the native thread pools limited in each worker process (joblib's list)
_THREAD_LIMITS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                  "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class LocalEngine(Engine):
    """Run tasks in local worker processes or threads (see the module docstring).

    Args:
        n_jobs: tasks run at the same time; -1: one per available core.
        workers: ``"processes"`` (work that holds the GIL) or ``"threads"`` (work that
            releases it).

    Raises:
        InvalidInput: unknown ``workers``.
    """

    def __init__(self, n_jobs: int = 1, *, workers: str = "processes") -> None:
        if workers not in WORKERS:
            raise InvalidInput(f"Unknown workers {workers!r}.",
                               hint=f"Use one of {', '.join(WORKERS)}.")
        self.workers = workers
        self._n_jobs = available_cores() if n_jobs == -1 else max(1, n_jobs)

    @property
    def n_jobs(self) -> int:
        return self._n_jobs

    def __repr__(self) -> str:
        return f"LocalEngine({self._n_jobs}, workers={self.workers!r})"

    def map(self, fn: Callable[[T], R], tasks: Iterable[T],
            on_done: OnDone | None = None) -> list[R]:
        tasks = list(tasks)
        if self._n_jobs == 1 or len(tasks) <= 1:
            results: list[Any] = []
            for i, task in enumerate(tasks):
                results.append(fn(task))
                if on_done is not None:
                    on_done(i, results[-1])
            return results
        results = [None] * len(tasks)
        for i, result in self._completed(fn, tasks):  # completion order
            results[i] = result
            if on_done is not None:
                on_done(i, result)
        return results

    def imap(self, fn: Callable[[T], R], tasks: Iterable[T], *,
             window: int | None = None) -> Iterator[R]:
        window = check_window(window, self._n_jobs)  # raises here, not at the first next()
        if window == 1:  # nothing can overlap: one task drawn, run and yielded at a time
            return (fn(task) for task in tasks)
        return self._imap(fn, tasks, window)

    def _completed(self, fn: Callable[[T], R], tasks: list[T]) -> Iterator[tuple[int, R]]:
        """``(index, result)`` of every task, as each completes."""
        size = min(self._n_jobs, len(tasks))
        if self.workers == "processes":
            from joblib import Parallel, delayed

            yield from Parallel(n_jobs=size, backend="loky", return_as="generator_unordered")(
                delayed(_indexed)(fn, i, task) for i, task in enumerate(tasks))
            return
        with self._pool(size) as pool:
            futures = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
            try:
                for future in as_completed(futures):
                    yield futures[future], future.result()
            finally:
                _cancel(futures)

    def _imap(self, fn: Callable[[T], R], tasks: Iterable[T], window: int) -> Iterator[R]:
        pending: deque[Future[R]] = deque()
        with self._pool(min(self._n_jobs, window)) as pool:
            try:
                for task in tasks:
                    pending.append(pool.submit(fn, task))
                    if len(pending) >= window:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:
                _cancel(pending)

    @contextlib.contextmanager
    def _pool(self, size: int) -> Iterator[Executor]:
        """Threads: a pool for this call. Processes (:meth:`imap` only; :meth:`map` goes
        through ``Parallel``): the executor joblib reuses, with the thread limits."""
        if self.workers == "threads":
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(size, thread_name_prefix="forgeline-engine")
            try:
                yield pool
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
            return
        from joblib.executor import get_memmapping_executor

        threads = str(max(1, available_cores() // size))
        yield get_memmapping_executor(size, env={
            name: os.environ.get(name, threads) for name in _THREAD_LIMITS})


def _indexed(fn: Callable[[T], R], index: int, task: T) -> tuple[int, R]:
    return index, fn(task)


def _cancel(futures: Iterable[Future[Any]]) -> None:
    for future in futures:
        future.cancel()  # a no-op on a task already running or done
