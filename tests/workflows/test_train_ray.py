"""Tuning on a real Ray cluster (a head and a worker started with ``ray start``): the same
trials, scores and model as the local engine for the same seed, the study in Optuna's
storage beside the store, and a clear line for a cluster that is not there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from forgeline.tracking.client import Client
from tests.raycluster import RayCluster

FORGELINE = Path(sys.executable).with_name("forgeline")


def _train(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(FORGELINE), "train", "spec.yaml", "--json", *args],
                          capture_output=True, text=True, cwd=folder, env=env, timeout=600)


def _project(folder: Path, frame: pd.DataFrame) -> Path:
    folder.mkdir()
    frame.to_parquet(folder / "tx.parquet", index=False)
    spec = {"name": "fraud",
            "data": {"path": "tx.parquet", "target": "is_fraud", "time_column": "ts",
                     "drop": ["txn_id", "customer_id"]},
            "models": ["logistic_regression", "lightgbm"],
            "tuning": {"trials": 7, "cv_folds": 3}}
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    return folder


def _trials(folder: Path, run_id: str) -> list[tuple[str, str, dict[str, str], list[float]]]:
    client = Client(f"sqlite:///{folder / '.forgeline' / 'forgeline.db'}")
    run = client.get_run(run_id)
    children = client.store.search_runs([run.experiment_id],
                                        f"parent_run_id = '{run_id}'")
    found = []
    for child in sorted(children, key=lambda r: int(r.name.split("-")[1])):
        folds = [m.value for m in client.store.get_metric_history(
            child.run_id, "cv_roc_auc_fold")]
        found.append((child.name, child.tags["forgeline.trial.state"], child.params, folds))
    return found


def test_tuning_on_ray_gives_the_local_trials_and_model(ray_cluster: RayCluster,
                                                        fraud_frame: pd.DataFrame,
                                                        tmp_path: Path) -> None:
    local = _project(tmp_path / "local", fraud_frame)
    spread = _project(tmp_path / "ray", fraud_frame)
    here = _train(local, ray_cluster.env)
    there = _train(spread, ray_cluster.env, "--ray-address", ray_cluster.address)
    assert here.returncode == 0, here.stderr
    assert there.returncode == 0, there.stderr
    a, b = json.loads(here.stdout), json.loads(there.stdout)
    assert (b["model"], b["cv_score"], b["score"]) == (a["model"], a["cv_score"], a["score"])
    trials = _trials(spread, b["run_id"])
    assert len(trials) == 7  # each trial a child run of the training run
    assert trials == _trials(local, a["run_id"])
    # the study is in Optuna's own storage beside the store: Optuna's tools read it
    study = optuna.load_study(study_name=b["run_id"], storage=(
        f"sqlite:///{spread / '.forgeline' / 'forgeline-optuna.db'}"))
    assert len(study.trials) == 7
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert max(t.value for t in complete) == pytest.approx(
        max(sum(f) / len(f) for _, s, _, f in trials if s == "complete"), abs=1e-12)


def test_an_unreachable_cluster_is_one_line_and_records_nothing(
        fraud_frame: pd.DataFrame, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from tests.pgserver import _free_port

    folder = _project(tmp_path / "p", fraud_frame)
    address = f"127.0.0.1:{_free_port()}"
    done = _train(folder, {**__import__("os").environ}, "--ray-address", address)
    assert done.returncode != 0 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"No Ray cluster answers at {address}" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    client = Client(f"sqlite:///{folder / '.forgeline' / 'forgeline.db'}")
    experiments = client.store.list_experiments()
    assert not [r for e in experiments for r in client.store.search_runs([e.experiment_id])]
