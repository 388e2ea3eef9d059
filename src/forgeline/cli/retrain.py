"""``forgeline feedback``, ``forgeline retrain`` and ``forgeline loop``."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from forgeline.cli.output import console, fmt_value, key_value_table
from forgeline.cli.state import get_client
from forgeline.util.time import parse_duration

__all__ = ["register"]



def feedback_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., metavar="MODEL", help="The registered model's name."),
    labels: Path = typer.Argument(..., metavar="FILE", help="CSV or Parquet of labels."),
    id_column: str = typer.Option("request_id", "--id", help="The request id column."),
    label_column: str = typer.Option(..., "--label", help="The true label column."),
) -> None:
    """Attach ground-truth labels to logged predictions by request id."""
    from forgeline.data.io import load_table
    from forgeline.store.predictions import record_feedback

    client = get_client(ctx)
    stats = record_feedback(client.settings, model, load_table(labels), id_column=id_column,
                            label_column=label_column)
    typer.echo(f"stored {stats.matched} labels for {model}"
               + (f"; {stats.message}" if stats.message else ""))


def retrain_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., metavar="MODEL", help="The registered model's name."),
    overrides: list[str] | None = typer.Option(None, "--set", metavar="KEY=VALUE",
                                               help="Override a field of the spec."),
    force: bool = typer.Option(False, "--force", help="Retrain even if no trigger fired."),
) -> None:
    """One champion/challenger cycle: retrain, compare on recent labels, promote or keep."""
    from forgeline.cli.progress import RichProgress
    from forgeline.workflows.retrain import retrain

    with RichProgress() as progress:
        decision = retrain(model, tuple(overrides or ()), force=force, client=get_client(ctx),
                           progress=progress)
    rows = [("decision", decision.action), ("why", decision.reason),
            ("champion", f"{model}/{decision.champion}"),
            ("challenger", f"{model}/{decision.challenger}" if decision.challenger else "-"),
            (f"champion {decision.metric or ''}", fmt_value(decision.champion_score)),
            (f"challenger {decision.metric or ''}", fmt_value(decision.challenger_score)),
            ("triggers fired", ", ".join(decision.triggers_fired) or "-"),
            ("retrain run", decision.run_id)]
    console().print(key_value_table(rows, title="Retraining cycle"))


def loop_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., metavar="MODEL"),
    every: str | None = typer.Option(None, "--every",
                                     help="How often, e.g. 30m, 1h, 1d (default: the spec's "
                                          "retrain.every)."),
    cycles: int | None = typer.Option(None, "--cycles", help="Stop after this many cycles."),
) -> None:
    """Run the retraining cycle on a schedule until stopped (Ctrl-C)."""
    from forgeline.cli.progress import RichProgress
    from forgeline.workflows.retrain import RetrainDecision, retrain_every

    # 0s would retrain without a pause: refused by parse_duration
    seconds = None if every is None else parse_duration(every, "--every")

    def show(decision: RetrainDecision) -> None:
        typer.echo(f"{time.strftime('%H:%M:%S')} {decision.action}: {decision.reason}")

    with RichProgress() as progress:
        retrain_every(model, seconds, cycles=cycles, client=get_client(ctx), progress=progress,
                      on_decision=show)


def register(app: typer.Typer) -> None:
    app.command("feedback")(feedback_command)
    app.command("retrain")(retrain_command)
    app.command("loop")(loop_command)
