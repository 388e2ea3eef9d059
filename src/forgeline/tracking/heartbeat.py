"""One daemon thread per process refreshes the heartbeat of every live run.

A process killed with SIGKILL stops beating; :meth:`Store.mark_stale_runs` later marks
its runs KILLED.
"""

from __future__ import annotations

import logging
import threading

from forgeline.store.base import Store
from forgeline.util.time import now_ms

__all__ = ["beat", "stop_beating"]

_log = logging.getLogger(__name__)
_runs: dict[str, tuple[Store, float]] = {}  # run_id -> (store, interval)
_lock = threading.Lock()
_wake = threading.Event()
_thread: threading.Thread | None = None


def beat(store: Store, run_id: str, interval_s: float) -> None:
    global _thread
    with _lock:
        _runs[run_id] = (store, interval_s)
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_loop, name="forgeline-heartbeat", daemon=True)
            _thread.start()
    _wake.set()


def stop_beating(run_id: str) -> None:
    with _lock:
        _runs.pop(run_id, None)


def _loop() -> None:
    while True:
        with _lock:
            live = dict(_runs)
        interval = min((i for _, i in live.values()), default=60.0)
        by_store: dict[int, tuple[Store, list[str]]] = {}
        for run_id, (store, _) in live.items():
            by_store.setdefault(id(store), (store, []))[1].append(run_id)
        now = now_ms()
        for store, run_ids in by_store.values():
            try:
                store.heartbeat(run_ids, now)
            except Exception as e:  # a missed beat must never disturb the run itself
                _log.warning("forgeline: heartbeat failed: %s", e)
        _wake.wait(interval)
        _wake.clear()
