"""The engine seam: one contract (forgeline.engines.base.Engine) checked over every
engine (local processes, local threads, Ray on a real local instance), then what is
particular to the local engine, and engines by name."""

from __future__ import annotations

import itertools
import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from forgeline.engines import WORKERS, Engine, LocalEngine, available_cores, get_engine
from forgeline.errors import InvalidInput
from forgeline.names import check_model_name

ENGINES = ["processes", "threads", "ray"]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    """Two tasks at a time on each engine (Ray: a local instance with two CPUs)."""
    if request.param == "ray":
        request.getfixturevalue("ray_joined")  # skips when Ray is not installed
        from forgeline.engines.ray import RayEngine

        return RayEngine()
    return LocalEngine(2, workers=request.param)


# -- the contract, over every engine ------------------------------------------------------
def test_every_engine_is_an_engine() -> None:
    from forgeline.engines.ray import RayEngine

    with pytest.raises(TypeError, match="abstract"):
        Engine()  # type: ignore[abstract]
    assert issubclass(LocalEngine, Engine) and issubclass(RayEngine, Engine)


def test_map_keeps_task_order_and_reports_each_result_once(engine: Engine) -> None:
    seen: list[tuple[int, int]] = []
    results = engine.map(math.factorial, [5, 3, 0, 4], on_done=lambda i, r: seen.append((i, r)))
    assert results == [120, 6, 1, 24]
    assert sorted(seen) == [(0, 120), (1, 6), (2, 1), (3, 24)]
    assert engine.map(math.factorial, []) == []
    assert engine.n_jobs == 2


def test_on_done_reports_each_result_as_it_arrives(engine: Engine, tmp_path: Path) -> None:
    """Task 0 cannot end before the caller has been told of task 1's result: an engine
    that reported results only once all were in would wait out task 0's deadline, then
    report 0 before 1."""
    go = tmp_path / "go"

    def task(i: int) -> int:
        deadline = time.monotonic() + 30
        while i == 0 and not go.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return i * 10

    seen: list[tuple[int, int, int]] = []

    def on_done(i: int, result: int) -> None:
        seen.append((i, result, threading.get_ident()))
        go.touch()

    assert engine.map(task, [0, 1], on_done=on_done) == [0, 10]  # still in task order
    assert [(i, r) for i, r, _ in seen] == [(1, 10), (0, 0)]  # in completion order
    assert {thread for *_, thread in seen} == {threading.get_ident()}  # the caller's thread


def test_imap_draws_tasks_lazily_keeps_a_window_and_yields_in_task_order(
        engine: Engine) -> None:
    window = 3
    drawn = consumed = 0

    def tasks() -> Iterator[int]:  # endless: only a lazy imap can stream it
        nonlocal drawn
        for i in itertools.count():
            assert drawn - consumed < window, "drew past the window"
            drawn += 1
            yield i

    def later_first(i: int) -> int:  # every third task is slow: they end out of order
        time.sleep(0.05 if i % 3 == 0 else 0.0)
        return i * i

    results = []
    stream = engine.imap(later_first, tasks(), window=window)
    for result in stream:
        consumed += 1
        if consumed == 1:
            assert drawn == window  # filled the window, no further
        results.append(result)
        if consumed == 10:
            break
    stream.close()  # type: ignore[attr-defined]
    assert results == [i * i for i in range(10)]
    assert drawn <= 10 + window - 1
    assert list(engine.imap(math.factorial, [])) == []
    assert list(engine.imap(math.factorial, range(7))) == [math.factorial(i) for i in range(7)]


def test_a_window_below_one_is_refused_at_the_call(engine: Engine) -> None:
    with pytest.raises(InvalidInput, match="window of tasks in flight must be at least 1, got 0"):
        engine.imap(math.factorial, [1], window=0)


def test_errors_reach_the_caller_as_themselves(engine: Engine) -> None:
    with pytest.raises(InvalidInput) as here:
        check_model_name("bad/name")
    with pytest.raises(InvalidInput) as there:
        engine.map(check_model_name, ["fine", "bad/name", "also-fine"])
    assert type(there.value) is InvalidInput
    assert (there.value.message, there.value.hint) == (here.value.message, here.value.hint)
    with pytest.raises(ValueError, match=r"^invalid literal for int\(\) with base 10: 'x'$"):
        engine.map(int, ["1", "x"])
    results = []
    with pytest.raises(InvalidInput, match="Invalid model name 'bad/name'"):
        for name in engine.imap(check_model_name, ["a", "b", "bad/name", "c"], window=2):
            results.append(name)
    assert results == ["a", "b"]  # the results before the failing task, in order


