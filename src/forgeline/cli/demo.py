"""``forgeline demo``: the whole lifecycle on the fraud example (see :mod:`forgeline.demo`)."""

from __future__ import annotations

from pathlib import Path

import typer

from forgeline.cli.output import console, print_json
from forgeline.cli.state import State

__all__ = ["register"]


def demo_command(
    ctx: typer.Context,
    home: Path = typer.Option(Path(".forgeline/demo"), "--home", metavar="DIR",
                              help="Folder for the demo's store, data, logs and reports; "
                                   "what an earlier demo wrote there is cleared first. The "
                                   "store is a SQLite file in it unless --store is given."),
    rows: int = typer.Option(20_000, "--rows", min=500, help="Transactions to train on."),
    requests: int = typer.Option(3_000, "--requests", min=100,
                                 help="Production requests sent to the server."),
    trials: int = typer.Option(8, "--trials", min=1, help="Tuning trials of the champion."),
    challenger_trials: int = typer.Option(4, "--challenger-trials", min=1,
                                          help="Tuning trials of the challenger."),
    gate_rows: int = typer.Option(1_000, "--gate-rows", min=20,
                                  help="Newest labelled rows the gate compares on."),
    rule: str = typer.Option("dataset_drift > 0.3", "--rule",
                             help="The monitoring rule that starts retraining."),
    seed: int = typer.Option(7, "--seed", help="The synthetic world's seed."),
    as_json: bool = typer.Option(False, "--json", help="Also print the outcome as JSON."),
) -> None:
    """Generate, train, serve, drift, monitor, label, retrain, promote: the whole story.

    A model is trained on synthetic card transactions and served by `forgeline serve
    --watch`; traffic whose fraud pattern drifts is sent to it; the monitor fires, the
    true labels arrive, a challenger is retrained and, only if it beats the champion on
    the newest labelled traffic, promoted; the server switches to it without a restart.
    """
    from forgeline.demo import DemoConfig, run_demo
    from forgeline.monitoring.rules import parse_rule

    parse_rule(rule)  # a bad rule fails now, not after training
    state = ctx.find_object(State)  # the store only when asked for with --store
    config = DemoConfig(home=home, store_uri=state.store if state else None,
                        train_rows=rows, requests=requests, trials=trials,
                        challenger_trials=challenger_trials, gate_rows=gate_rows,
                        min_labelled=min(200, max(10, gate_rows // 5)), rule=rule, seed=seed)
    out = console()
    out.stderr = as_json  # the JSON document alone on stdout
    result = run_demo(config, out)
    if as_json:
        print_json(result)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
