"""``forgeline demo``: the whole lifecycle on the fraud example (see
:mod:`forgeline.workflows.demo`): each step as it goes, then a table of the story."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from forgeline.cli.output import console, print_json
from forgeline.cli.state import State

if TYPE_CHECKING:
    from rich.console import Console

    from forgeline.cli.progress import RichProgress
    from forgeline.workflows.demo import DemoConfig, DemoResult

__all__ = ["register", "show_demo"]


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
    from forgeline.monitoring.rules import parse_rule
    from forgeline.workflows.demo import DemoConfig

    parse_rule(rule)  # a bad rule fails now, not after training
    state = ctx.find_object(State)  # the store only when asked for with --store
    config = DemoConfig(home=home, store_uri=state.store if state else None,
                        train_rows=rows, requests=requests, trials=trials,
                        challenger_trials=challenger_trials, gate_rows=gate_rows,
                        min_labelled=min(200, max(10, gate_rows // 5)), rule=rule, seed=seed)
    out = console()
    out.stderr = as_json  # the JSON document alone on stdout
    result = show_demo(config, out)
    if as_json:
        print_json(result)


def show_demo(config: DemoConfig, out: Console) -> DemoResult:
    """Run the demo, drawing each step on ``out`` as it goes and the story's table at the
    end (what ``forgeline demo`` shows)."""
    from forgeline.workflows.demo import run_demo

    with _story_progress(out) as progress:
        result = run_demo(config, progress)
    _summary(out, result)
    return result


def _story_progress(out: Console) -> RichProgress:
    """The demo's reporter: a rule per step, a tick or a cross when it ends."""
    from rich.markup import escape

    from forgeline.cli.progress import RichProgress
    from forgeline.workflows.demo import DemoProgress, Step

    class StoryProgress(RichProgress, DemoProgress):
        def step(self, number: int, name: str) -> None:
            self.console.rule(f"[bold]{number}. {escape(name)}", align="left")

        def step_done(self, step: Step) -> None:
            where = f"\n  [dim]{escape(str(step.path))}[/]" if step.path else ""
            self.console.print(f"[green]✓[/] {escape(step.result)}{where}", highlight=False)

        def step_failed(self, name: str) -> None:
            self.console.print(f"[red]✗[/] the {name.lower()} step failed")

    return StoryProgress(out)


def _summary(out: Console, result: DemoResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    from forgeline.workflows.demo import MODEL

    home = result.home
    table = Table(title="The story", title_justify="left", title_style="bold")
    table.add_column("step", style="bold")
    table.add_column("outcome", overflow="fold")
    table.add_column("s", justify="right")
    table.add_column(f"file (in {home})", overflow="fold", style="dim")
    for step in result.steps:
        where = (step.path.relative_to(home) if home and step.path
                 and step.path.is_relative_to(home) else step.path)
        table.add_row(step.name, step.short, f"{step.seconds:.0f}", str(where or ""))
    table.add_row("Total", "", f"{result.seconds:.0f}", "")
    out.print(table)
    out.print(f"[bold]{escape(result.verdict)}[/]")
    out.print(f"Explore: forgeline --store {result.store_uri} models versions {MODEL}",
              highlight=False)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
