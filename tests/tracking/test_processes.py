"""What only real processes show: concurrent writers, a SIGKILLed run, git capture."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import forgeline as fl
from forgeline.entities import RunStatus

PROCESSES, POINTS = 8, 2000


def _log_points(uri: str, artifact_root: str, worker: int, start: mp.synchronize.Event,
                errors: mp.Queue) -> None:
    try:
        os.environ["FORGELINE_METRIC_FLUSH_SIZE"] = "100"  # many small, contending writes
        client = fl.Client(uri, artifact_root=artifact_root)
        start.wait(30)
        with client.start_run("concurrency", name=f"worker-{worker}") as run:
            for step in range(POINTS):
                run.log_metric("loss", 1.0 / (step + 1), step=step)
                if step % 500 == 0:
                    run.log_params({f"p{step}": step})
    except BaseException as e:  # reported to the parent, which fails the test
        errors.put(f"worker {worker}: {type(e).__name__}: {e}")


def test_eight_processes_log_into_one_store(store_uri: str, tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    start, errors = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=_log_points,
                           args=(store_uri, str(tmp_path / "a"), i, start, errors))
               for i in range(PROCESSES)]
    for w in workers:
        w.start()
    time.sleep(1.0)  # let every worker import and open the store, then start together
    start.set()
    for w in workers:
        w.join(120)
    failures = [errors.get() for _ in range(errors.qsize())] if not errors.empty() else []
    assert failures == []
    assert [w.exitcode for w in workers] == [0] * PROCESSES
    client = fl.Client(store_uri, artifact_root=tmp_path / "a")
    runs = client.search_runs("concurrency", max_results=100)
    assert len(runs) == PROCESSES
    for run in runs:
        history = client.get_metric_history(run.run_id, "loss")
        assert [m.step for m in history] == list(range(POINTS))
        assert run.status is RunStatus.FINISHED
        assert run.params == {f"p{s}": str(s) for s in range(0, POINTS, 500)}


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "job.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_a_sigkilled_process_leaves_a_run_that_is_later_marked_killed(tmp_path: Path) -> None:
    script = _script(tmp_path, """
        import os, signal, sys, forgeline as fl
        run = fl.start_run(experiment="jobs", name="doomed")
        run.log_metric("progress", 0.5)
        run.flush()
        print(run.run_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = {**os.environ, "FORGELINE_HEARTBEAT_S": "0.2"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == -signal.SIGKILL
    run_id = out.stdout.strip()
    client = fl.Client()
    assert client.get_run(run_id).status is RunStatus.RUNNING
    assert client.mark_stale_runs(timeout_s=60) == []  # it beat moments ago
    time.sleep(0.5)
    assert client.mark_stale_runs(timeout_s=0.3) == [run_id]
    killed = client.get_run(run_id)
    assert killed.status is RunStatus.KILLED and killed.end_time is not None
    assert killed.metrics == {"progress": 0.5}


def test_a_live_run_keeps_beating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGELINE_HEARTBEAT_S", "0.1")
    client = fl.Client()
    with client.start_run("jobs") as run:
        time.sleep(0.6)
        assert client.mark_stale_runs(timeout_s=0.4) == []
        assert client.get_run(run.run_id).status is RunStatus.RUNNING


def test_git_commit_and_dirty_flag_are_recorded(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    script = _script(repo, """
        import forgeline as fl
        with fl.start_run(experiment="git") as run:
            print(run.run_id)
    """)
    subprocess.run([*git, "add", "job.py"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "job"], cwd=repo, check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                            text=True, check=True).stdout.strip()

    def run_job() -> dict[str, str]:
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             cwd=tmp_path, check=True, timeout=60)
        return fl.Client().get_run(out.stdout.strip()).tags

    clean = run_job()
    assert clean["forgeline.git.commit"] == commit
    assert clean["forgeline.git.dirty"] == "false"
    assert clean["forgeline.command"].endswith("job.py")
    script.write_text(script.read_text() + "# edited\n")
    assert run_job()["forgeline.git.dirty"] == "true"


@pytest.mark.parametrize(("ending", "status"), [("pass", RunStatus.FINISHED),
                                                ("raise SystemExit(0)", RunStatus.FINISHED),
                                                ("1 / 0", RunStatus.FAILED)])
def test_a_run_never_ended_is_closed_at_exit_with_every_point(
        tmp_path: Path, ending: str, status: RunStatus) -> None:
    script = _script(tmp_path, f"""
        import forgeline as fl
        run = fl.start_run(experiment="jobs")
        for step in range(500):
            run.log_metric("loss", 1 / (step + 1), step=step)
        print(run.run_id, flush=True)
        {ending}
    """)
    env = {**os.environ, "FORGELINE_METRIC_FLUSH_INTERVAL_S": "3600"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=60)
    client = fl.Client()
    run_id = out.stdout.strip()
    assert client.get_run(run_id).status is status
    assert len(client.get_metric_history(run_id, "loss")) == 500
