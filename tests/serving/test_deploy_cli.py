"""``forgeline deploy k8s``: what it writes and prints, and one line for every mistake."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from forgeline.serving.docker import HOME
from tests.serving.conftest import TrainedStore, invoke, one_error_line


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
             (("deploy", "k8s", "--server", "--image", "img:1", "--artifacts", "s3:/x"), 2,
              "Invalid object storage URI 's3:/x'"),
             ((*store, "deploy", "k8s", "fraud@champion", "--artifacts", "s3://b/p"), 2,
              "--artifacts, --s3-endpoint and --s3-region set up the team server's"),
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_pods_command_line_serves_only_the_pinned_package(trained: TrainedStore,
                                                              tmp_path: Path) -> None:
    """The Deployment's command, args and environment, run as the pod runs them (the
    package where the image keeps it, FORGELINE_* from the ConfigMap and the Secret)."""
    from forgeline.packaging import load_model
    from forgeline.serving.kubernetes import model_manifests
    from forgeline.tracking.client import Client

    predictor = load_model("fraud@champion", Client(trained.uri), trained.cache, lazy=True)
    manifests = model_manifests(predictor)
    (c,) = manifests.files["deployment.yaml"][0]["spec"]["template"]["spec"]["containers"]
    settings = manifests.files["configmap.yaml"][0]["data"]
    package = tmp_path / "app" / "model"  # /app/model in the image, read-only there too
    shutil.copytree(predictor.path, package, ignore=shutil.ignore_patterns(".*"))
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FORGELINE_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({k: v.replace(HOME, str(home)) for k, v in settings.items()})
    env["FORGELINE_SERVE_TOKEN"] = "s3cret"  # what the secretKeyRef hands the pod
    port = _free_port()
    args = [str(package) if a == "/app/model" else a for a in c["args"]]
    args[args.index("--port") + 1] = str(port)
    args[args.index("--host") + 1] = "127.0.0.1"
    forgeline = str(Path(sys.executable).with_name(c["command"][0]))
    process = subprocess.Popen([forgeline, *args, "--runtime", "native"], env=env,
                               cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(url + c["readinessProbe"]["httpGet"]["path"]).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, (
                process.stderr.read() if process.stderr else "")
            time.sleep(0.1)
        assert httpx.get(url + c["livenessProbe"]["httpGet"]["path"]).status_code == 200
        row = {"amount": 120.0, "items": 3, "country": "FR"}
        assert httpx.post(f"{url}/predict", json={"records": [row]}).status_code == 401
        assert httpx.post(f"{url}/predict", json={"records": [row]},
                          headers={"Authorization": "Bearer s3cret"}).status_code == 200
        process.send_signal(signal.SIGTERM)  # as the kubelet stops it, after the preStop
        drain = float(c["args"][c["args"].index("--graceful-timeout") + 1])
        assert process.wait(timeout=drain) in (0, -signal.SIGTERM)  # uvicorn re-raises it
        log = process.stderr.read() if process.stderr else ""
        assert "Application shutdown complete" in log and "Traceback" not in log, log
        assert (home / "forgeline.db").is_file()  # what it writes: under FORGELINE_HOME
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    # another package under the same command line: refused at start, one line
    args[args.index("--expect-manifest") + 1] = "0" * 64
    done = subprocess.run([forgeline, *args, "--runtime", "native"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 6, done.stderr  # IntegrityError's exit code
    assert done.stderr.count("\n") == 1 and "not the pinned 000000000000" in done.stderr
