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

app = typer.Typer(help="Deployment manifests (Kubernetes) and monitoring files (Prometheus, "
                  "Grafana).", no_args_is_help=True)


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
    artifacts: str | None = typer.Option(
        None, "--artifacts", metavar="s3://BUCKET/PREFIX",
        help="The team server's artifacts in object storage instead of a volume (its keys "
             "from the Secret <name>-s3)."),
    s3_endpoint: str | None = typer.Option(None, "--s3-endpoint", metavar="URL",
                                           help="AWS_ENDPOINT_URL for --artifacts (MinIO, "
                                                "Ceph...)."),
    s3_region: str | None = typer.Option(None, "--s3-region", help="AWS_REGION for "
                                                                   "--artifacts."),
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
    if not server and (artifacts or s3_endpoint or s3_region):
        raise InvalidInput("--artifacts, --s3-endpoint and --s3-region set up the team "
                           "server's object storage: give them with --server.",
                           hint="A model's pods read their package from the image.")
    if server:
        if image is None:
            raise InvalidInput("--server needs --image: an image with Forgeline installed.",
                               hint="e.g. one forgeline build made: --image "
                                    "registry.example.com/forgeline-fraud:3.")
        resources = Resources(cpu, memory, cpu_limit or "4", memory_limit or "4Gi")
        manifests = server_manifests(image, name=name or "forgeline-server",
                                     namespace=namespace, replicas=replicas,
                                     workers=workers or 2, resources=resources,
                                     storage=storage, storage_class=storage_class,
                                     artifacts=artifacts, s3_endpoint=s3_endpoint,
                                     s3_region=s3_region)
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


def _floors(texts: list[str] | None) -> dict[str, float]:
    floors: dict[str, float] = {}
    for text in texts or ():
        metric, sep, value = text.partition("=")
        try:
            floors[metric.strip().removeprefix("estimated_")] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise InvalidInput(f"Invalid --floor {text!r}: expected METRIC=VALUE.",
                               hint="e.g. --floor roc_auc=0.8.")
    return floors


@app.command("prometheus")
def prometheus_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., metavar="MODEL",
                                help="name@alias, name/N, name (latest) or a package folder."),
    output: Path | None = typer.Option(
        None, "-o", "--output", metavar="DIR",
        help="Where to write the files (default: ./monitoring/<name>); must be new, empty, "
             "or written by this command before (replaced)."),
    job: str | None = typer.Option(None, "--job",
                                   help="The scrape job of the model's servers (default: "
                                        "the model's name, as deploy k8s names its Service)."),
    error_rate: float = typer.Option(0.05, "--error-rate", metavar="SHARE",
                                     help="Alert when more than this share of requests "
                                          "answer 5xx."),
    p99_latency: float = typer.Option(0.5, "--p99-latency", metavar="SECONDS",
                                      help="Alert when the p99 request latency is above."),
    drift_share: float | None = typer.Option(
        None, "--drift-share", metavar="SHARE",
        help="Alert when at least this share of features drifted (default: the training "
             "spec's retrain trigger 'dataset_drift > X', else the monitor's 0.5)."),
    floors: list[str] | None = typer.Option(
        None, "--floor", metavar="METRIC=VALUE",
        help="Alert when the estimated METRIC falls below VALUE (repeatable; default: the "
             "training spec's 'estimated_METRIC < X' triggers)."),
    window: str = typer.Option("5m", "--window", metavar="DURATION",
                               help="The range of rate() and increase() (Prometheus syntax)."),
    prometheus_url: str = typer.Option("http://localhost:9090", "--prometheus-url",
                                       help="Grafana's data source URL."),
    dashboards_path: str = typer.Option("/var/lib/grafana/dashboards/forgeline",
                                        "--dashboards-path",
                                        help="Where Grafana reads dashboard.json from."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Write Prometheus alert rules and a Grafana dashboard for MODEL's server."""
    from forgeline.packaging.predictor import load_model
    from forgeline.serving.observability import (
        Thresholds,
        observability_files,
        write_observability,
    )
    from forgeline.workflows.observability import monitoring_thresholds, thresholds_from_rules

    given = _floors(floors)
    reference = Path(model) if Path(model).is_dir() else model
    client = None if isinstance(reference, Path) else get_client(ctx)
    predictor = load_model(reference, client, lazy=True)  # an unknown model: nothing written
    spec = (monitoring_thresholds(client, predictor.model_version) if client is not None
            else thresholds_from_rules(()))
    thresholds = Thresholds(error_rate=error_rate, p99_latency_s=p99_latency,
                            drift_share=spec["drift_share"] if drift_share is None
                            else drift_share,
                            floors=given if floors else spec["floors"], window=window)
    made = observability_files(predictor, thresholds=thresholds, job=job,
                               prometheus_url=prometheus_url, dashboards_path=dashboards_path,
                               reference=model)
    directory = output if output is not None else Path("monitoring") / made.job
    files = write_observability(made, directory)
    if as_json:
        print_json({"directory": directory.absolute(),
                    "files": [f.relative_to(directory).as_posix() for f in files],
                    "job": made.job, "thresholds": {
                        "error_rate": thresholds.error_rate,
                        "p99_latency_s": thresholds.p99_latency_s,
                        "drift_share": thresholds.drift_share,
                        "floors": dict(thresholds.floors)}})
        return
    console().print(key_value_table([("for", made.source), ("job", made.job),
                                     ("directory", str(directory)),
                                     ("files", ", ".join(f.relative_to(directory).as_posix()
                                                         for f in files))],
                                    title="Prometheus alerts and Grafana dashboard"))
    typer.echo("Load them:")
    typer.echo(f"  Prometheus: rule_files: [{directory / 'alerts.yaml'}], then reload it")
    provisioning = directory / "provisioning"
    typer.echo("  Grafana: copy")
    typer.echo(f"    {provisioning / 'datasources.yaml'} to "
               "/etc/grafana/provisioning/datasources/")
    typer.echo(f"    {provisioning / 'dashboards.yaml'} to /etc/grafana/provisioning/dashboards/")
    typer.echo(f"    {directory / 'dashboard.json'} to {dashboards_path}/")
