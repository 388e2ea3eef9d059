"""``forgeline deploy k8s``: what it writes and prints, and one line for every mistake."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner, Result

from forgeline.cli import app
from tests.serving.conftest import TrainedStore


def invoke(tmp_path: Path, *args: str) -> Result:
    env = {"FORGELINE_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    return CliRunner().invoke(app, list(args), env=env)


def one_error_line(result: Result, code: int, fragment: str) -> None:
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert "Traceback" not in result.output


def test_a_model_gets_its_manifests_and_the_commands_to_apply_them(
        trained: TrainedStore, tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    done = invoke(tmp_path, "--store", trained.uri, "deploy", "k8s", "fraud@champion",
                  "-o", str(out), "--image", "registry.example.com/forgeline-fraud:1",
                  "--graceful-timeout", "20", "--max-replicas", "4")
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in out.iterdir()) == [
        ".forgeline-deploy", "configmap.yaml", "deployment.yaml", "hpa.yaml", "pdb.yaml",
        "service.yaml", "servicemonitor.yaml"]
    assert "kubectl create secret generic fraud-token" in done.stdout
    assert f"kubectl apply -f {out}" in done.stdout
    (deployment,) = yaml.safe_load_all((out / "deployment.yaml").read_text())
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "registry.example.com/forgeline-fraud:1"
    assert c["args"][c["args"].index("--graceful-timeout") + 1] == "20"
    (hpa,) = yaml.safe_load_all((out / "hpa.yaml").read_text())
    assert hpa["spec"]["maxReplicas"] == 4
    again = invoke(tmp_path, "--store", trained.uri, "deploy", "k8s", "fraud/1", "-o",
                   str(out), "--no-service-monitor", "--json")  # replaces its own output
    assert again.exit_code == 0, again.output
    result = json.loads(again.stdout)
    assert "servicemonitor.yaml" not in result["files"] and result["apply"].startswith(
        "kubectl apply -f ")
    assert not (out / "servicemonitor.yaml").exists()


def test_the_team_server_gets_its_manifests(tmp_path: Path) -> None:
    out = tmp_path / "server"
    done = invoke(tmp_path, "deploy", "k8s", "--server", "--image", "reg/forgeline:0.1.0",
                  "-o", str(out), "-n", "ml")
    assert done.exit_code == 0, done.output
    assert {p.name for p in out.glob("*.yaml")} == {"configmap.yaml", "deployment.yaml",
                                                     "service.yaml", "pdb.yaml", "pvc.yaml"}
    assert "kubectl create secret generic forgeline-server-store -n ml" in done.stdout
    assert "forgeline server token create --role admin" in done.stdout


def test_an_unknown_model_is_one_line_and_writes_nothing(trained: TrainedStore,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    done = invoke(tmp_path, "--store", trained.uri, "deploy", "k8s", "ghost@champion", "-o",
                  str(out))
    one_error_line(done, 3, "ghost")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name != "home"] == []


def test_other_mistakes_are_one_line_and_write_nothing(trained: TrainedStore,
                                                       tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "kustomization.yaml").write_text("resources: []\n")
    store = ("--store", trained.uri)
    cases = [(("deploy", "k8s"), 2, "Give either a MODEL or --server"),
             (("deploy", "k8s", "fraud", "--server"), 2, "Give either a MODEL or --server"),
             (("deploy", "k8s", "--server"), 2, "--server needs --image"),
             ((*store, "deploy", "k8s", "fraud@champion", "--image", "Bad Image"), 2,
              "Invalid image 'Bad Image'"),
             ((*store, "deploy", "k8s", "fraud@champion", "--min-replicas", "5",
               "--max-replicas", "2"), 2, "Invalid replica range 5..2"),
             ((*store, "deploy", "k8s", "fraud@champion", "--memory", "lots"), 2,
              "Invalid memory request 'lots'"),
             ((*store, "deploy", "k8s", "fraud@champion", "--store-uri",
               "postgresql+psycopg://u:pw@db/x"), 2, "holds a password"),
             ((*store, "deploy", "k8s", "fraud@champion", "-o", str(foreign)), 4,
              "is not empty")]
    for args, code, fragment in cases:
        one_error_line(invoke(tmp_path, *args), code, fragment)
    assert not (tmp_path / "deploy").exists()
    assert [p.name for p in foreign.iterdir()] == ["kustomization.yaml"]


def test_serve_names_its_flag_for_a_bad_pin(trained: TrainedStore, tmp_path: Path) -> None:
    done = invoke(tmp_path, "--store", trained.uri, "serve", "fraud@champion", "--port", "0",
                  "--expect-manifest", "abc")
    one_error_line(done, 2, "Invalid --expect-manifest 'abc'")
