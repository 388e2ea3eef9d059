"""``forgeline runs ...``: list, show and compare runs."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer

from forgeline.cli.output import (
    console,
    fmt_time,
    fmt_value,
    key_value_table,
    print_json,
    print_table,
    short_id,
    status_text,
    table,
)
from forgeline.cli.state import get_client
from forgeline.entities import GIT_COMMIT, GIT_DIRTY, SYSTEM_TAG_PREFIX
from forgeline.tracking.context import COMMAND
from forgeline.util.files import format_bytes
from forgeline.util.time import run_duration

if TYPE_CHECKING:
    from forgeline.entities import Run
    from forgeline.tracking.client import Client

__all__ = ["app"]

app = typer.Typer(help="Runs: list, inspect and compare them.", no_args_is_help=True)

JSON_HELP = "Print JSON for scripts instead of a table."
MAX_METRIC_COLUMNS = 6


def _experiment_names(client: Client) -> dict[str, str]:
    return {e.experiment_id: e.name for e in client.list_experiments()}


def _metric_columns(found: Sequence[Run]) -> list[str]:
    """Up to MAX_METRIC_COLUMNS metric keys, the most common first (ties by name)."""
    counts = Counter(key for run in found for key in run.metrics)
    ranked = sorted(counts, key=lambda key: (-counts[key], key))
    return ranked[:MAX_METRIC_COLUMNS]


@app.command("list")
def list_runs(
    ctx: typer.Context,
    experiment: list[str] | None = typer.Option(
        None, "--experiment", "-e", metavar="NAME_OR_ID",
        help="Only runs of this experiment (repeatable; default: every experiment)."),
    filter_expr: str | None = typer.Option(
        None, "--filter", "-f", metavar="EXPR",
        help="Search expression, e.g. \"metrics.auc > 0.9 and params.depth = '6'\"."),
    order_by: list[str] | None = typer.Option(
        None, "--order-by", "-o", metavar="CLAUSE",
        help="Sort key with optional ASC/DESC, e.g. 'metrics.auc DESC' (repeatable; "
             "default: newest first)."),
    max_results: int = typer.Option(50, "--max", metavar="N", help="Show at most N runs."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List runs, newest first; runs whose process died show as KILLED."""
    client = get_client(ctx)
    client.mark_stale_runs()
    found = client.search_runs(experiment or None, filter_expr, order_by or None, max_results)
    if as_json:
        print_json(list(found))
        return
    names = _experiment_names(client)
    keys = _metric_columns(found)
    t = table("run id", "name", "experiment", "status", "start", "duration", *keys)
    for column in t.columns[6:]:
        column.justify = "right"
    for run in found:
        t.add_row(short_id(run.run_id), run.name, names.get(run.experiment_id,
                                                            run.experiment_id),
                  status_text(run.status), fmt_time(run.start_time),
                  run_duration(run.start_time, run.end_time),
                  *(fmt_value(run.metrics.get(key)) for key in keys))
    print_table(t, empty="No runs match.")
    if found.token is not None:
        typer.echo(f"Showing the first {len(found)} runs; more match (use --max).", err=True)


def _info_rows(run: Run, experiment: str) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("run id", run.run_id), ("name", run.name),
        ("experiment", f"{experiment} ({run.experiment_id})"),
        ("status", status_text(run.status)), ("start", fmt_time(run.start_time)),
        ("end", fmt_time(run.end_time)),
        ("duration", run_duration(run.start_time, run.end_time)),
    ]
    if run.parent_run_id:
        rows.append(("parent run", run.parent_run_id))
    if GIT_COMMIT in run.tags:
        dirty = " (uncommitted changes)" if run.tags.get(GIT_DIRTY) == "true" else ""
        rows.append(("git commit", run.tags[GIT_COMMIT] + dirty))
    if run.tags.get(COMMAND):
        rows.append(("command", run.tags[COMMAND]))
    # the lineage of data labelled by `forgeline label` (a system tag, shown by default)
    if run.tags.get("forgeline.labels.run"):
        rows.append(("labels from run", run.tags["forgeline.labels.run"]))
    if run.tags.get("forgeline.labels.sources"):
        rows.append(("label sources", _sources(run.tags["forgeline.labels.sources"])))
    if run.tags.get("forgeline.labels.llm"):
        rows.append(("labelling LLM", run.tags["forgeline.labels.llm"]))
    return rows


