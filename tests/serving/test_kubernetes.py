"""``forgeline deploy k8s``: the manifests of a real trained model and of the team server,
validated offline against the Kubernetes API schemas (kubernetes-validate, strict: an
unknown field fails too), and checked for what a production deployment needs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from forgeline.config import ENVIRONMENT, SERVER_GRACEFUL_TIMEOUT_S
from forgeline.errors import AlreadyExists, IntegrityError, InvalidInput, NotFound
from forgeline.packaging import Predictor, load_model
from forgeline.packaging.package import manifest_digest
from forgeline.serving import docker
from forgeline.serving import kubernetes as k8s
from forgeline.serving.config import InvalidSetting, ServeConfig
from forgeline.serving.models import Deployment
from forgeline.tracking.client import Client
from tests.serving.conftest import LiveServer, MemoryLog, TrainedStore

K8S_VERSION = "1.37.0"
RECOMMENDED = {"name", "instance", "version", "component", "part-of", "managed-by"}


@pytest.fixture(scope="module")
def model(trained: TrainedStore) -> k8s.Manifests:
    return k8s.model_manifests("fraud@champion", client=Client(trained.uri),
                               cache_dir=trained.cache, namespace="ml")


@pytest.fixture(scope="module")
def predictor(trained: TrainedStore) -> Predictor:
    """fraud@champion, as the manifests of ``model`` resolve it."""
    return load_model("fraud@champion", Client(trained.uri), trained.cache, lazy=True)


@pytest.fixture(scope="module")
def server() -> k8s.Manifests:
    return k8s.server_manifests("registry.example.com/forgeline-fraud:1", namespace="ml")


def one(manifests: k8s.Manifests, kind: str) -> dict[str, Any]:
    (found,) = [d for docs in manifests.files.values() for d in docs if d["kind"] == kind]
    return found


def container(manifests: k8s.Manifests) -> dict[str, Any]:
    (c,) = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    return c


def validate_all(manifests: k8s.Manifests) -> set[str]:
    kinds = set()
    for documents in manifests.files.values():
        for document in documents:
            kinds.add(document["kind"])
            if document["kind"] == "ServiceMonitor":  # a CRD: no schema in kubernetes-validate
                continue
            kubernetes_validate.validate(document, K8S_VERSION, strict=True)
    return kinds


def test_every_model_manifest_is_valid_kubernetes(model: k8s.Manifests, tmp_path: Path) -> None:
    kinds = validate_all(model)
    assert kinds == {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
                     "PodDisruptionBudget", "ServiceMonitor"}
    assert one(model, "HorizontalPodAutoscaler")["apiVersion"] == "autoscaling/v2"
    assert one(model, "PodDisruptionBudget")["apiVersion"] == "policy/v1"
    assert model.files["servicemonitor.yaml"] == [one(model, "ServiceMonitor")]  # own file
    # the files on disk are these documents, in YAML kubectl reads
    written = k8s.write_manifests(model, tmp_path / "deploy")
    assert sorted(p.name for p in written) == sorted(model.files)
    for path in written:
        assert list(yaml.safe_load_all(path.read_text())) == model.files[path.name]
        assert all(d["metadata"]["namespace"] == "ml" for d in model.files[path.name])


def test_the_service_monitor_scrapes_the_service_metrics_port(model: k8s.Manifests,
                                                              predictor: Predictor) -> None:
    monitor, service = one(model, "ServiceMonitor"), one(model, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["name"] == service["metadata"]["name"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    annotations = one(model, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(docker.PORT)
    assert annotations["prometheus.io/path"] == "/metrics"
    without = k8s.model_manifests(predictor, service_monitor=False)
    assert "servicemonitor.yaml" not in without.files


def test_the_pod_is_hardened(model: k8s.Manifests) -> None:
    pod = one(model, "Deployment")["spec"]["template"]["spec"]
    c = container(model)
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": docker.UID,
                                      "runAsGroup": docker.UID, "fsGroup": docker.UID,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    security = c["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == docker.UID == 10001
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    # what the server writes (FORGELINE_HOME: prediction log, store; /tmp) is an emptyDir
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert set(mounts) == {k8s.HOME, "/tmp"}
    assert all("emptyDir" in volumes[name] for name in mounts.values())
    config_map = one(model, "ConfigMap")
    assert config_map["data"]["FORGELINE_HOME"] == k8s.HOME
    assert f"FORGELINE_HOME={k8s.HOME}" in docker.dockerfile(None, "x")  # the image's
    resources = c["resources"]
    assert set(resources) == {"requests", "limits"}
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


def test_probes_are_the_oip_health_routes_on_the_served_port(
        model: k8s.Manifests, serve: Callable[..., LiveServer]) -> None:
    c = container(model)
    (port,) = c["ports"]
    assert port == {"name": "http", "containerPort": docker.PORT, "protocol": "TCP"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert c["args"][:6] == ["serve", "/app/model", "--host", "0.0.0.0", "--port",
                             str(docker.PORT)]
    # the routes answer 200 on the real server, and so does /metrics
    url = serve(log=MemoryLog()).url
    for path in ("/v2/health/ready", "/v2/health/live", "/metrics"):
        assert httpx.get(url + path).status_code == 200, path


def test_the_grace_period_covers_the_prestop_sleep_and_the_drain(
        model: k8s.Manifests, predictor: Predictor) -> None:
    c = container(model)
    pod = one(model, "Deployment")["spec"]["template"]["spec"]
    assert c["lifecycle"]["preStop"] == {"exec": {"command": ["sleep", str(k8s.PRESTOP_S)]}}
    assert c["args"][c["args"].index("--graceful-timeout") + 1] == "30"  # serve's default
    assert pod["terminationGracePeriodSeconds"] > k8s.PRESTOP_S + 30
    slow = k8s.model_manifests(predictor, graceful_timeout_s=52.5)
    c, pod = container(slow), one(slow, "Deployment")["spec"]["template"]["spec"]
    assert c["args"][c["args"].index("--graceful-timeout") + 1] == "52.5"
    assert pod["terminationGracePeriodSeconds"] == k8s.grace_period(52.5) > k8s.PRESTOP_S + 52.5


def test_every_selector_selects_the_pods_and_labels_are_the_recommended_ones(
        model: k8s.Manifests) -> None:
    deployment = one(model, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert {key.removeprefix("app.kubernetes.io/") for key in pod_labels} == RECOMMENDED
    assert pod_labels["app.kubernetes.io/version"] == "1"  # fraud@champion is version 1
    assert pod_labels["app.kubernetes.io/part-of"] == "forgeline"
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert "app.kubernetes.io/version" not in selector  # a selector never changes
    for kind in ("PodDisruptionBudget", "ServiceMonitor"):
        assert one(model, kind)["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert selector.items() <= pod_labels.items()
    service = one(model, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in container(model)["ports"]}
    hpa = one(model, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert "replicas" not in deployment["spec"]  # the autoscaler owns it
    for documents in model.files.values():
        for document in documents:
            assert {k.removeprefix("app.kubernetes.io/")
                    for k in document["metadata"]["labels"]} == RECOMMENDED


def test_the_token_comes_from_a_secret_and_settings_from_the_config_map(
        model: k8s.Manifests, tmp_path: Path) -> None:
    c = container(model)
    (token,) = c["env"]
    assert token == {"name": "FORGELINE_SERVE_TOKEN", "valueFrom": {
        "secretKeyRef": {"name": "fraud-token", "key": "token"}}}
    config_map = one(model, "ConfigMap")
    assert c["envFrom"] == [{"configMapRef": {"name": config_map["metadata"]["name"]}}]
    assert set(config_map["data"]) == {"FORGELINE_HOME", "FORGELINE_STORE_URI"}
    assert set(config_map["data"]) | {token["name"]} <= set(ENVIRONMENT)
    assert config_map["data"]["FORGELINE_STORE_URI"] == f"sqlite:///{k8s.HOME}/forgeline.db"
    (command,) = model.secrets
    assert command.startswith("kubectl create secret generic fraud-token -n ml ")
    # no Secret is written, and the command is in the files' header, not a value
    assert "Secret" not in {d["kind"] for docs in model.files.values() for d in docs}
    k8s.write_manifests(model, tmp_path / "d")
    assert command in (tmp_path / "d" / "deployment.yaml").read_text()


def test_a_team_server_store_reads_its_token_from_a_secret_and_passwords_are_refused(
        predictor: Predictor) -> None:
    remote = k8s.model_manifests(predictor, store_uri="http://forgeline-server:5000")
    assert one(remote, "ConfigMap")["data"]["FORGELINE_STORE_URI"] == (
        "http://forgeline-server:5000")
    assert {"name": "FORGELINE_TOKEN", "valueFrom": {"secretKeyRef": {
        "name": "fraud-store-token", "key": "token"}}} in container(remote)["env"]
    assert len(remote.secrets) == 2
    with pytest.raises(InvalidInput, match=r"^The store URI holds a password"):
        k8s.model_manifests(predictor, store_uri="postgresql+psycopg://u:hunter2@db/f")


def test_the_image_is_the_built_one_and_the_package_is_pinned(
        model: k8s.Manifests, predictor: Predictor) -> None:
    c = container(model)
    assert c["image"] == docker.image_tag(predictor) == "forgeline-fraud:1"
    digest = manifest_digest(predictor.path)
    assert c["args"][c["args"].index("--expect-manifest") + 1] == digest
    template = one(model, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert template["forgeline.dev/manifest-sha256"] == digest
    assert template["forgeline.dev/model"] == "fraud/1 (fraud@champion)"
    assert model.source == "fraud/1 (fraud@champion)"
    other = k8s.model_manifests(predictor, image="registry.example.com/ml/fraud:1@sha256:"
                                + "a" * 64, name="fraud-canary")
    assert container(other)["image"].startswith("registry.example.com/ml/fraud:1@sha256:")
    assert one(other, "Service")["metadata"]["name"] == "fraud-canary"
    for bad in ({"image": "Not An Image"}, {"name": "!!!"}, {"min_replicas": 3,
                                                              "max_replicas": 2}):
        with pytest.raises(InvalidInput):
            k8s.model_manifests(predictor, **bad)


def test_an_unknown_model_is_not_found(trained: TrainedStore) -> None:
    with pytest.raises(NotFound, match="ghost"):
        k8s.model_manifests("ghost@champion", client=Client(trained.uri),
                            cache_dir=trained.cache)


def test_writing_is_all_at_once_reproducible_and_never_over_something_else(
        model: k8s.Manifests, tmp_path: Path) -> None:
    target = tmp_path / "deploy"
    k8s.write_manifests(model, target)
    first = {p.name: p.read_bytes() for p in target.iterdir()}
    assert k8s.MARKER in first
    k8s.write_manifests(model, target)  # written here before: replaced, same bytes
    assert {p.name: p.read_bytes() for p in target.iterdir()} == first
    assert [p.name for p in tmp_path.iterdir()] == ["deploy"]  # no temporary left
    (target / "kustomization.yaml").write_text("resources: [deployment.yaml]\n")
    with pytest.raises(AlreadyExists, match=r"deploy holds files this command did not "
                                            r"write: kustomization\.yaml\."):
        k8s.write_manifests(model, target)  # replacing it would lose the user's file
    assert (target / "kustomization.yaml").is_file()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(AlreadyExists, match=r"mine is not empty\."):
        k8s.write_manifests(model, foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(AlreadyExists, match="is not a directory"):
        k8s.write_manifests(model, tmp_path / "file")


# -- the team server ----------------------------------------------------------------------
def test_every_server_manifest_is_valid_kubernetes(server: k8s.Manifests) -> None:
    assert validate_all(server) == {"ConfigMap", "Deployment", "Service",
                                    "PodDisruptionBudget", "PersistentVolumeClaim"}


def test_the_server_reads_postgresql_from_a_secret_and_keeps_artifacts_on_a_volume(
        server: k8s.Manifests) -> None:
    c = container(server)
    assert c["command"] == ["forgeline"] and c["args"][0] == "server"
    assert c["args"][c["args"].index("--host") + 1] == "0.0.0.0"
    assert "--store" not in c["args"]  # the URI holds a password: never on a command line
    assert c["env"] == [{"name": "FORGELINE_STORE_URI", "valueFrom": {"secretKeyRef": {
        "name": "forgeline-server-store", "key": "uri"}}}]
    (command,) = server.secrets
    assert "forgeline-server-store" in command and "postgresql+psycopg://" in command
    artifacts = c["args"][c["args"].index("--artifacts") + 1]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    pod = one(server, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    pvc = one(server, "PersistentVolumeClaim")
    assert volumes[mounts[artifacts]]["persistentVolumeClaim"]["claimName"] == (
        pvc["metadata"]["name"])
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert one(server, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert pod["terminationGracePeriodSeconds"] == k8s.grace_period(SERVER_GRACEFUL_TIMEOUT_S)
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["fsGroup"] == docker.UID  # the volume is writable
    shared = k8s.server_manifests("img:1", replicas=3, storage_class="nfs")
    claim = one(shared, "PersistentVolumeClaim")["spec"]
    assert claim["accessModes"] == ["ReadWriteMany"] and claim["storageClassName"] == "nfs"
    assert one(shared, "Deployment")["spec"]["replicas"] == 3
    validate_all(shared)


def test_the_server_probes_a_health_route_it_has(server: k8s.Manifests,
                                                  tmp_path: Path) -> None:
    from forgeline.store import close_stores, get_store
    from tests.teamserver import team_server

    c = container(server)
    paths = {c[f"{kind}Probe"]["httpGet"]["path"] for kind in ("startup", "readiness",
                                                               "liveness")}
    assert paths == {"/api/forgeline/v1/health"}
    assert c["ports"][0]["containerPort"] == k8s.SERVER_PORT
    service, pod_labels = one(server, "Service"), one(server, "Deployment")["spec"][
        "template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert one(server, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= (
        pod_labels.items())
    store = get_store(f"sqlite:///{tmp_path / 'f.db'}")
    try:
        with team_server(store, tmp_path / "a", auth=True) as live:  # a probe has no token
            assert httpx.get(live.url + paths.pop()).status_code == 200
    finally:
        close_stores()


# -- the pin the manifests rely on: forgeline serve --expect-manifest ------------------------
def test_the_server_refuses_a_package_other_than_the_pinned_one(
        trained: TrainedStore, predictor: Predictor) -> None:
    digest = manifest_digest(predictor.path)
    base = {"store_uri": trained.uri, "cache_dir": str(trained.cache), "runtime": "native"}
    Deployment(ServeConfig("fraud@champion", manifest_sha256=digest, **base))  # loads
    with pytest.raises(IntegrityError, match=r"^The model package of fraud@challenger has "
                                             r"manifest sha256 [0-9a-f]{12}\.\.\., not the "
                                             r"pinned [0-9a-f]{12}"):
        Deployment(ServeConfig("fraud@challenger", manifest_sha256=digest, **base))
    with pytest.raises(InvalidSetting, match=r"^Invalid manifest_sha256 'abc': expected 64"):
        ServeConfig("fraud@champion", manifest_sha256="abc")
    with pytest.raises(InvalidSetting, match="swaps in others"):
        ServeConfig("fraud@champion", manifest_sha256=digest, watch=True)


def test_the_server_can_keep_artifacts_in_object_storage_instead_of_a_volume() -> None:
    s3 = k8s.server_manifests("img:1", replicas=3, artifacts="s3://team-bucket/forgeline",
                              s3_endpoint="http://minio.storage:9000", s3_region="eu-west-1")
    assert validate_all(s3) == {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"}
    c = container(s3)
    assert c["args"][c["args"].index("--artifacts") + 1] == "s3://team-bucket/forgeline"
    assert "artifacts" not in {m["name"] for m in c["volumeMounts"]}
    keys = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]}
    assert keys["AWS_ACCESS_KEY_ID"] == {"name": "forgeline-server-s3",
                                         "key": "AWS_ACCESS_KEY_ID"}
    assert keys["AWS_SECRET_ACCESS_KEY"]["name"] == "forgeline-server-s3"
    assert one(s3, "ConfigMap")["data"] == {"FORGELINE_HOME": docker.HOME,
                                            "AWS_ENDPOINT_URL": "http://minio.storage:9000",
                                            "AWS_REGION": "eu-west-1"}
    assert one(s3, "Deployment")["spec"]["strategy"]["type"] == "RollingUpdate"
    assert any("forgeline-server-s3" in command and "AWS_SECRET_ACCESS_KEY=..." in command
               for command in s3.secrets)  # how to create it; no value written
    with pytest.raises(InvalidInput, match="Invalid object storage URI 's3:///nobucket'"):
        k8s.server_manifests("img:1", artifacts="s3:///nobucket")
