"""``forgeline predictions``: the prediction log's upkeep (``purge``: retention)."""

from __future__ import annotations

import typer

from forgeline.cli.output import console, print_table, table
from forgeline.cli.state import get_client
from forgeline.util.time import parse_duration

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True,
                  help="The prediction log: remove what is older than a retention period.")


@app.command("purge")
def purge_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., metavar="MODEL", help="The model's name."),
    older_than: str = typer.Option(..., "--older-than", metavar="AGE",
                                   help="Remove predictions older than this, e.g. 90d."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="List what would be removed; remove nothing."),
) -> None:
    """Remove a model's logged predictions older than AGE, and the labels joined to them.

    Exact to the row: a log part whose predictions are all older is deleted, one that
    straddles the cutoff is rewritten (atomically) with only its newer rows. A label goes
    when no prediction of its request is left.
    """
    from forgeline.store.predictions import purge_predictions

    seconds = parse_duration(older_than, "--older-than")
    client = get_client(ctx)
    removed = purge_predictions(client.settings, model, seconds, dry_run=dry_run)
    home = client.settings.home.absolute()
    verb = "would remove" if dry_run else "removed"
    t = table("kind", "file", "rows", "action", "newest prediction",
              title=f"{model}: {verb} (older than {older_than})")
    for item in removed:
        path = item.path.relative_to(home) if item.path.is_relative_to(home) else item.path
        t.add_row(item.kind, str(path), str(item.rows),
                  f"would be {item.action}" if dry_run else item.action,
                  item.newest.isoformat(timespec="seconds") if item.newest else "")
    print_table(t, empty=f"Nothing in the log of {model} is older than {older_than}.")
    parts = sum(i.kind == "predictions" for i in removed)
    rows = sum(i.rows for i in removed if i.kind == "predictions")
    labels = sum(i.rows for i in removed if i.kind == "labels")
    if removed:
        console().print(f"{verb} {parts} parts ({rows} predictions) and {labels} labels")
