"""``forgeline experiments ...``: the experiments of the store."""

from __future__ import annotations

import typer

from forgeline.cli.output import fmt_time, print_json, print_table, table
from forgeline.cli.state import get_client

__all__ = ["app"]

app = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)

JSON_HELP = "Print JSON for scripts instead of a table."


@app.command("list")
def list_experiments(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List every experiment."""
    found = get_client(ctx).list_experiments()
    if as_json:
        print_json(found)
        return
    t = table("id", "name", "created", "tags")
    for exp in found:
        tags = ", ".join(f"{k}={v}" for k, v in sorted(exp.tags.items()))
        t.add_row(exp.experiment_id, exp.name, fmt_time(exp.creation_time), tags)
    print_table(t, empty="No experiments yet.")
