"""The one scheduler: run a job now and then every ``every_s`` seconds, until stopped.

Used by ``forgeline loop`` (a retraining cycle every ``--every``, in the foreground) and by
``forgeline serve --monitor-every`` (the monitor in a background thread of each server
process). The cadence is fixed from the first run: a run that takes longer than the
interval delays the next one, never stacks a second one on top of it. Stopping (``stop``,
a stop signal with :meth:`Schedule.halt_on_stop_signals`, Ctrl-C in the foreground) takes
effect between runs; a run in progress is never cut.

Several processes sharing one job (uvicorn workers) pass a :class:`WorkerLock`: at every
tick a process that does not hold it tries to take it, and only the holder runs the job;
the operating system releases it when its holder exits, even on a crash, and another
process takes over at its next tick.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["STANDBY", "Schedule", "WorkerLock"]

log = logging.getLogger("forgeline.schedule")

STANDBY = "standby"  # what a tick returns in a process that does not hold the lock


class WorkerLock:
    """Held by one process at a time among those sharing ``path`` (an exclusive ``flock``,
    released by the operating system when its holder exits). No path: always held."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self.path is None or self._fd is not None

    def acquire(self) -> bool:
        """True when this process holds the lock (now or already)."""
        if self.held:
            return True
        assert self.path is not None
        try:
            import fcntl
        except ImportError:  # no flock here: every process runs the job
            log.warning("no file locks on this platform; every worker runs %s", self.path.name)
            self.path = None
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another process holds it
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


class Schedule:
    """Runs ``job`` at once and then every ``every_s`` seconds.

    Args:
        job: called with no arguments; what it returns is handed to ``on_result``. An
            exception is logged and the schedule goes on (the next run may succeed).
        every_s: seconds from the start of one run to the start of the next.
        name: for the thread and the log.
        lock: among processes sharing the job, only the holder runs it.
        on_lead: called once when this process takes the lock (to log the hand-over).
    """

    def __init__(self, job: Callable[[], Any], every_s: float, *, name: str,
                 lock: WorkerLock | None = None,
                 on_lead: Callable[[], None] | None = None) -> None:
        if not every_s > 0:
            raise ValueError(f"every_s must be positive, got {every_s!r}")
        self.job = job
        self.every_s = float(every_s)
        self.name = name
        self.lock = lock or WorkerLock(None)
        self.on_lead = on_lead
        self.runs = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def tick(self) -> Any:
        """One run now (when this process holds the lock); the job's result, or
        :data:`STANDBY`."""
        if not self.lock.held:
            if not self.lock.acquire():
                return STANDBY
            if self.on_lead is not None:
                self.on_lead()
        self.runs += 1
        return self.job()

    def run(self, cycles: int | None = None,
            on_result: Callable[[Any], None] | None = None) -> int:
        """Run in this thread until ``cycles`` runs are done or :meth:`stop` is called;
        the number of runs. Exceptions from the job propagate (the caller decides)."""
        next_run = time.monotonic()
        done = 0
        while not self._stop.is_set() and (cycles is None or done < cycles):
            result = self.tick()
            if result != STANDBY:
                done += 1
                if on_result is not None:
                    on_result(result)
            if cycles is not None and done >= cycles:
                break
            next_run = max(next_run + self.every_s, time.monotonic())
            if self._stop.wait(max(0.0, next_run - time.monotonic())):
                break
        return done

    def start(self) -> None:
        """Run in a daemon thread; a failed run is logged and the next one tries again."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        next_run = time.monotonic()
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # keep the thread alive: the next run may succeed
                log.exception("%s: the run failed", self.name)
            next_run = max(next_run + self.every_s, time.monotonic())
            if self._stop.wait(max(0.0, next_run - time.monotonic())):
                return

    def halt_on_stop_signals(self) -> None:
        """No run starts once the process is told to stop (SIGTERM, SIGINT), rather than
        once a server has drained its requests: by then the process holding the lock may
        have left, and a standby would take over only to run (and re-send what was
        already sent) while it shuts down too. The handlers already set still run after
        ours. Only from the main thread, where signal handlers are set."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)
            if not callable(previous):  # no handler to chain: leave the default alone
                continue

            def handler(number: int, frame: Any, previous: Any = previous) -> None:
                self._stop.set()
                previous(number, frame)

            signal.signal(signum, handler)

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop after the run in progress (waiting up to ``timeout_s``) and release the
        lock; False when a run is still going (it keeps the lock until the process ends)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("%s: a run still in progress after %.0f s is left behind",
                            self.name, timeout_s)
                return False
        self.lock.release()
        return True
