"""``forgeline deploy k8s``: Kubernetes manifests for a model's server and the team server.

**Plain manifests, not a Helm chart.** ``kubectl apply -f deploy/`` needs no other tool;
every value is resolved when the files are written (the model version, its image, the
manifest hash of its package), so there is nothing left to template; and plain files are
what kustomize overlays patch and what a GitOps tool diffs. Writing the same model twice
gives the same bytes (no timestamps), so a rerun shows up as no change at all.

A model (:func:`model_manifests`) gets, one kind per file:

- ``deployment.yaml``: ``forgeline serve /app/model`` from the image ``forgeline build``
  made, the package baked in; ``--expect-manifest`` pins the sha256 of the package's
  manifest, so a pod refuses to start on any other package (an image rebuilt under the
  same tag), and the server verifies every file against that manifest as it loads; the
  OIP v2 health routes as startup, readiness and liveness probes; resource requests and
  limits; a non-root user (uid :data:`~forgeline.serving.docker.UID`), a read-only root
  filesystem with emptyDirs for ``FORGELINE_HOME`` (prediction log, local store) and
  ``/tmp``, no privilege escalation, no capabilities, seccomp ``RuntimeDefault``, no
  service-account token. A preStop sleep lets the endpoints controller take the pod out
  of the Service before SIGTERM starts the drain, and ``terminationGracePeriodSeconds``
  covers that sleep plus ``--graceful-timeout`` plus a margin, so requests in flight
  finish instead of being killed. The manifest sha256 is also an annotation, for
  ``kubectl get`` and audits.
- ``service.yaml``, ``hpa.yaml`` (autoscaling/v2 on CPU), ``pdb.yaml`` (policy/v1,
  at most one pod down in a voluntary disruption), ``configmap.yaml`` (the settings the
  pod reads from its environment) and ``servicemonitor.yaml`` (Prometheus Operator; its own
  file because it is a custom resource: where the operator is not installed, leave it
  out and the ``prometheus.io/*`` pod annotations still tell a plain Prometheus to scrape).

The bearer token comes from a Secret the user creates (:attr:`Manifests.secrets` says
how); no secret value is ever written. A store URI with a password in it is refused: it
belongs in a Secret, not a ConfigMap.

The team server (:func:`server_manifests`) gets a Deployment of ``forgeline server``
whose PostgreSQL URI comes from a Secret through ``FORGELINE_STORE_URI`` (not through
``--store $(VAR)``, which would put the password on the process's command line), the
artifact bytes on a PersistentVolumeClaim (or, with ``artifacts="s3://..."``, in object
storage, its keys from a Secret), a Service, a PDB, and the same hardening.

:func:`write_manifests` writes them like every writer here: into a temporary sibling
folder renamed into place, refusing a non-empty folder that this module did not write.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from forgeline.config import ENV_SERVE_TOKEN, ENV_TOKEN, SERVER_GRACEFUL_TIMEOUT_S
from forgeline.errors import AlreadyExists, InvalidInput
from forgeline.packaging.package import manifest_digest
from forgeline.packaging.predictor import Predictor, load_model
from forgeline.serving import _k8s_objects as k8s
from forgeline.serving._k8s_objects import PRESTOP_S, Resources
from forgeline.serving.config import Listener
from forgeline.serving.docker import HOME, PORT, identity, image_tag
from forgeline.store.s3 import parse_s3_uri
from forgeline.util.files import atomic_path
from forgeline.version import __version__

if TYPE_CHECKING:
    from forgeline.tracking.client import Client

__all__ = ["ANNOTATION_PREFIX", "HOME", "MARKER", "PRESTOP_S", "SERVER_PORT", "Manifests",
           "Resources", "grace_period", "model_manifests", "server_manifests",
           "write_folder", "write_manifests"]

MARKER = ".forgeline-deploy"  # marks a folder this module wrote (safe to replace)
SERVER_PORT = 5000  # forgeline server's default port
ARTIFACTS = "/srv/forgeline/artifacts"  # the team server's artifact volume
GRACE_MARGIN_S = 5  # for the process to exit once the drain is over
ANNOTATION_PREFIX = "forgeline.dev/"


@dataclass(frozen=True, slots=True)
class Manifests:
    """The manifests of one application, by file name, and what to do before applying.

    Attributes:
        name: the application's resource name.
        files: file name -> the documents it holds (plain dicts, dumped as YAML).
        secrets: ``kubectl create secret`` commands for the Secrets the manifests read.
        source: what they were written for (``fraud/3 (fraud@champion)``), for headers.
        notes: other commands worth knowing once applied.
    """

    name: str
    files: dict[str, list[dict[str, Any]]]
    secrets: tuple[str, ...] = ()
    source: str = ""
    notes: tuple[str, ...] = ()


def grace_period(graceful_timeout_s: float) -> int:
    """``terminationGracePeriodSeconds`` for a server that drains for ``graceful_timeout_s``:
    the preStop sleep, then the drain, then a margin to exit."""
    return PRESTOP_S + math.ceil(graceful_timeout_s) + GRACE_MARGIN_S


def model_manifests(ref_or_predictor: str | Path | Predictor, *, client: Client | None = None,
                    cache_dir: Path | None = None,
                    name: str | None = None, image: str | None = None,
                    namespace: str | None = None, min_replicas: int = 2,
                    max_replicas: int = 10, cpu_target: int = 70, workers: int = 1,
                    graceful_timeout_s: float = Listener().graceful_timeout_s,
                    resources: Resources | None = None, store_uri: str | None = None,
                    token_secret: str | None = None,
                    service_monitor: bool = True) -> Manifests:
    """The manifests serving one model version; see the module docstring.

    Args:
        ref_or_predictor: a model reference (``fraud@champion``, ``fraud/3``), a package
            directory or a loaded Predictor; resolved now, so the files name one version.
        client: the registry to resolve a reference in.
        cache_dir: where a downloaded version is kept (as :func:`~forgeline.load_model`).
        name: the resources' name (default: the model's name, as a DNS label).
        image: the image (default: the tag ``forgeline build`` gives it).
        namespace: written into every resource; None leaves it to ``kubectl -n``.
        min_replicas, max_replicas, cpu_target: the autoscaler's range and its CPU target
            (percent of the request).
        workers: ``forgeline serve --workers``.
        graceful_timeout_s: ``forgeline serve --graceful-timeout``; sets the grace period.
        resources: requests and limits.
        store_uri: ``FORGELINE_STORE_URI`` of the pods (default: a SQLite file in their
            emptyDir); a team server's ``http(s)://`` URI also reads ``FORGELINE_TOKEN``
            from a Secret.
        token_secret: the Secret holding the bearer token (key ``token``).
        service_monitor: write ``servicemonitor.yaml`` (needs the Prometheus Operator).

    Raises:
        NotFound: no such model, version or alias.
        InvalidInput: a bad name, image, count, or a store URI holding a password.
        IntegrityError: the package fails its checks.
    """
    predictor = ref_or_predictor if isinstance(ref_or_predictor, Predictor) else (
        load_model(ref_or_predictor, client, cache_dir, lazy=True))
    model, version = identity(predictor)
    name = k8s.dns_name(name if name is not None else model, "--name")
    image = k8s.image(image or image_tag(predictor))
    if not 1 <= min_replicas <= max_replicas:
        raise InvalidInput(f"Invalid replica range {min_replicas}..{max_replicas}: expected "
                           "1 <= min <= max.")
    if not 1 <= cpu_target <= 100 or workers < 1 or graceful_timeout_s < 0:
        raise InvalidInput("The CPU target is a percentage (1-100), workers at least 1, the "
                           "graceful timeout at least 0.")
    mv = predictor.model_version
    source = f"{mv.name}/{mv.version}" if mv is not None else str(predictor.path)
    if mv is not None and isinstance(ref_or_predictor, str) and ref_or_predictor != source:
        source += f" ({ref_or_predictor})"
    digest = manifest_digest(predictor.path)
    labels = k8s.labels(name, "model-server", version)
    selector = k8s.selector(labels)
    token_secret = k8s.dns_name(token_secret or f"{name}-token", "the token Secret")
    store = k8s.store_uri(store_uri) or f"sqlite:///{HOME}/forgeline.db"
    settings = {"FORGELINE_HOME": HOME, "FORGELINE_STORE_URI": store}
    ns = k8s.ns_flag(namespace)
    env = [k8s.secret_env(ENV_SERVE_TOKEN, token_secret, "token")]
    secrets = [f"kubectl create secret generic {token_secret}{ns} "
               "--from-literal=token=\"$(openssl rand -hex 32)\""]
    if urlsplit(store).scheme in ("http", "https"):  # a team server: it wants a token
        store_secret = f"{name}-store-token"
        env.append(k8s.secret_env(ENV_TOKEN, store_secret, "token"))
        secrets.append(f"kubectl create secret generic {store_secret}{ns} "
                       "--from-literal=token=TEAM_SERVER_TOKEN")
    annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": str(PORT),
                   "prometheus.io/path": "/metrics",
                   f"{ANNOTATION_PREFIX}model": source,
                   f"{ANNOTATION_PREFIX}manifest-sha256": digest}
    args = ["serve", "/app/model", "--host", "0.0.0.0", "--port", str(PORT),
            "--workers", str(workers), "--graceful-timeout", f"{graceful_timeout_s:g}",
            "--expect-manifest", digest]
    container = k8s.container(
        "model-server", image, args, PORT, env, f"{name}-config", resources or Resources(),
        {"startup": "/v2/health/live", "readiness": "/v2/health/ready",
         "liveness": "/v2/health/live"},
        [("home", HOME), ("tmp", "/tmp")])
    pod = k8s.pod(labels, annotations, container, grace_period(graceful_timeout_s),
                  [{"name": "home", "emptyDir": {}},
                   {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}])
    deployment = k8s.resource("apps/v1", "Deployment", name, namespace, labels,
                              {f"{ANNOTATION_PREFIX}manifest-sha256": digest})
    # no spec.replicas: the autoscaler owns it, and `kubectl apply` must not reset it
    deployment["spec"] = {"selector": {"matchLabels": selector},
                          "strategy": {"type": "RollingUpdate", "rollingUpdate": {
                              "maxUnavailable": 0, "maxSurge": 1}},
                          "template": pod}
    hpa = k8s.resource("autoscaling/v2", "HorizontalPodAutoscaler", name, namespace, labels)
    hpa["spec"] = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": name},
                   "minReplicas": min_replicas, "maxReplicas": max_replicas,
                   "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                       "type": "Utilization", "averageUtilization": cpu_target}}}]}
    files = {"configmap.yaml": [k8s.config_map(f"{name}-config", namespace, labels, settings)],
             "deployment.yaml": [deployment],
             "service.yaml": [k8s.service(name, namespace, labels, PORT)],
             "hpa.yaml": [hpa],
             "pdb.yaml": [k8s.pdb(name, namespace, labels)]}
    if service_monitor:
        monitor = k8s.resource("monitoring.coreos.com/v1", "ServiceMonitor", name, namespace,
                               labels)
        monitor["spec"] = {"selector": {"matchLabels": selector},
                           "endpoints": [{"port": "http", "path": "/metrics",
                                          "interval": "30s"}]}
        files["servicemonitor.yaml"] = [monitor]
    return Manifests(name, files, tuple(secrets), source)


_S3_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def server_manifests(image: str, *, name: str = "forgeline-server",
                     namespace: str | None = None, replicas: int = 1, workers: int = 2,
                     resources: Resources | None = None, storage: str = "20Gi",
                     storage_class: str | None = None,
                     store_secret: str | None = None, artifacts: str | None = None,
                     s3_endpoint: str | None = None,
                     s3_region: str | None = None) -> Manifests:
    """The manifests of the team server over PostgreSQL; see the module docstring.

    Args:
        image: an image with Forgeline installed (``forgeline build`` makes one: its
            Forgeline comes with the PostgreSQL driver).
        name: the resources' name.
        namespace: written into every resource; None leaves it to ``kubectl -n``.
        replicas: pods; more than one shares the artifact volume, so it asks for
            ``ReadWriteMany`` (a storage class that offers it: NFS, CephFS, EFS...).
        workers: ``forgeline server --workers`` in each pod.
        resources: requests and limits.
        storage, storage_class: the artifact volume's size and class (None: the default).
        store_secret: the Secret holding the PostgreSQL URI (key ``uri``).
        artifacts: ``s3://bucket/prefix`` keeps the artifact bytes in object storage
            instead of a volume (no claim; any number of replicas, rolled one by one); the
            keys come from the Secret ``<name>-s3`` (``AWS_ACCESS_KEY_ID``,
            ``AWS_SECRET_ACCESS_KEY``), ``s3_endpoint`` and ``s3_region`` go in the
            ConfigMap (``AWS_ENDPOINT_URL``, ``AWS_REGION``) when given.

    Raises:
        InvalidInput: a bad name, image, count or object storage URI.
    """
    name = k8s.dns_name(name, "--name")
    image = k8s.image(image)
    if replicas < 1 or workers < 1:
        raise InvalidInput("Replicas and workers must be at least 1.")
    labels = k8s.labels(name, "team-server", __version__)
    store_secret = k8s.dns_name(store_secret or f"{name}-store", "the store Secret")
    s3 = artifacts is not None
    if s3:
        parse_s3_uri(artifacts)  # type: ignore[arg-type]
    shared = replicas > 1
    args = ["server", "--host", "0.0.0.0", "--port", str(SERVER_PORT), "--workers",
            str(workers), "--artifacts", artifacts if s3 else ARTIFACTS, "--auth"]
    health = "/api/forgeline/v1/health"
    env = [k8s.secret_env("FORGELINE_STORE_URI", store_secret, "uri")]
    s3_secret = f"{name}-s3"
    if s3:
        env += [k8s.secret_env(key, s3_secret, key) for key in _S3_KEYS]
    mounts = [("home", HOME), ("tmp", "/tmp")] + ([] if s3 else [("artifacts", ARTIFACTS)])
    container = k8s.container(
        "team-server", image, args, SERVER_PORT, env, f"{name}-config",
        resources or Resources(cpu_limit="4", memory_limit="4Gi"),
        {"startup": health, "readiness": health, "liveness": health}, mounts)
    volumes: list[dict[str, Any]] = [{"name": "home", "emptyDir": {}},
                                     {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]
    if not s3:
        volumes.append({"name": "artifacts", "persistentVolumeClaim": {
            "claimName": f"{name}-artifacts"}})
    pod = k8s.pod(labels, {}, container, grace_period(SERVER_GRACEFUL_TIMEOUT_S), volumes)
    deployment = k8s.resource("apps/v1", "Deployment", name, namespace, labels)
    # one writer of a ReadWriteOnce volume: the old pod lets go before the new one mounts
    strategy = ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0,
                                                            "maxSurge": 1}}
                if shared or s3 else {"type": "Recreate"})
    deployment["spec"] = {"replicas": replicas,
                          "selector": {"matchLabels": k8s.selector(labels)},
                          "strategy": strategy, "template": pod}
    pvc = k8s.resource("v1", "PersistentVolumeClaim", f"{name}-artifacts", namespace, labels)
    pvc["spec"] = {"accessModes": ["ReadWriteMany" if shared else "ReadWriteOnce"],
                   "resources": {"requests": {"storage": storage}}}
    if storage_class is not None:
        pvc["spec"]["storageClassName"] = storage_class
    config = {"FORGELINE_HOME": HOME,
              **({"AWS_ENDPOINT_URL": s3_endpoint} if s3 and s3_endpoint else {}),
              **({"AWS_REGION": s3_region} if s3 and s3_region else {})}
    files = {"configmap.yaml": [k8s.config_map(f"{name}-config", namespace, labels, config)],
             "deployment.yaml": [deployment],
             "service.yaml": [k8s.service(name, namespace, labels, SERVER_PORT)],
             "pdb.yaml": [k8s.pdb(name, namespace, labels)],
             **({} if s3 else {"pvc.yaml": [pvc]})}
    ns = k8s.ns_flag(namespace)
    secrets = (f"kubectl create secret generic {store_secret}{ns} --from-literal=uri="
               "'postgresql+psycopg://USER:PASSWORD@HOST:5432/forgeline'",
               *([f"kubectl create secret generic {s3_secret}{ns} "
                  + " ".join(f"--from-literal={key}=..." for key in _S3_KEYS)] if s3 else []))
    notes = (f"kubectl exec{ns} deploy/{name} -- forgeline server token create --role admin "
             "--name NAME",)
    return Manifests(name, files, secrets, f"the team server ({image})", notes)


def write_manifests(manifests: Manifests, directory: Path) -> list[Path]:
    """Write each file of ``manifests`` into ``directory``, all at once; return the paths.

    Raises:
        AlreadyExists: ``directory`` exists and holds something this module did not write.
    """
    header = f"# Written by forgeline deploy k8s for {manifests.source}.\n"
    if manifests.secrets:
        header += "# Create its Secrets first (no secret value is written here):\n" + "".join(
            f"#   {command}\n" for command in manifests.secrets)
    return write_folder({
        file: header + "---\n".join(yaml.safe_dump(d, sort_keys=False,
                                                   default_flow_style=False)
                                    for d in documents)
        for file, documents in manifests.files.items()}, directory)


def write_folder(files: Mapping[str, str], directory: Path) -> list[Path]:
    """Write ``files`` (relative path -> text) into ``directory`` at once; return the paths.

    The folder is written beside its place and renamed into it, and replaces a folder only
    when that one holds nothing but what this function wrote there before (listed in its
    :data:`MARKER` file): a file someone added beside them is never lost.

    Raises:
        AlreadyExists: ``directory`` exists and holds something this function did not write.
    """
    directory = Path(directory)
    if directory.exists():
        if not directory.is_dir():
            raise AlreadyExists(f"{directory} exists and is not a directory.")
        present = {p.name for p in directory.iterdir()}
        if present and MARKER not in present:
            raise AlreadyExists(f"{directory} is not empty.",
                                hint="Choose a new directory with -o, or empty it.")
        # it is replaced as a whole: only when it holds nothing but what was written here
        written = set((directory / MARKER).read_text(encoding="utf-8").split()) if (
            present) else set()
        folders = {parent.as_posix() for file in written
                   for parent in PurePosixPath(file).parents}
        others = sorted(rel for p in directory.rglob("*")
                        if (rel := p.relative_to(directory).as_posix()) not in (
                            written | folders | {MARKER}))
        if others:
            raise AlreadyExists(f"{directory} holds files this command did not write: "
                                f"{', '.join(others)}.",
                                hint="Write elsewhere with -o (a kustomize overlay can "
                                     "point at it), or move them out.")
    with atomic_path(directory, directory=True) as tmp:
        for file, text in files.items():
            (tmp / file).parent.mkdir(parents=True, exist_ok=True)
            (tmp / file).write_text(text, encoding="utf-8")
        (tmp / MARKER).write_text("".join(f"{file}\n" for file in files), encoding="utf-8")
    return [directory / file for file in files]
