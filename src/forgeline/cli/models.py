"""``forgeline models ...``: registered models, their versions, aliases (and who moved
them when) and lineage."""

from __future__ import annotations

from collections.abc import Mapping

import typer

from forgeline.cli.output import (
    console,
    fmt_time,
    key_value_table,
    print_json,
    print_table,
    short_id,
    table,
)
from forgeline.cli.state import get_client
from forgeline.entities import AliasEvent

__all__ = ["app"]

app = typer.Typer(help="The model registry: models, versions, aliases, lineage.",
                  no_args_is_help=True)

JSON_HELP = "Print JSON for scripts instead of a table."


def _aliases(aliases: Mapping[str, int]) -> str:
    return ", ".join(f"@{alias} -> {version}" for alias, version in sorted(aliases.items()))


def _tags(tags: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))


@app.command("list")
def list_models(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List registered models: latest version, aliases, last update."""
    found = get_client(ctx).list_registered_models()
    if as_json:
        print_json(found)
        return
    t = table("name", "latest version", "aliases", "last updated")
    for model in found:
        latest = "-" if model.latest_version is None else str(model.latest_version)
        t.add_row(model.name, latest, _aliases(model.aliases),
                  fmt_time(model.last_updated_time))
    print_table(t, empty="No registered models yet.")


@app.command("show")
def show_model(
    ctx: typer.Context,
    ref: str = typer.Argument(..., metavar="REF",
                              help="name@alias, name/VERSION, or name (its latest version)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show a model version: its run, aliases, tags and lineage (runs, data, code)."""
    lineage = get_client(ctx).get_lineage(ref)
    mv = lineage.model_version
    if as_json:
        print_json({
            "model_version": mv, "run": lineage.run, "parent_runs": lineage.parent_runs,
            "datasets": [{"context": context, "dataset": dataset}
                         for dataset, context in lineage.datasets],
            "git_commit": lineage.git_commit, "git_dirty": lineage.git_dirty,
        })
        return
    rows = [("version", mv.ref), ("aliases", ", ".join(f"@{a}" for a in mv.aliases) or "-"),
            ("created", fmt_time(mv.creation_time)), ("artifact path", mv.artifact_path),
            ("run id", mv.run_id or "-")]
    if mv.description:
        rows.append(("description", mv.description))
    if mv.tags:
        rows.append(("tags", _tags(mv.tags)))
    out = console()
    out.print(key_value_table(rows, title=f"Model {mv.name} version {mv.version}"))

    lineage_rows = []
    if lineage.run is not None:
        run = lineage.run
        lineage_rows.append(("run", f"{run.run_id} ({run.name}, {run.status})"))
    for depth, parent in enumerate(lineage.parent_runs, start=1):
        label = "parent run" if depth == 1 else f"ancestor {depth}"
        lineage_rows.append((label, f"{parent.run_id} ({parent.name})"))
    if lineage.git_commit:
        dirty = " (uncommitted changes)" if lineage.git_dirty else ""
        lineage_rows.append(("git commit", lineage.git_commit + dirty))
    if lineage_rows:
        out.print(key_value_table(lineage_rows, title="Lineage"))
    if lineage.datasets:
        t = table("context", "name", "digest", "rows", "source", title="Datasets")
        for dataset, context in lineage.datasets:
            rows_n = "-" if dataset.num_rows is None else str(dataset.num_rows)
            t.add_row(context, dataset.name, dataset.digest[:12], rows_n, dataset.source)
        out.print(t)


@app.command("versions")
def list_versions(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="The registered model's name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List the versions of a model, newest first."""
    found = get_client(ctx).search_model_versions(name)
    if as_json:
        print_json(found)
        return
    t = table("version", "aliases", "run id", "created", "description", "tags",
              title=f"Model {name}")
    for mv in found:
        t.add_row(str(mv.version), ", ".join(f"@{a}" for a in mv.aliases),
                  short_id(mv.run_id), fmt_time(mv.creation_time), mv.description,
                  _tags(mv.tags))
    print_table(t, empty=f"Model {name} has no versions.")


@app.command("alias")
def alias(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="The registered model's name."),
    alias_name: str = typer.Argument(..., metavar="ALIAS", help="e.g. champion."),
    version: int | None = typer.Argument(None, metavar="VERSION",
                                         help="The version the alias points at."),
    delete: bool = typer.Option(False, "--delete", help="Remove the alias instead."),
) -> None:
    """Point NAME@ALIAS at VERSION (moving it if set), or remove it with --delete."""
    if delete == (version is not None):
        raise typer.BadParameter("give either a VERSION or --delete.", param_hint="VERSION")
    client = get_client(ctx)
    if version is None:
        before = client.delete_alias(name, alias_name)
        typer.echo(f"{name}@{alias_name} deleted (was version {before})")
        return
    before = client.set_alias(name, alias_name, version)
    if before is None:
        change = "new"
    elif before == version:
        change = "unchanged"
    else:
        change = f"was {before}"
    typer.echo(f"{name}@{alias_name} -> version {version} ({change})")


def _change(event: AliasEvent) -> str:
    if event.version is None:
        return f"deleted (was {event.previous_version})"
    was = "new" if event.previous_version is None else f"was {event.previous_version}"
    return f"-> {event.version} ({was})"


@app.command("history")
def alias_history(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="The registered model's name."),
    alias_name: str | None = typer.Option(None, "--alias", "-a", metavar="ALIAS",
                                          help="Only this alias (default: every alias)."),
    max_results: int = typer.Option(50, "--max", metavar="N", min=1,
                                    help="Show at most the newest N changes."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show who pointed the aliases of NAME where, and when, newest first."""
    from rich.markup import escape  # an actor's name is the client's to choose

    found = get_client(ctx).get_alias_history(name, alias_name, max_results)
    if as_json:
        print_json(found)
        return
    what = f"{name}@{alias_name}" if alias_name else name
    t = table("time", "alias", "change", "by", title=f"Alias history of {what}")
    for event in found:
        t.add_row(fmt_time(event.time), f"@{event.alias}", _change(event),
                  escape(event.actor or "-"))
    print_table(t, empty=f"No alias changes of {what} recorded.")
