"""``forgeline train SPEC`` and ``forgeline report RUN_ID``."""

from __future__ import annotations

import typer

from forgeline.cli.output import console, fmt_value, key_value_table, print_json
from forgeline.cli.state import get_client

__all__ = ["register"]


def train_command(
    ctx: typer.Context,
    spec: str = typer.Argument(..., metavar="SPEC", help="The training spec (YAML)."),
    overrides: list[str] | None = typer.Option(
        None, "--set", metavar="KEY=VALUE",
        help="Override a spec field, e.g. --set tuning.trials=5 (repeatable)."),
    engine: str | None = typer.Option(
        None, "--engine", metavar="ENGINE",
        help="Where tuning trials run: local or ray (the spec's tuning.engine by default)."),
    ray_address: str | None = typer.Option(
        None, "--ray-address", metavar="ADDRESS",
        help="The Ray cluster to join (host:6379 or ray://host:10001); implies --engine ray."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train, evaluate and register a model from a data file and a spec."""
    from forgeline.training.spec import load_spec

    engine = engine or ("ray" if ray_address else None)
    flags = [f"tuning.{key}={value}" for key, value in
             (("engine", engine), ("ray_address", ray_address)) if value]
    # a typo answers before the imports
    checked = load_spec(spec, (*(overrides or ()), *flags))
    from forgeline.cli.progress import RichProgress
    from forgeline.util.time import process_started_at
    from forgeline.workflows.train import train  # scikit-learn and Optuna load only here

    with RichProgress() as progress:  # the budget counts from the process's start
        result = train(checked, client=get_client(ctx), progress=progress,
                       started_at=process_started_at())
    if as_json:
        print_json(result)
        return
    version = result.model_version
    rows = [("run id", result.run_id), ("task", result.task.value), ("model", result.model),
            ("chosen because", str(result.selection.get("reason", ""))),
            (f"cv {result.metric}", fmt_value(result.cv_score)),
            (f"test {result.metric}", fmt_value(result.score)),
            *([(f"test {result.metric}, newest 25%", fmt_value(result.recent_score))]
              if result.recent_score is not None else []),
            *([("fairness limits", result.fairness)] if result.fairness else []),
            ("registered", (f"{version.ref}" + "".join(f" @{a}" for a in version.aliases))
             if version else "no"),
            ("why", result.registered_reason), ("report", str(result.report))]
    console().print(key_value_table(rows, title="Training finished"))


def report_command(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., metavar="RUN_ID", help="A training run id or prefix."),
) -> None:
    """Print the path of a training run's HTML report (copied out of the artifact store)."""
    from forgeline.training.layout import report_path

    typer.echo(str(report_path(get_client(ctx), run_id)))


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("report")(report_command)
