"""``forgeline experiments`` and ``forgeline runs``: tables for people, JSON for scripts."""

from __future__ import annotations

import json

from forgeline.entities import RunStatus
from tests.cli.conftest import World


def test_experiments_list(world: World) -> None:
    result = world.invoke("experiments", "list")
    assert result.exit_code == 0, result.output
    assert "fraud" in result.stdout and "other" in result.stdout
    found = json.loads(world.invoke("experiments", "list", "--json").stdout)
    assert sorted(e["name"] for e in found) == ["fraud", "other"]
    assert set(found[0]) == {"experiment_id", "name", "creation_time", "tags"}


def test_runs_list_table(world: World) -> None:
    result = world.invoke("runs", "list")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for name, run_id in world.runs.items():
        assert name in out and run_id[:8] in out
    assert run_id not in out  # the table shows short ids
    header = out.splitlines()[1]
    for column in ("run id", "name", "experiment", "status", "start", "duration", "auc",
                   "loss", "acc"):
        assert column in header
    assert header.index("auc") < header.index("acc")  # most common metric keys first
    baseline = next(line for line in out.splitlines() if "baseline" in line)
    assert "fraud" in baseline and "FINISHED" in baseline and "0.91" in baseline
    deeper = next(line for line in out.splitlines() if "deeper" in line)
    assert "0.95" in deeper and "NaN" in deeper
    assert "inf" in next(line for line in out.splitlines() if "elsewhere" in line)


def test_runs_list_experiment_filter_order_and_max(world: World) -> None:
    out = world.invoke("runs", "list", "-e", "fraud").stdout
    assert "baseline" in out and "elsewhere" not in out
    out = world.invoke("runs", "list", "--filter", "metrics.auc > 0.92").stdout
    assert "deeper" in out and "baseline" not in out
    out = world.invoke("runs", "list", "-e", "fraud", "-f", "metrics.auc > 0",
                       "-o", "metrics.auc ASC").stdout
    assert out.index("baseline") < out.index("deeper")
    out = world.invoke("runs", "list", "-e", "fraud", "-f", "metrics.auc > 0",
                       "--order-by", "metrics.auc DESC").stdout
    assert out.index("deeper") < out.index("baseline")
    result = world.invoke("runs", "list", "--max", "1", "-o", "name ASC")
    assert result.exit_code == 0
    assert "baseline" in result.stdout and "deeper" not in result.stdout
    assert "more match" in result.stderr
    out = world.invoke("runs", "list", "-f", "metrics.auc > 2").stdout
    assert "No runs match." in out


def test_runs_list_json(world: World) -> None:
    result = world.invoke("runs", "list", "-e", "fraud", "--json")
    assert result.exit_code == 0, result.output
    found = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(found) == {"tuning", "baseline", "deeper"}
    deeper = found["deeper"]
    assert deeper["run_id"] == world.runs["deeper"]  # full id in JSON
    assert deeper["status"] == "FINISHED"
    assert deeper["parent_run_id"] == world.runs["tuning"]
    assert deeper["metrics"] == {"auc": 0.95, "loss": "NaN"}
    assert deeper["params"] == {"depth": "10", "lr": "0.1"}
    assert isinstance(deeper["start_time"], int)


def test_runs_list_marks_dead_runs_killed(world: World) -> None:
    store = world.client.store
    exp = world.client.get_experiment("fraud").experiment_id
    orphan = store.create_run(exp, "orphan", 1_000)
    store.heartbeat([orphan.run_id], now=1_000)  # its process last beat long ago
    out = world.invoke("runs", "list").stdout
    assert "KILLED" in next(line for line in out.splitlines() if "orphan" in line)
    assert world.client.get_run(orphan.run_id).status is RunStatus.KILLED


def test_runs_show(world: World) -> None:
    result = world.invoke("runs", "show", world.runs["baseline"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert world.runs["baseline"] in out and "fraud" in out and "FINISHED" in out
    assert "0123456789abcdef0123456789abcdef01234567 (uncommitted changes)" in out
    assert "train.py --depth 6" in out
    assert "depth" in out and "0.91" in out and "0.3" in out
    assert "team" in out and "risk" in out
    assert "forgeline.python" not in out  # system tags hidden by default
    assert "model/model.bin" in out and "2.0 KiB" in out
    assert "transactions" in out and "train" in out and "1000" in out
    out = world.invoke("runs", "show", world.runs["baseline"], "--all-tags").stdout
    assert "forgeline.python" in out


def test_runs_show_json(world: World) -> None:
    result = world.invoke("runs", "show", world.runs["baseline"], "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert set(shown) == {"run", "experiment", "artifacts", "datasets"}
    assert shown["run"]["run_id"] == world.runs["baseline"]
    assert "forgeline.python" in shown["run"]["tags"]  # JSON keeps every tag
    assert shown["experiment"]["name"] == "fraud"
    assert shown["artifacts"] == [{"path": "model/model.bin", "digest": shown["artifacts"][0]
                                   ["digest"], "size": 2048}]
    assert len(shown["artifacts"][0]["digest"]) == 64
    (linked,) = shown["datasets"]
    assert linked["context"] == "train"
    assert linked["dataset"]["name"] == "transactions" and linked["dataset"]["num_rows"] == 1000


def test_runs_compare(world: World) -> None:
    a, b = world.runs["baseline"], world.runs["deeper"]
    result = world.invoke("runs", "compare", a, b)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert a[:8] in out and b[:8] in out and "baseline" in out and "deeper" in out
    lines = out.splitlines()
    depth = next(line for line in lines if "params.depth" in line)
    assert "≠" in depth and "6" in depth and "10" in depth
    lr = next(line for line in lines if "params.lr" in line)
    assert "≠" not in lr
    loss = next(line for line in lines if "metrics.loss" in line)
    assert "0.3" in loss and "NaN" in loss
    assert lines.index(depth) < lines.index(loss)


def test_runs_compare_json(world: World) -> None:
    a, b, c = world.runs["baseline"], world.runs["deeper"], world.runs["elsewhere"]
    result = world.invoke("runs", "compare", a, b, c, "--json")
    assert result.exit_code == 0, result.output
    compared = json.loads(result.stdout)
    assert [r["run_id"] for r in compared["runs"]] == [a, b, c]
    assert compared["params"] == {"depth": ["6", "10", None], "lr": ["0.1", "0.1", None]}
    assert compared["metrics"]["loss"] == [0.3, "NaN", None]
    assert compared["metrics"]["acc"] == [None, None, "Infinity"]
    assert compared["differing"] == {"params": ["depth", "lr"],
                                     "metrics": ["acc", "auc", "loss"]}


def test_runs_compare_needs_two_runs(world: World) -> None:
    result = world.invoke("runs", "compare", world.runs["baseline"])
    assert result.exit_code == 2
    assert "at least two run ids" in result.stderr