def _sources(tag: str) -> str:
    """``{"lf_a": "<sha256>", ...}`` as ``lf_a 0f0f0f0f0f0f, ...`` (the tag has them whole)."""
    try:
        versions = json.loads(tag)
        return ", ".join(f"{name} {str(version)[:12]}" for name, version in versions.items())
    except (ValueError, AttributeError):
        return tag


@app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: str = typer.Argument(
        ..., metavar="RUN_ID", help="The run id, or a unique prefix (8 characters as listed)."),
    all_tags: bool = typer.Option(False, "--all-tags",
                                  help="Also show the forgeline.* system tags."),
    as_json: bool = typer.Option(False, "--json",
                                 help=JSON_HELP + " JSON always includes every tag."),
) -> None:
    """Show one run: info, params, latest metrics, tags, artifacts and datasets."""
    client = get_client(ctx)
    client.mark_stale_runs()
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.experiment_id)
    artifacts = client.list_artifacts(run.run_id)
    datasets = client.get_run_datasets(run.run_id)
    if as_json:
        print_json({"run": run, "experiment": experiment, "artifacts": artifacts,
                    "datasets": [{"context": context, "dataset": dataset}
                                 for dataset, context in datasets]})
        return
    out = console()
    out.print(key_value_table(_info_rows(run, experiment.name), title=f"Run {run.name}"))
    if run.params:
        out.print(key_value_table(sorted(run.params.items()), title="Params"))
    if run.metrics:
        out.print(key_value_table([(k, fmt_value(v)) for k, v in sorted(run.metrics.items())],
                                  title="Metrics (latest)"))
    tags = sorted((k, v) for k, v in run.tags.items()
                  if all_tags or not k.startswith(SYSTEM_TAG_PREFIX))
    if tags:
        out.print(key_value_table(tags, title="Tags"))
    if artifacts:
        t = table("path", "size", "sha256", title="Artifacts")
        for artifact in artifacts:
            t.add_row(artifact.path, format_bytes(artifact.size), artifact.digest[:12])
        out.print(t)
    if datasets:
        t = table("context", "name", "digest", "rows", "columns", "source", title="Datasets")
        for dataset, context in datasets:
            t.add_row(context, dataset.name, dataset.digest[:12], fmt_value(dataset.num_rows),
                      fmt_value(dataset.num_columns), dataset.source)
        out.print(t)


def _same(values: Sequence[Any]) -> bool:
    """True when every value is equal; NaN counts as equal to NaN."""
    def norm(v: Any) -> Any:
        return "NaN" if isinstance(v, float) and math.isnan(v) else v
    return len({norm(v) for v in values}) <= 1


@app.command("compare")
def compare_runs(
    ctx: typer.Context,
    run_ids: list[str] = typer.Argument(..., metavar="RUN_ID",
                                        help="Two or more run ids or unique prefixes."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Compare runs side by side: one column per run; rows that differ are highlighted."""
    if len(run_ids) < 2:
        raise typer.BadParameter("give at least two run ids to compare.",
                                 param_hint="RUN_ID")
    client = get_client(ctx)
    client.mark_stale_runs()
    found = [client.get_run(run_id) for run_id in run_ids]
    params = {k: [r.params.get(k) for r in found]
              for k in sorted({k for r in found for k in r.params})}
    metrics = {k: [r.metrics.get(k) for r in found]
               for k in sorted({k for r in found for k in r.metrics})}
    if as_json:
        print_json({
            "runs": found, "params": params, "metrics": metrics,
            "differing": {"params": [k for k, v in params.items() if not _same(v)],
                          "metrics": [k for k, v in metrics.items() if not _same(v)]},
        })
        return
    names = _experiment_names(client)
    t = table("", *(f"{short_id(r.run_id)}\n{r.name}" for r in found))
    t.columns[0].style = "bold"
    t.add_row("experiment", *(names.get(r.experiment_id, r.experiment_id) for r in found))
    t.add_row("status", *(status_text(r.status) for r in found))
    t.add_row("duration", *(run_duration(r.start_time, r.end_time) for r in found),
              end_section=True)
    for prefix, rows in (("params", params), ("metrics", metrics)):
        for key, values in rows.items():
            differs = not _same(values)
            t.add_row(f"{'≠ ' if differs else ''}{prefix}.{key}",
                      *(fmt_value(v) for v in values), style="yellow" if differs else None)
        if rows:
            t.add_section()
    console().print(t)
