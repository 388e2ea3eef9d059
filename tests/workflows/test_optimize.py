"""``forgeline optimize`` end to end: a real trained teacher, real students, the table,
the registered variant with its teacher's lineage, served like any version."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

import forgeline as fl
from forgeline.optimization import distill
from forgeline.serving.app import create_app
from forgeline.serving.config import ServeConfig
from forgeline.store import close_stores
from forgeline.workflows import optimize as optimize_module
from forgeline.workflows.optimize import NoCandidate, optimize
from forgeline.workflows.train import train
from tests.cli.conftest import invoke
from tests.isolation import working_folder
from tests.serving.conftest import LiveServer, TrainedStore


@pytest.fixture(scope="module")
def teachers(tmp_path_factory: pytest.TempPathFactory, fraud_frame: pd.DataFrame) -> Path:
    """A folder with the fraud data and a store: fraud/1, a LightGBM (300 trees, the
    library's default trial) @champion."""
    folder = tmp_path_factory.mktemp("teachers")
    fraud_frame.to_parquet(folder / "tx.parquet", index=False)
    spec = {"name": "fraud",
            "data": {"path": "tx.parquet", "target": "is_fraud", "time_column": "ts",
                     "drop": ["txn_id", "customer_id", "age_band"]},
            "models": ["lightgbm"], "tuning": {"trials": 1, "cv_folds": 2},
            "register": {"alias": "champion"}}
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    with working_folder(folder):
        train(folder / "spec.yaml")
        close_stores()
    return folder


@pytest.fixture
def store(teachers: Path, tmp_path: Path) -> str:
    """A private copy of the teachers' folder as this test's working folder; its store."""
    shutil.copytree(teachers, tmp_path, dirs_exist_ok=True)
    return f"sqlite:///{tmp_path / '.forgeline' / 'forgeline.db'}"


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def test_optimize_registers_the_chosen_variant_with_its_teacher(store: str,
                                                                 tmp_path: Path) -> None:
    # every technique but compilation (tests/optimization/test_compiled.py compiles)
    done = invoke("optimize", "fraud@champion", "--max-score-drop", "0.02",
                  "--techniques", "distill,truncate,prune,quantize")
    assert done.exit_code == 0, done.output
    out = done.stdout
    for text in ("Candidates", "teacher", "distilled-lightgbm-40x7", "distilled-linear",
                 "truncated-", "pruned", "test roc_auc", "p50 ms", "rows/s (10k)",
                 "onnxruntime", "fraud/2", "not tried: quantize"):
        assert text in out, text
    client = fl.Client()
    teacher, variant = client.get_model_version("fraud/1"), client.get_model_version("fraud/2")
    assert teacher.aliases == ("champion",) and variant.aliases == ()  # nothing promoted
    assert variant.tags["forgeline.teacher"] == "fraud/1"
    assert "teacher fraud/1" in variant.description
    lineage = client.get_lineage("fraud/2")
    assert lineage.run.name == "optimize" and lineage.run.tags["forgeline.teacher"] == "fraud/1"
    assert [p.run_id for p in lineage.parent_runs] == [teacher.run_id]
    assert sorted(c for _, c in lineage.datasets) == ["source", "test", "train"]
    shown = invoke("models", "show", "fraud/2")
    assert "forgeline.teacher=fraud/1" in shown.stdout and teacher.run_id in shown.stdout
    # the table, as recorded: every candidate measured, the chosen one within the budget
    path = client.download_artifacts(lineage.run.run_id, "report/optimize.json", tmp_path)
    table = json.loads(path.read_text())
    assert table["teacher"] == "fraud/1" and table["chosen"] == variant.tags[
        "forgeline.candidate"]
    rows = {r["name"]: r for r in table["table"]}
    assert next(iter(rows)) == "teacher"  # (a small MLP joins them where torch is installed)
    assert {"distilled-lightgbm-40x7", "distilled-lightgbm-100x15", "distilled-linear",
            "pruned"} <= set(rows)
    assert any(name.startswith("truncated-") for name in rows)
    chosen = rows[table["chosen"]]
    assert chosen["within_budget"] and chosen["drop"] <= 0.02
    assert variant.tags["forgeline.technique"] == chosen["technique"] != "none"
    fastest = min(r["latency_p50_ms"] for r in rows.values() if r["within_budget"])
    ties = [r for r in rows.values() if r["within_budget"]
            and r["latency_p50_ms"] <= fastest * 1.05]  # timing noise: the smaller wins
    assert chosen == min(ties, key=lambda r: r["package_bytes"])
    for row in rows.values():
        assert row["package_bytes"] > 0 and row["rows_per_s"] > 0
        assert row["latency_p99_ms"] >= row["latency_p50_ms"] > 0
        assert row["peak_memory_mb"] > row["model_memory_mb"] >= 0
    assert all(r["package_bytes"] < rows["teacher"]["package_bytes"] / 2
               for name, r in rows.items() if name.startswith("distilled-"))
    run = client.get_run(lineage.run.run_id)
    assert run.params["teacher"] == "fraud/1"
    assert run.metrics["test_roc_auc"] == pytest.approx(chosen["score"])
    # retraining and re-optimizing start from the same spec
    assert client.list_artifacts(run.run_id, "spec.json")

    # served like any version, its runtime said at start-up, the same answers as load_model
    predictor = fl.load_model("fraud/2")
    # its own attributions, which monitoring's attribution drift compares with
    own = predictor.package.attributions
    assert own is not None and set(own["columns"]) == set(predictor.signature.names)
    assert own["columns"] != fl.load_model("fraud/1").package.attributions["columns"]
    X = pd.read_parquet("tx.parquet")[list(predictor.signature.names)].head(6)
    expected = predictor.predict_proba(X).to_numpy()
    config = ServeConfig(model="fraud/2", store_uri=store, cache_dir=str(tmp_path / "cache"),
                         runtime="auto")
    with LiveServer(create_app(config)) as server, httpx.Client(base_url=server.url) as http:
        runtime = server.state.deployment.primary.runtime
        assert runtime.name == "onnxruntime", runtime.detail
        got = http.post("/predict", json={"records": _records(X)}).json()
    assert got["version"] == 2
    assert np.allclose(got["probabilities"], expected, rtol=0, atol=1e-4)


def test_a_budget_no_candidate_meets_registers_nothing(store: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # a deliberately weak student: 3 stumps
    monkeypatch.setattr(optimize_module, "distill_candidates", functools.partial(
        distill.distill_candidates, sizes=((3, 2, 0.05),), linear=False))
    client = fl.Client()
    with pytest.raises(NoCandidate) as caught:
        optimize("fraud@champion", max_score_drop=0.001, techniques=["distill"],
                 client=client, latency_calls=20, batch_rows=500, memory=False)
    message = str(caught.value)
    assert message.startswith("No candidate stays within a roc_auc drop of 0.001: the best, "
                              "distilled-lightgbm-3x2, drops 0."), message
    assert "nothing was registered" in message and "--max-score-drop" in message
    assert [m.name for m in caught.value.table] == ["teacher", "distilled-lightgbm-3x2"]
    assert [v.version for v in client.search_model_versions("fraud")] == [1]
    assert not client.search_runs("fraud", "attributes.name = 'optimize'")


def test_bad_input_is_one_line(store: str, serving_store: TrainedStore,
                               teachers: Path) -> None:
    cases = [(("ghost@champion",), 3, "ghost"),
             (("fraud@champion", "--techniques", "distill,warp"), 2,
              "Unknown technique(s): warp."),
             (("fraud@champion", "--target", "cloud"), 2, "Unknown target 'cloud'"),
             (("fraud@champion", "--max-score-drop", "-0.1"), 2, "must be 0 or more"),
             # the serving tests' store: logistic regressions
             (("--store", serving_store.uri, "fraud@champion", "--techniques", "distill"),
              2, "None of the techniques apply to fraud/1: distill: cannot distill: the "
                 "teacher is already a linear model (LogisticRegression)")]
    for args, code, fragment in cases:
        done = invoke(*args[:2], "optimize", *args[2:]) if args[0] == "--store" else invoke(
            "optimize", *args)
        assert done.exit_code == code, (args, done.output)
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], (
            args, lines)
    # the data changed since the teacher was trained: its test rows cannot be rebuilt (the
    # spec names the module's file: changed here, put back afterwards)
    data = teachers / "tx.parquet"
    original = data.read_bytes()
    try:
        pd.read_parquet(data).iloc[50:].to_parquet(data, index=False)
        done = invoke("optimize", "fraud@champion")
    finally:
        data.write_bytes(original)
    assert done.exit_code == 2, done.output
    assert done.stderr.startswith("error: The test rows rebuilt from ") and (
        "are not those fraud/1 was evaluated on" in done.stderr), done.stderr
    assert [v.version for v in fl.Client().search_model_versions("fraud")] == [1]
    assert [v.version for v in fl.Client(serving_store.uri).search_model_versions("fraud")
            ] == [2, 1]
