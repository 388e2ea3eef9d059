"""``forgeline deploy k8s MODEL -o DIR``: Kubernetes manifests for a model's server;
``forgeline deploy k8s --server -o DIR``: for the team server over PostgreSQL.

What the manifests hold, and why plain YAML rather than a Helm chart, is in
:mod:`forgeline.serving.kubernetes`; this module names the options and prints what to
run next (the Secrets to create, then ``kubectl apply``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from forgeline.cli.output import console, key_value_table, print_json
from forgeline.cli.state import get_client
from forgeline.errors import InvalidInput
from forgeline.serving.config import LIMITS, Listener

__all__ = ["app"]

app = typer.Typer(help="Deployment manifests (Kubernetes).", no_args_is_help=True)


@app.command("k8s")
def k8s_command(
    ctx: typer.Context,
    model: str | None = typer.Argument(
        None, metavar="MODEL", help="name@alias, name/N, name (latest) or a package folder; "
                                      "or --server instead."),
    server: bool = typer.Option(False, "--server",
                                help="The team server (forgeline server) over PostgreSQL, "
                                     "instead of a model."),
    output: Path | None = typer.Option(
        None, "-o", "--output", metavar="DIR",
        help="Where to write the manifests (default: ./deploy/<name>); must be new, empty, "
             "or written by this command before (replaced)."),
    image: str | None = typer.Option(
        None, "--image", help="The image (a model's default: forgeline-<name>:<version>, as "
                              "forgeline build tags it; required with --server)."),
    name: str | None = typer.Option(None, "--name", help="The resources' name (default: the "
                                                         "model's, or forgeline-server)."),
    namespace: str | None = typer.Option(None, "--namespace", "-n",
                                         help="Written into every resource (default: none, "
                                              "kubectl's current namespace)."),
    min_replicas: int = typer.Option(2, "--min-replicas", min=1,
                                     help="The autoscaler's lower bound (a model)."),
    max_replicas: int = typer.Option(10, "--max-replicas", min=1,
                                     help="The autoscaler's upper bound (a model)."),
    cpu_target: int = typer.Option(70, "--cpu-target", min=1, max=100, metavar="PERCENT",
                                   help="Average CPU use, in percent of the request, the "
                                        "autoscaler aims at (a model)."),
    replicas: int = typer.Option(1, "--replicas", min=1,
                                 help="Pods of the team server (more than one needs a "
                                      "ReadWriteMany storage class for the artifacts)."),
    workers: int | None = typer.Option(None, "--workers", min=1,
                                       help="Worker processes per pod (default: 1 for a "
                                            "model, 2 for the team server)."),
    graceful_timeout: float = typer.Option(
        Listener().graceful_timeout_s, "--graceful-timeout", metavar="SECONDS",
        min=LIMITS["listener.graceful_timeout_s"][0],
        help="forgeline serve --graceful-timeout; the pods' grace period covers it."),
    cpu: str = typer.Option("500m", "--cpu", help="CPU request."),
    memory: str = typer.Option("512Mi", "--memory", help="Memory request."),
    cpu_limit: str | None = typer.Option(None, "--cpu-limit",
                                         help="CPU limit (default: 2 for a model, 4 for the "
                                              "team server)."),
    memory_limit: str | None = typer.Option(None, "--memory-limit",
                                            help="Memory limit (default: 2Gi for a model, 4Gi "
                                                 "for the team server)."),
    store_uri: str | None = typer.Option(
        None, "--store-uri", metavar="URI",
        help="The model server's store (FORGELINE_STORE_URI in its ConfigMap, e.g. the team "
             "server's http://forgeline-server:5000; default: SQLite in the pod)."),
    storage: str = typer.Option("20Gi", "--storage",
                                help="Size of the team server's artifact volume."),
    storage_class: str | None = typer.Option(None, "--storage-class",
                                             help="Storage class of the artifact volume."),
    service_monitor: bool = typer.Option(
        True, "--service-monitor/--no-service-monitor",
        help="Write servicemonitor.yaml (needs the Prometheus Operator's CRDs)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Write Kubernetes manifests serving MODEL (or, with --server, the team server):
    `kubectl apply -f DIR` once its Secrets exist."""
    from forgeline.serving.kubernetes import (
        Resources,
        model_manifests,
        server_manifests,
        write_manifests,
    )

    if server == (model is not None):
        raise InvalidInput("Give either a MODEL or --server.",
                           hint="e.g. forgeline deploy k8s fraud@champion -o deploy/, or "
                                "forgeline deploy k8s --server --image IMAGE -o deploy/server.")
    limits = {"cpu_limit": cpu_limit, "memory_limit": memory_limit}
    if server:
        if image is None:
            raise InvalidInput("--server needs --image: an image with Forgeline installed.",
                               hint="e.g. one forgeline build made: --image "
                                    "registry.example.com/forgeline-fraud:3.")
        resources = Resources(cpu, memory, cpu_limit or "4", memory_limit or "4Gi")
        manifests = server_manifests(image, name=name or "forgeline-server",
                                     namespace=namespace, replicas=replicas,
                                     workers=workers or 2, resources=resources,
                                     storage=storage, storage_class=storage_class)
    else:
        assert model is not None
        reference = Path(model) if Path(model).is_dir() else model
        client = None if isinstance(reference, Path) else get_client(ctx)
        resources = Resources(cpu, memory, **{k: v for k, v in limits.items() if v})
        manifests = model_manifests(reference, client=client, name=name, image=image,
                                    namespace=namespace, min_replicas=min_replicas,
                                    max_replicas=max_replicas, cpu_target=cpu_target,
                                    workers=workers or 1, graceful_timeout_s=graceful_timeout,
                                    resources=resources, store_uri=store_uri,
                                    service_monitor=service_monitor)
    directory = output if output is not None else Path("deploy") / manifests.name
    files = write_manifests(manifests, directory)
    apply = f"kubectl apply -f {directory}"
    if as_json:
        print_json({"directory": directory.absolute(), "files": [f.name for f in files],
                    "secrets": list(manifests.secrets), "apply": apply,
                    "then": list(manifests.notes)})
        return
    console().print(key_value_table([("for", manifests.source),
                                     ("directory", str(directory)),
                                     ("files", ", ".join(f.name for f in files))],
                                    title="Kubernetes manifests"))
    typer.echo("Create the Secrets (once), then apply:")
    for command in (*manifests.secrets, apply, *manifests.notes):
        typer.echo(f"  {command}")