def test_an_error_cancels_the_tasks_not_started(engine: Engine, tmp_path: Path) -> None:
    """Task 0 fails at once; the others wait for the caller to have seen the error (or
    3 s: a thread pool waits for its running tasks before raising) before they count."""
    go = tmp_path / "go"

    def task(i: int) -> int:
        if i == 0:
            raise InvalidInput("task 0 fails")
        deadline = time.monotonic() + 3
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        (tmp_path / f"ran-{i}").touch()
        return i

    with pytest.raises(InvalidInput, match="task 0 fails"):
        engine.map(task, range(40))
    go.touch()
    time.sleep(1.5)  # the 39 others, were none cancelled, would all be done by now
    ran = len(list(tmp_path.glob("ran-*")))
    # those running, and the few a process pool had already handed to its workers (loky
    # queues n_jobs + 1 ahead); never the rest
    assert ran <= 10, f"{ran} of 39 tasks ran after the error"


# -- the local engine ---------------------------------------------------------------------
def _where(_: object) -> tuple[int, int]:
    return os.getpid(), threading.get_ident()


@pytest.mark.parametrize("workers", WORKERS)
def test_one_job_runs_in_the_calling_thread_unless_asked_to_read_ahead(workers: str) -> None:
    here = _where(None)
    engine = LocalEngine(1, workers=workers)
    assert engine.map(_where, [1, 2, 3]) == [here] * 3
    assert list(engine.imap(_where, [1, 2, 3])) == [here] * 3
    ahead = list(engine.imap(_where, range(4), window=2))  # one worker, the caller draws
    assert len(set(ahead)) == 1 and ahead[0] != here


def test_process_workers_run_side_by_side_with_their_thread_pools_shared_out(
        tmp_path: Path) -> None:
    """Two tasks at once in two worker processes (as tuning runs trials), each with its
    share of the cores for OpenMP and BLAS (as joblib gives its workers); a closure
    travels (cloudpickle)."""

    def meet(i: int) -> tuple[int, str | None]:  # each waits until the other has started
        (tmp_path / f"started-{i}").touch()
        deadline = time.monotonic() + 30
        while not (tmp_path / f"started-{1 - i}").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return os.getpid(), os.environ.get("OMP_NUM_THREADS")

    started = time.monotonic()
    done = LocalEngine(2).map(meet, [0, 1])
    assert time.monotonic() - started < 25  # they met: both ran at the same time
    pids = {pid for pid, _ in done}
    assert len(pids) == 2 and os.getpid() not in pids
    expected = os.environ.get("OMP_NUM_THREADS", str(max(1, available_cores() // 2)))
    assert {threads for _, threads in done} == {expected}


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_local_map_keeps_order_and_reports_each_result(n_jobs: int) -> None:
    seen: list[tuple[int, int]] = []
    results = LocalEngine(n_jobs).map(math.factorial, [5, 3, 0, 4],
                                      on_done=lambda i, r: seen.append((i, r)))
    assert results == [120, 6, 1, 24]
    assert sorted(seen) == [(0, 120), (1, 6), (2, 1), (3, 24)]


def test_local_engine_settings() -> None:
    assert LocalEngine(-1).n_jobs == available_cores()
    assert LocalEngine(0).n_jobs == 1
    assert repr(LocalEngine(3, workers="threads")) == "LocalEngine(3, workers='threads')"
    with pytest.raises(InvalidInput, match=r"Unknown workers 'fibers'\. Use one of processes, "
                                           r"threads\."):
        LocalEngine(2, workers="fibers")


def test_engines_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(get_engine(None), LocalEngine)
    assert get_engine("local", 3).n_jobs == 3
    with pytest.raises(InvalidInput, match=r"Unknown engine 'spark'\. Use one of local, ray\."):
        get_engine("spark")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    engine = get_engine("ray", address="ray://nowhere:10001")
    with pytest.raises(InvalidInput, match=r"needs Ray.*pip install 'forgeline\[ray\]'"):
        engine.map(math.factorial, [1])


def test_an_unreachable_ray_address_fails_at_once_with_one_line() -> None:
    pytest.importorskip("ray")
    from tests.pgserver import _free_port

    address = f"127.0.0.1:{_free_port()}"
    with pytest.raises(InvalidInput, match=rf"^No Ray cluster answers at {address} \(") as e:
        get_engine("ray", address=address).map(abs, [1])
    assert "ray start --head" in (e.value.hint or "")
    with pytest.raises(InvalidInput, match=r"^Invalid Ray address 'head-node'\."):
        get_engine("ray", address="head-node").map(abs, [1])
