"""``forgeline optimize REF``: the trade-off table of smaller and faster variants."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from forgeline.cli.output import console, key_value_table, print_json, table
from forgeline.cli.state import get_client

if TYPE_CHECKING:
    from forgeline.workflows.optimize_measure import Measurement

__all__ = ["register"]


def _table(rows: list[Measurement], metric: str, chosen: str | None) -> Any:
    t = table("candidate", "technique", f"test {metric}", "change", "p50 ms", "p99 ms",
              "rows/s (10k)", "size", "MB model / peak", "runtime", title="Candidates")
    for m in rows:
        mark = " *" if m.name == chosen else ""
        t.add_row(m.name + mark, m.technique, f"{m.score:.4f}",
                  "-" if m.name == "teacher" else f"{m.change:+.4f}",
                  f"{m.latency_p50_ms:.3f}", f"{m.latency_p99_ms:.3f}",
                  f"{m.rows_per_s:,.0f}", _size(m.package_bytes),
                  "-" if m.model_memory_mb is None else
                  f"{m.model_memory_mb:.0f} / {m.peak_memory_mb:.0f}",
                  m.runtime.partition(":")[0])
    return t


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def optimize_command(
    ctx: typer.Context,
    ref: str = typer.Argument(..., metavar="REF",
                              help="The teacher: name@alias, name/VERSION or name."),
    max_score_drop: float = typer.Option(
        0.005, "--max-score-drop", metavar="DROP",
        help="How much lower than the teacher's a variant's test score may be."),
    target: str = typer.Option("latency", "--target", metavar="TARGET",
                               help="latency (the fastest single row) or edge (the smallest "
                                    "package)."),
    techniques: str | None = typer.Option(
        None, "--techniques", metavar="LIST",
        help="Comma-separated: distill, truncate, prune, compile, quantize (default: all)."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Measure and choose; register nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Try smaller and faster variants of a model, show the trade-offs, register the best."""
    from forgeline.cli.progress import RichProgress
    from forgeline.workflows.optimize import NoCandidate, optimize

    names = [n.strip() for n in techniques.split(",") if n.strip()] if techniques else None
    try:
        with RichProgress() as progress:
            result = optimize(ref, max_score_drop=max_score_drop, target=target,
                              techniques=names, dry_run=dry_run, client=get_client(ctx),
                              progress=progress)
    except NoCandidate as e:
        if e.table and not as_json:
            console().print(_table(e.table, e.metric, None))
        raise
    if as_json:
        print_json(result)
        return
    out = console()
    out.print(_table(result.table, result.metric, result.chosen))
    version = result.model_version
    rows = [("teacher", result.teacher), ("chosen", result.chosen), ("why", result.reason),
            *((f"not tried: {k}", v) for k, v in result.skipped.items()),
            ("registered", version.ref if version else "no (--dry-run)")]
    if version is not None:
        rows += [("aliases", "unchanged (promote it with forgeline models alias)"),
                 ("run id", result.run_id or "-")]
    out.print(key_value_table(rows, title="Optimization"))


def register(app: typer.Typer) -> None:
    app.command("optimize")(optimize_command)
