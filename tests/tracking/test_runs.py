"""The tracking API as a user meets it: fluent runs, nesting, failure, buffering, bad input."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

import forgeline as fl
from forgeline.entities import RunStatus
from forgeline.errors import InvalidInput


def test_the_documented_example(tmp_path) -> None:
    (tmp_path / "report.html").write_text("<h1>report</h1>")
    with fl.start_run(experiment="fraud", name="baseline", tags={"team": "risk"}) as run:
        run.log_params({"lr": 0.1, "depth": 6})
        run.log_metric("auc", 0.91, step=3)
        run.log_metrics({"loss": 0.2, "acc": 0.8}, step=3)
        run.log_artifact("report.html")
        run.set_tags({"stage": "dev"})
    client = fl.Client()
    (found,) = client.search_runs(experiment="fraud",
                                  filter="metrics.auc > 0.9 and params.depth = '6'",
                                  order_by=["metrics.auc DESC"], max_results=100)
    assert found.run_id == run.run_id and found.status is RunStatus.FINISHED
    assert found.params == {"lr": "0.1", "depth": "6"}
    assert found.metrics == {"auc": 0.91, "loss": 0.2, "acc": 0.8}
    assert found.tags["team"] == "risk" and found.tags["stage"] == "dev"
    assert found.end_time >= found.start_time
    assert [m.value for m in client.get_metric_history(run.run_id, "auc")] == [0.91]
    assert [a.path for a in client.list_artifacts(run.run_id)] == ["report.html"]


def test_a_run_records_where_it_ran() -> None:
    with fl.start_run(experiment="fraud") as run:
        pass
    tags = fl.Client().get_run(run.run_id).tags
    assert tags["forgeline.python"].count(".") == 2
    assert '"forgeline": "0.1.0"' in tags["forgeline.packages"]
    assert tags["forgeline.command"]
    assert tags["forgeline.user"] and tags["forgeline.host"]


def test_nested_runs_record_their_parent() -> None:
    with fl.start_run(experiment="fraud", name="tuning") as parent:
        with fl.start_run(name="trial-1") as child:
            fl.log_metric("auc", 0.8)
            assert fl.active_run() is child
        assert fl.active_run() is parent
        with fl.start_run(name="unrelated", experiment="other", nested=False) as alone:
            pass
    assert fl.active_run() is None
    client = fl.Client()
    kid = client.get_run(child.run_id)
    assert kid.parent_run_id == parent.run_id
    assert kid.experiment_id == parent.experiment_id
    assert client.get_run(alone.run_id).parent_run_id is None
    assert kid.metrics == {"auc": 0.8}


def test_an_exception_marks_the_run_failed_and_propagates() -> None:
    with pytest.raises(ZeroDivisionError), fl.start_run(experiment="fraud") as run:
        run.log_metric("before", 1.0)
        _ = 1 / 0
    stored = fl.Client().get_run(run.run_id)
    assert stored.status is RunStatus.FAILED
    assert stored.metrics == {"before": 1.0}  # buffered points are kept
    assert fl.active_run() is None


def test_keyboard_interrupt_marks_the_run_killed() -> None:
    with pytest.raises(KeyboardInterrupt), fl.start_run(experiment="fraud") as run:
        raise KeyboardInterrupt
    assert fl.Client().get_run(run.run_id).status is RunStatus.KILLED


def test_active_runs_are_per_thread() -> None:
    seen: dict[str, object] = {}
    with fl.start_run(experiment="fraud"):
        thread = threading.Thread(target=lambda: seen.update(active=fl.active_run()))
        thread.start()
        thread.join()
    assert seen["active"] is None


def test_metrics_are_buffered_then_flushed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGELINE_METRIC_FLUSH_SIZE", "100")
    monkeypatch.setenv("FORGELINE_METRIC_FLUSH_INTERVAL_S", "3600")
    client = fl.Client()
    run = client.start_run("fraud")
    run.log_metric("loss", 0.0, step=0)  # the first point is written at once
    for step in range(1, 150):
        run.log_metric("loss", 1 / step, step=step)
    assert len(client.get_metric_history(run.run_id, "loss")) == 101  # 1 + one batch of 100
    run.flush()
    assert len(client.get_metric_history(run.run_id, "loss")) == 150
    run.end()
    run.end()  # a second end is a no-op
    assert client.get_run(run.run_id).status is RunStatus.FINISHED


def test_numpy_values_nan_and_infinity() -> None:
    with fl.start_run(experiment="fraud") as run:
        run.log_metric("np", np.float32(0.5), step=np.int64(2))
        run.log_metric("int", 3)
        run.log_metrics({"nan": math.nan, "inf": math.inf, "ninf": -math.inf})
    metrics = fl.Client().get_run(run.run_id).metrics
    assert metrics["np"] == 0.5 and metrics["int"] == 3.0
    assert math.isnan(metrics["nan"])
    assert metrics["inf"] == math.inf and metrics["ninf"] == -math.inf


@pytest.mark.parametrize(("call", "message"), [
    (lambda r: r.log_metric("auc", "0.9"), "Metric 'auc' must be a number, got str '0.9'"),
    (lambda r: r.log_metric("auc", None), "Metric 'auc' must be a number, got NoneType"),
    (lambda r: r.log_metric("auc", True), "Metric 'auc' must be a number, got bool"),
    (lambda r: r.log_metric("auc", 0.9, step=1.5), "Metric step must be a whole number"),
    (lambda r: r.log_metric("", 0.9), "Invalid metric key ''"),
    (lambda r: r.log_metric("a\tb", 0.9), "Invalid metric key"),
    (lambda r: r.log_artifact("does-not-exist.txt"), "no such file or directory"),
    (lambda r: r.log_param("k", "v") or r.log_param("k", "w"), "Param 'k' of run"),
])
def test_bad_input_raises_clear_errors_and_keeps_the_run(call, message: str) -> None:
    with fl.start_run(experiment="fraud") as run:
        run.log_metric("good", 1.0)
        with pytest.raises(fl.ForgelineError, match=message.replace("(", r"\(")):
            call(run)
    stored = fl.Client().get_run(run.run_id)
    assert stored.status is RunStatus.FINISHED and stored.metrics == {"good": 1.0}


def test_fluent_calls_without_a_run() -> None:
    with pytest.raises(InvalidInput, match="No active run"):
        fl.log_metric("auc", 0.9)


def test_explicit_client_logging() -> None:
    client = fl.Client()
    run = client.start_run("fraud")
    client.log_metric(run.run_id, "auc", 0.7, step=1)
    client.log_params(run.run_id, {"lr": 0.5})
    client.set_tags(run.run_id, {"note": "manual"})
    run.end()
    stored = client.get_run(run.run_id)
    assert stored.metrics == {"auc": 0.7} and stored.params == {"lr": "0.5"}
    assert stored.tags["note"] == "manual"
    with pytest.raises(InvalidInput, match="Metric 'auc' must be a number"):
        client.log_metric(run.run_id, "auc", "x")


def test_runs_can_be_named_by_a_unique_id_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    from forgeline.store.sql import runs as sql_runs

    ids = iter([uuid.UUID("abcd1234" + "0" * 24), uuid.UUID("abcd5678" + "0" * 24)])
    monkeypatch.setattr(sql_runs.uuid, "uuid4", lambda: next(ids))
    client = fl.Client()
    first = client.start_run("fraud")
    second = client.start_run("fraud")
    assert client.get_run("abcd1234").run_id == first.run_id
    assert client.get_run("abcd5").run_id == second.run_id
    with pytest.raises(InvalidInput, match="Run id prefix 'abcd' matches several runs"):
        client.get_run("abcd")
    with pytest.raises(fl.NotFound, match="No run id starts with 'ffff'"):
        client.get_run("ffff")
    with pytest.raises(fl.NotFound, match="Run 'xyz' not found"):
        client.get_run("xyz")
    first.end()
    second.end()
