"""The building blocks of :mod:`forgeline.serving.kubernetes`: Kubernetes objects as plain
dicts, with the recommended labels, the hardened pod, and names checked as Kubernetes
checks them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from forgeline.errors import InvalidInput
from forgeline.serving.docker import UID

__all__ = ["PRESTOP_S", "PROBES", "Resources", "config_map", "container", "dns_name",
           "image", "labels", "ns_flag", "pdb", "pod", "resource", "secret_env", "selector",
           "service", "store_uri"]

PRESTOP_S = 5  # endpoints are removed from Services within a few seconds of deletion
PROBES = {"startup": (2, 60), "readiness": (5, 3), "liveness": (10, 3)}  # period, failures
_QUANTITY = re.compile(r"\d+(\.\d+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?")
_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")  # a DNS-1035 label (Service names)


@dataclass(frozen=True, slots=True)
class Resources:
    """Container resources, in Kubernetes quantities (``500m``, ``512Mi``)."""

    cpu: str = "500m"
    memory: str = "512Mi"
    cpu_limit: str = "2"
    memory_limit: str = "2Gi"

    def __post_init__(self) -> None:
        for what, value in (("CPU request", self.cpu), ("memory request", self.memory),
                            ("CPU limit", self.cpu_limit), ("memory limit", self.memory_limit)):
            if not isinstance(value, str) or not _QUANTITY.fullmatch(value):
                raise InvalidInput(f"Invalid {what} {value!r}: expected a Kubernetes "
                                   "quantity.", hint="e.g. 500m or 2 (CPU), 512Mi or 4Gi.")

    def to_dict(self) -> dict[str, Any]:
        return {"requests": {"cpu": self.cpu, "memory": self.memory},
                "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit}}


def labels(name: str, component: str, version: str) -> dict[str, str]:
    """The Kubernetes recommended labels."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name,
            "app.kubernetes.io/version": label_value(version),
            "app.kubernetes.io/component": component, "app.kubernetes.io/part-of": "forgeline",
            "app.kubernetes.io/managed-by": "forgeline"}


def selector(labels: Mapping[str, str]) -> dict[str, str]:
    """What selects the pods: the labels that never change (a Deployment's selector is
    immutable, so not the version)."""
    return {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}


def resource(api_version: str, kind: str, name: str, namespace: str | None,
              labels: Mapping[str, str],
              annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = dns_name(namespace, "--namespace")
    metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


def container(name: str, image: str, args: list[str], port: int, env: list[dict[str, Any]],
               config_map: str, resources: Resources, probes: Mapping[str, str],
               mounts: list[tuple[str, str]]) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["forgeline"], "args": args,
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": config_map}}], "env": env,
        "resources": resources.to_dict()}
    for kind, path in probes.items():
        period, failures = PROBES[kind]
        container[f"{kind}Probe"] = {"httpGet": {"path": path, "port": "http"},
                                     "periodSeconds": period, "timeoutSeconds": 3,
                                     "failureThreshold": failures}
    container["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_S)]}}}
    container["securityContext"] = {
        "runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID,
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    container["volumeMounts"] = [{"name": v, "mountPath": p} for v, p in mounts]
    return container


def pod(labels: Mapping[str, str], annotations: Mapping[str, str], container: dict[str, Any],
         grace_s: int, volumes: list[dict[str, Any]]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"labels": dict(labels)}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"metadata": metadata, "spec": {
        "automountServiceAccountToken": False,  # the servers never call the Kubernetes API
        "terminationGracePeriodSeconds": grace_s,
        "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID,
                            "fsGroup": UID, "seccompProfile": {"type": "RuntimeDefault"}},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                       "whenUnsatisfiable": "ScheduleAnyway",
                                       "labelSelector": {"matchLabels": selector(labels)}}],
        "containers": [container], "volumes": volumes}}


def service(name: str, namespace: str | None, labels: Mapping[str, str],
             port: int) -> dict[str, Any]:
    service = resource("v1", "Service", name, namespace, labels)
    service["spec"] = {"type": "ClusterIP", "selector": selector(labels), "ports": [
        {"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}]}
    return service


def pdb(name: str, namespace: str | None, labels: Mapping[str, str]) -> dict[str, Any]:
    # maxUnavailable rather than minAvailable: a drain is never blocked at one replica
    pdb = resource("policy/v1", "PodDisruptionBudget", name, namespace, labels)
    pdb["spec"] = {"maxUnavailable": 1, "selector": {"matchLabels": selector(labels)}}
    return pdb


def config_map(name: str, namespace: str | None, labels: Mapping[str, str],
                data: Mapping[str, str]) -> dict[str, Any]:
    config_map = resource("v1", "ConfigMap", name, namespace, labels)
    config_map["data"] = dict(data)
    return config_map


def secret_env(variable: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def ns_flag(namespace: str | None) -> str:
    return f" -n {namespace}" if namespace else ""


def dns_name(value: str, what: str) -> str:
    """``value`` as a DNS-1035 label (Service names): lowercase, '-' for the rest."""
    name = re.sub(r"[^a-z0-9-]+", "-", value.strip().lower()).strip("-")
    if name and not name[0].isalpha():
        name = f"m-{name}"
    name = name[:63].rstrip("-")
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"Invalid {what} {value!r}: Kubernetes names are lowercase "
                           "letters, digits and '-', starting with a letter.")
    return name


def label_value(value: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", value)[:63].strip("-_.")
    return cleaned or "unknown"


def image(image: str) -> str:
    if not re.fullmatch(r"[a-z0-9][A-Za-z0-9._:/-]*(@sha256:[0-9a-f]{64})?", image.strip()):
        raise InvalidInput(f"Invalid image {image!r}.",
                           hint="e.g. registry.example.com/forgeline-fraud:3")
    return image.strip()


def store_uri(uri: str | None) -> str | None:
    if uri is None:
        return None
    if urlsplit(uri).password:
        raise InvalidInput("The store URI holds a password, and would be written into a "
                           "ConfigMap.", hint="Keep the password out of the URI (e.g. a "
                           "PGPASSWORD from a Secret), or serve from the team server.")
    return uri
