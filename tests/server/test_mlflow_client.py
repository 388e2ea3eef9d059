"""The unmodified MLflow client against the team server's MLflow-compatible routes.

A real server on loopback (``tests.teamserver``) over a real SQLite store, driven by
``mlflow`` (mlflow-skinny, the test extra) as a user's script would drive it; no mocks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# The client's telemetry would try to reach the internet, its retries would stretch a
# failing test to minutes: both off before mlflow is imported.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import httpx
import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import forgeline as fl
from forgeline.cli import app as cli
from forgeline.entities import Role
from forgeline.store import get_store
from forgeline.store.tokens import issue_token
from tests.teamserver import LiveServer, team_server


@dataclass
class Server:
    url: str
    store_uri: str


@pytest.fixture
def server(live_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[Server]:
    """The team server over a fresh SQLite store, artifacts beside it (where a Forgeline
    client of the same file keeps them), and the MLflow client pointed at it."""
    store_uri = f"sqlite:///{tmp_path / 'forgeline.db'}"
    url = live_server.use(get_store(store_uri), tmp_path / "artifacts")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    # A client that never set an experiment: set_experiment keeps it in the environment
    # and in a global, both put back after the test.
    for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    mlflow.set_tracking_uri(url)
    mlflow.set_registry_uri(url)
    yield Server(url, store_uri)
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def _data() -> tuple[pd.DataFrame, pd.Series]:
    x = pd.DataFrame({"amount": np.arange(40.0), "hour": np.arange(40.0) % 24})
    return x, (x.amount > 19).astype(int)


def test_mlflow_workflow_end_to_end(server: Server, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("first try")
    reports = tmp_path / "reports"
    (reports / "plots").mkdir(parents=True)
    (reports / "summary.md").write_text("# summary")
    (reports / "plots" / "roc.csv").write_text("fpr,tpr\n0,0\n1,1\n")
    x, y = _data()
    model = LogisticRegression().fit(x, y)

    # -- what a user's training script does ------------------------------------------------
    experiment_id = mlflow.set_experiment("fraud-mlflow").experiment_id
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"depth": 6, "optimizer": "adam"})
        for step in range(5):
            mlflow.log_metric("loss", 1 / (step + 1), step=step)
        mlflow.log_metrics({"auc": 0.91, "acc": 0.8})
        mlflow.set_tag("team", "risk")
        mlflow.set_tags({"stage": "dev", "data": "v2"})
        mlflow.log_artifact(str(notes))
        mlflow.log_artifacts(str(reports), artifact_path="reports")
        with mlflow.start_run(run_name="trial-1", nested=True) as child:
            mlflow.log_metric("auc", 0.87)
        with mlflow.start_run(run_name="trial-2", nested=True) as child2:
            mlflow.log_metric("auc", 0.89)
        info = mlflow.sklearn.log_model(model, name="model",
                                        registered_model_name="fraud-mlflow-model",
                                        # skops, MLflow's default here, costs seconds
                                        serialization_format="cloudpickle",
                                        pip_requirements=["scikit-learn", "cloudpickle"])
    client = MlflowClient()

    # -- read back through the client --------------------------------------------------------
    run = client.get_run(parent.info.run_id)
    assert run.info.status == "FINISHED" and run.info.end_time is not None
    assert run.info.artifact_uri == (
        f"mlflow-artifacts:/{experiment_id}/{parent.info.run_id}/artifacts")
    assert run.data.params == {"lr": "0.1", "depth": "6", "optimizer": "adam"}
    assert run.data.metrics == {"loss": 0.2, "auc": 0.91, "acc": 0.8}
    assert {k: run.data.tags[k] for k in ("team", "stage", "data", "mlflow.runName")} == {
        "team": "risk", "stage": "dev", "data": "v2", "mlflow.runName": "parent"}
    assert client.get_run(child.info.run_id).data.tags["mlflow.parentRunId"] == (
        parent.info.run_id)
    history = client.get_metric_history(parent.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1 / (s + 1)) for s in range(5)]

    found = mlflow.search_runs(
        filter_string="metrics.auc > 0.5 and tags.\"mlflow.runName\" = 'parent'")
    assert list(found.run_id) == [parent.info.run_id]
    ordered = mlflow.search_runs(order_by=["metrics.auc DESC"])
    assert list(ordered["tags.mlflow.runName"]) == ["parent", "trial-2", "trial-1"]
    children = mlflow.search_runs(
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' and "
                      "attributes.status = 'FINISHED' and run_name ILIKE 'TRIAL%'",
        order_by=["attributes.run_name ASC"], output_format="list")
    assert [r.info.run_id for r in children] == [child.info.run_id, child2.info.run_id]
    by_param = client.search_runs([experiment_id], "params.optimizer LIKE 'ad%'")
    assert [r.info.run_id for r in by_param] == [parent.info.run_id]

    downloaded = Path(mlflow.artifacts.download_artifacts(
        run_id=parent.info.run_id, artifact_path="reports", dst_path=str(tmp_path / "dl")))
    assert (downloaded / "summary.md").read_text() == "# summary"
    assert (downloaded / "plots" / "roc.csv").read_text() == "fpr,tpr\n0,0\n1,1\n"
    single = mlflow.artifacts.download_artifacts(run_id=parent.info.run_id,
                                                 artifact_path="notes.txt",
                                                 dst_path=str(tmp_path / "dl1"))
    assert Path(single).read_text() == "first try"
    assert sorted(a.path for a in client.list_artifacts(parent.info.run_id)) == [
        "notes.txt", "reports"]

    # -- the registry: alias, version by alias, load and predict ------------------------------
    assert info.model_id.startswith("m-") and info.registered_model_version == "1"
    logged = client.get_logged_model(info.model_id)
    assert logged.source_run_id == parent.info.run_id and logged.status == "READY"
    client.set_registered_model_alias("fraud-mlflow-model", "champion", "1")
    version = client.get_model_version_by_alias("fraud-mlflow-model", "champion")
    assert (version.version, version.run_id, version.source) == (
        "1", parent.info.run_id, f"models:/{info.model_id}")
    assert [m.name for m in client.search_registered_models("name LIKE 'fraud%'")] == [
        "fraud-mlflow-model"]
    assert [v.version for v in client.search_model_versions(
        f"run_id = '{parent.info.run_id}'")] == ["1"]
    assert client.get_registered_model("fraud-mlflow-model").aliases == {"champion": "1"}
    assert [m.model_id for m in mlflow.search_logged_models(
        experiment_ids=[experiment_id], filter_string="name = 'model'",
        output_format="list")] == [info.model_id]
    assert [e.name for e in client.search_experiments(
        filter_string="name = 'fraud-mlflow'")] == ["fraud-mlflow"]
    loaded = mlflow.pyfunc.load_model("models:/fraud-mlflow-model@champion")
    assert list(loaded.predict(x)) == list(model.predict(x))

    # -- and Forgeline sees all of it -----------------------------------------------------------
    listed = CliRunner().invoke(cli, ["--store", server.store_uri, "runs", "list",
                                      "-e", "fraud-mlflow", "--json"])
    assert listed.exit_code == 0, listed.output
    names = {r["name"]: r for r in json.loads(listed.output)}
    assert {"parent", "trial-1", "trial-2", "model"} <= set(names)
    assert names["trial-1"]["parent_run_id"] == parent.info.run_id
    assert names["model"]["parent_run_id"] == parent.info.run_id  # the logged model's run
    flc = fl.Client(server.store_uri)
    run_fl = flc.get_run(parent.info.run_id)
    assert run_fl.params["depth"] == "6" and run_fl.metrics["auc"] == 0.91
    assert [m.value for m in flc.get_metric_history(parent.info.run_id, "loss")][-1] == 0.2
    assert {a.path for a in flc.list_artifacts(parent.info.run_id)} == {
        "notes.txt", "reports/summary.md", "reports/plots/roc.csv"}
    champion = flc.get_model_version("fraud-mlflow-model@champion")
    assert (champion.version, champion.run_id) == (1, parent.info.run_id)


def test_what_forgeline_writes_mlflow_reads(server: Server, tmp_path: Path) -> None:
    package = tmp_path / "model"
    package.mkdir()
    (package / "model.txt").write_text("weights")
    with fl.start_run(experiment="fraud-fl", name="fl-run", store=server.store_uri) as run:
        run.log_params({"lr": 0.05, "depth": 4})
        for step in range(3):
            run.log_metric("loss", 0.5 / (step + 1), step=step)
        run.log_metric("auc", 0.93)
        run.log_artifact(package, "model")
    flc = fl.Client(server.store_uri)
    flc.register_model("fl-model", run.run_id, "model", aliases=["champion"])

    found = mlflow.search_runs(experiment_names=["fraud-fl"],
                               filter_string="metrics.auc >= 0.9 and params.depth = '4'")
    assert list(found.run_id) == [run.run_id]
    row = found.iloc[0]
    assert (row["params.lr"], row["metrics.auc"], row["tags.mlflow.runName"]) == (
        "0.05", 0.93, "fl-run")
    client = MlflowClient()
    assert [m.value for m in client.get_metric_history(run.run_id, "loss")] == [
        0.5, 0.25, 0.5 / 3]
    version = client.get_model_version_by_alias("fl-model", "champion")
    assert (version.version, version.run_id, version.source) == (
        "1", run.run_id, f"runs:/{run.run_id}/model")
    files = Path(mlflow.artifacts.download_artifacts(
        "models:/fl-model@champion", dst_path=str(tmp_path / "dl")))
    assert (files / "model.txt").read_text() == "weights"


def test_default_experiment_and_errors_in_mlflow_shape(server: Server) -> None:
    client = MlflowClient()
    with mlflow.start_run() as run:  # no experiment set: MLflow's Default, id "0"
        mlflow.log_metric("m", 1.0)
    assert client.get_experiment(run.info.experiment_id).name == "Default"
    assert client.get_experiment("0").name == "Default"
    assert run.info.run_name  # MLflow clients expect a generated name

    with pytest.raises(MlflowException) as missing:
        client.get_run("0" * 32)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as unsupported:
        mlflow.search_runs(filter_string="params.lr IS NULL")
    assert unsupported.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "IS NULL and IS NOT NULL are not supported" in unsupported.value.message
    with pytest.raises(MlflowException) as malformed:
        mlflow.search_runs(filter_string="metrics.auc >")
    assert malformed.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as param:
        client.log_param(run.info.run_id, "x", "1")
        client.log_param(run.info.run_id, "x", "2")
    assert param.value.error_code == "INVALID_PARAMETER_VALUE"
    client.create_experiment("twice")
    with pytest.raises(MlflowException) as twice:
        client.create_experiment("twice")
    assert twice.value.error_code == "RESOURCE_ALREADY_EXISTS"

    # The same routes under the UI's prefix, and what is not mapped, in MLflow's shape.
    with httpx.Client(base_url=server.url) as http:
        got = http.get("/ajax-api/2.0/mlflow/runs/get", params={"run_id": run.info.run_id})
        assert got.status_code == 200 and got.json()["run"]["info"]["run_name"]
        gone = http.get("/ajax-api/2.0/mlflow/runs/get", params={"run_id": "nope"})
        assert gone.status_code == 404
        assert gone.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        deleted = http.post("/api/2.0/mlflow/experiments/delete", json={"experiment_id": "1"})
        assert deleted.status_code == 404
        assert deleted.json()["error_code"] == "ENDPOINT_NOT_FOUND"
        assert "not supported" in deleted.json()["message"]
        escape = http.put(f"/api/2.0/mlflow-artifacts/artifacts/{run.info.experiment_id}/"
                          f"{run.info.run_id}/artifacts/a/%2E%2E/%2E%2E/x", content=b"x")
        assert escape.status_code == 400
        assert escape.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_roles_in_mlflow_shape(live_server: LiveServer, server: Server,
                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = get_store(server.store_uri)
    live_server.use(store, tmp_path / "artifacts", auth=True)
    _, reader = issue_token(store, "ci-reader", Role.READER)
    with pytest.raises(MlflowException) as anonymous:
        MlflowClient().search_experiments()
    assert anonymous.value.error_code == "UNAUTHENTICATED"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", reader)
    assert [e.name for e in MlflowClient().search_experiments()] == ["Default"]
    with pytest.raises(MlflowException) as forbidden:
        MlflowClient().create_experiment("nope")
    assert forbidden.value.error_code == "PERMISSION_DENIED"
    assert "needs the role writer" in forbidden.value.message


def test_artifact_uploads_stream_past_the_json_body_limit(server: Server, tmp_path: Path
                                                          ) -> None:
    big = tmp_path / "weights.bin"
    big.write_bytes(os.urandom(256 << 10))
    with team_server(get_store(server.store_uri), tmp_path / "artifacts",
                     max_body_bytes=4096) as small:
        mlflow.set_tracking_uri(small.url)
        with mlflow.start_run() as run:
            mlflow.log_artifact(str(big), artifact_path="model")
        back = mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                   artifact_path="model/weights.bin",
                                                   dst_path=str(tmp_path / "dl"))
    assert Path(back).read_bytes() == big.read_bytes()
