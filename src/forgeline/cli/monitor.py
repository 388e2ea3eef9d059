"""``forgeline monitor MODEL``: drift, data quality and performance of production data;
``forgeline monitor history MODEL``: what earlier runs found.

The current data is a file (``--current``), Parquet partitions (``--current`` with a glob
or an ``s3://`` pattern, monitored one partition per task on ``--engine local`` or ``ray``:
see :mod:`forgeline.monitoring.partitions`) or the model's prediction log over a window
(``--since 24h``, ``--last 50000``; the last 24 hours when neither is given). Drift found
is printed, not an error: the exit code is 0 unless ``--fail-on-alert`` is given and a
rule fired (then 1). Each run of a registered model is recorded in the store's monitoring
history; a store that cannot be written is a warning, not a failure.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from typer.core import TyperGroup

from forgeline.cli.output import (
    console,
    error_line,
    fmt_time,
    fmt_value,
    print_json,
    print_table,
    table,
)
from forgeline.cli.state import get_client
from forgeline.errors import InvalidInput, NotFound
from forgeline.util.time import now_ms, parse_duration, parse_time

if TYPE_CHECKING:
    import click
    import pandas as pd

    from forgeline.entities import MonitoringRecord
    from forgeline.monitoring.result import MonitorResult
    from forgeline.packaging.predictor import Predictor

__all__ = ["register"]

_FAILED_ALERT = 1
_SHOWN = 15
_CHECK = "check"  # the command that ``forgeline monitor MODEL`` runs
_TOP_DRIFTED = 3


def _window(text: str | None) -> str | int | None:
    if text is None or text == "auto":
        return "auto"
    if text.lower() == "none":
        return None
    return int(text) if text.isdigit() else text


def _from_log(ctx: typer.Context, name: str, since: str | None, last: int | None,
              include_shadow: bool) -> pd.DataFrame:
    from forgeline.store.predictions import prediction_log_root, read_predictions

    if since is None and last is None:
        since = "24h"
    start = None
    if since is not None:
        import pandas as pd

        start = pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=parse_duration(
            since, "--since"))
    root = prediction_log_root(get_client(ctx).settings)
    where = f" in the last {since}" if since else ""
    try:
        frame = read_predictions(root, name, since=start, last=last,
                                 include_shadow=include_shadow)
    except NotFound:
        frame = None
    if frame is None or len(frame) == 0:
        raise NotFound(f"no predictions logged for {name}{where}",
                       hint=f"Check the model name and the window, or that the server logs "
                            f"predictions under {root}.")
    return frame


def _print_summary(result: MonitorResult, report: Path, err: bool) -> None:
    out = console()
    if err:
        out.stderr = True
    d = result.dataset
    head = f"{result.model}" + (f" v{result.version}" if result.version else "")
    period = " to ".join(x for x in (result.period.get("start"), result.period.get("end")) if x)
    out.print(f"[bold]{head}[/bold]: {result.rows:,} rows"
              + (f" ({period})" if period else "") + f", against the {result.reference}")
    clock, count = result.clock, len(result.windows)
    if count:
        out.print(f"Windows: {count} ({result.windows_by}), by {clock.label}")
    else:
        out.print("Windows: none" + (f" (period by {clock.label})" if clock.kind != "rows"
                                     else ""))
    verdict = "[red]DRIFTED[/red]" if d.drifted else "not drifted"
    out.print(f"Dataset drift: {d.n_drifted} of {d.n_features} features ({d.share:.0%}), "
              f"{verdict} (threshold {d.threshold:.0%})")
    if result.prediction is not None:
        p = result.prediction
        out.print(f"Prediction drift: {p.method} {fmt_value(p.score)}"
                  + (" [red]drifted[/red]" if p.drifted else ", no drift"))
    if result.multivariate is not None and result.multivariate.error is not None:
        m = result.multivariate
        out.print(f"Multivariate drift: reconstruction error {m.error:.4g} (reference "
                  f"{m.reference_mean:.4g})" + (" [red]drifted[/red]" if m.drifted else
                                                 ", no drift"))
    a = result.attribution
    if a is not None:
        moved = ", ".join(f"{c} (share {100 * a.features[c]['share_change']:+.0f} pts)"
                          for c in a.drifted_features[:_TOP_DRIFTED])
        out.print("Attribution drift: " + (f"[red]{moved}[/red] moved" if moved else
                                           f"none (largest share change "
                                           f"{a.largest_share_change:.1%})"))
    drifted = [f for f in result.features.values() if f.drifted]
    if drifted:
        t = table("feature", "kind", "method", "score", "PSI", title="Drifted features")
        for f in sorted(drifted, key=lambda f: -(f.stats.get("psi") or 0.0))[:_SHOWN]:
            t.add_row(f.column, f.kind, f.method, fmt_value(f.score),
                      fmt_value(f.stats.get("psi")))
        out.print(t)
    issues = [i for i in result.quality.issues if str(i.severity) != "info"]
    if issues:
        t = table("severity", "check", "message", title="Data quality issues")
        for i in issues[:_SHOWN]:
            t.add_row(str(i.severity), i.check, i.message)
        out.print(t)
    perf = result.performance
    if perf is not None and (perf.realized or perf.estimated):
        t = table("metric", "test", "realised", "estimated",
                  title=f"Performance ({perf.labelled:,} labelled rows)")
        for name in dict.fromkeys([*perf.realized, *perf.estimated]):
            t.add_row(name, fmt_value(perf.reference.get(name)),
                      fmt_value(perf.realized.get(name)), fmt_value(perf.estimated.get(name)))
        out.print(t)
    for alert in result.fired:
        shown = ", ".join(f"{k} = {v:.4g}" for k, v in list(alert.matches.items())[:5])
        out.print(f"[red]alert fired[/red]: {alert.rule} ({shown})")
    for warning in result.warnings:
        out.print(f"[yellow]warning[/yellow]: {warning}")
    out.print(f"Report: {report}")


def monitor_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., metavar="MODEL",
                                help="fraud@champion, fraud/3, fraud, or a package folder."),
    current: str | None = typer.Option(
        None, "--current", metavar="FILE|PATTERN",
        help="Production rows: a CSV or Parquet file, or Parquet partitions "
             "(data/part-*.parquet, s3://bucket/prefix/*.parquet) monitored one by one."),
    since: str | None = typer.Option(None, "--since", metavar="DURATION",
                                     help="Logged predictions of the last DURATION (24h)."),
    last: int | None = typer.Option(None, "--last", metavar="N", min=1,
                                    help="The last N logged predictions."),
    reference: Path | None = typer.Option(
        None, "--reference", metavar="FILE",
        help="Compare with this data instead of the model's training profile."),
    labels: Path | None = typer.Option(None, "--labels", metavar="FILE",
                                       help="Feedback table: ids and true labels."),
    id_column: str = typer.Option("request_id", "--id-column",
                                  help="Id column shared by the data and --labels."),
    label_column: str | None = typer.Option(None, "--label-column",
                                            help="Label column of --labels (the target)."),
    rules: list[str] | None = typer.Option(None, "--rule", metavar="RULE",
                                           help="Alert rule, e.g. 'psi.amount > 0.25'."),
    webhook: str | None = typer.Option(None, "--webhook", metavar="URL",
                                       help="POST the alert payload here when a rule fires."),
    command: str | None = typer.Option(None, "--command", metavar="CMD",
                                       help="Run CMD with the alert payload on stdin."),
    window: str | None = typer.Option(None, "--window",
                                      help="auto, a frequency (1D, 6h), rows, or none."),
    time_column: str | None = typer.Option(
        None, "--time-column", metavar="COLUMN",
        help="The times that cut the windows (default: the model's event-time column when "
             "the data has it, else the log's ts)."),
    score: bool = typer.Option(False, "--score",
                               help="Predict on --current rows that have no predictions."),
    attribution_rows: int = typer.Option(
        1000, "--attribution-rows", metavar="N", min=0,
        help="Rows explained for attribution drift (0: none)."),
    attribution_change: float = typer.Option(
        0.05, "--attribution-change", metavar="SHARE",
        help="Flag a feature whose share of the attributions moved by more (0.05)."),
    include_shadow: bool = typer.Option(False, "--include-shadow",
                                        help="Include shadow predictions from the log."),
    output: Path | None = typer.Option(None, "-o", "--output", metavar="FILE",
                                       help="The HTML report (default MODEL-monitor.html)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    fail_on_alert: bool = typer.Option(False, "--fail-on-alert",
                                       help="Exit 1 when an alert rule fired."),
    engine: str = typer.Option("local", "--engine",
                               help="local, or ray (Parquet partitions, one task each)."),
    ray_address: str | None = typer.Option(None, "--ray-address", metavar="ADDRESS",
                                           help="The Ray cluster (default: RAY_ADDRESS, "
                                                "else a local instance)."),
    progress: bool = typer.Option(True, "--progress/--no-progress",
                                  help="Show the partitions done (on a terminal)."),
) -> None:
    """Compare production data with the model's training profile: drift, quality, metrics."""
    from forgeline.monitoring.config import MonitorConfig

    if current is not None and (since is not None or last is not None):
        raise InvalidInput("Give either --current FILE or a prediction log window "
                           "(--since, --last), not both.")
    config = MonitorConfig(rules=tuple(rules or ()), webhook=webhook, command=command,
                           window=_window(window), time_column=time_column,
                           attribution_rows=attribution_rows,
                           attribution_share_change=attribution_change)
    # a bad rule fails before any loading
    if engine not in ("local", "ray"):
        raise InvalidInput(f"Unknown engine {engine!r}.", hint="Use local or ray.")
    if engine == "ray" and current is None:
        raise InvalidInput("--engine ray monitors Parquet partitions given with --current.",
                           hint="Add --current 's3://bucket/prefix/*.parquet' (or a glob).")
    if current is not None and (engine == "ray" or _is_pattern(current)):
        if labels is not None or score:
            raise InvalidInput("--labels and --score need the data in one file: partitions "
                               "are monitored for drift and quality only.",
                               hint="Give one file with --current, or leave those out.")
        from forgeline.cli.progress import RichProgress
        from forgeline.monitoring.partitions import monitor_partitions

        predictor, name = _load(ctx, model)
        # a bar only on a terminal: a log or a pipe keeps just the summary and errors
        drawn = progress and not as_json and sys.stderr.isatty()
        with RichProgress(enabled=drawn, transient=True) as bar:
            result = monitor_partitions(
                predictor, current, engine=engine, ray_address=ray_address, config=config,
                reference=None if reference is None else _load_table(reference),
                progress=bar)
        _finish(ctx, predictor, name, result, output, as_json, fail_on_alert)
        return
    from concurrent.futures import ThreadPoolExecutor

    from forgeline.data.io import load_table

    with ThreadPoolExecutor(1) as pool:
        # Arrow reads the file off the GIL while the rest is imported and the package loaded
        reading = None if current is None else pool.submit(load_table, Path(current))
        from forgeline.monitoring.orchestrator import monitor

        predictor, name = _load(ctx, model)
        frame = (reading.result() if reading is not None
                 else _from_log(ctx, name, since, last, include_shadow))
    result = monitor(predictor, frame, config=config, score=score,
                     reference=None if reference is None else load_table(reference),
                     labels=None if labels is None else load_table(labels),
                     id_column=id_column, label_column=label_column)
    _finish(ctx, predictor, name, result, output, as_json, fail_on_alert)


def _is_pattern(current: str) -> bool:
    from forgeline.data.partitions import is_pattern

    return is_pattern(current)


def _load_table(path: Path) -> pd.DataFrame:
    from forgeline.data.io import load_table

    return load_table(path)


def _load(ctx: typer.Context, model: str) -> tuple[Predictor, str]:
    """The model (lazily: scored only if asked) and the name its runs are recorded under."""
    from forgeline.packaging.predictor import load_model

    local = Path(model).expanduser()
    predictor = load_model(local if local.is_dir() else model,
                           client=None if local.is_dir() else get_client(ctx), lazy=True)
    return predictor, predictor.model_version.name if predictor.model_version else local.name


def _finish(ctx: typer.Context, predictor: Predictor, name: str, result: MonitorResult,
            output: Path | None, as_json: bool, fail_on_alert: bool) -> None:
    """Write the report, record the run, print the result; exit 1 on a fired alert when
    asked."""
    from forgeline.reports.monitoring import render_monitor_report

    report = render_monitor_report(result, output or Path(f"{name}-monitor.html"))
    if predictor.model_version is not None:  # a bare package has no name to keep it under
        from forgeline.monitoring.history import record_result

        warning = record_result(get_client(ctx).store, result, source="monitor", model=name,
                                report=report.resolve())
        if warning:
            result.warnings.append(warning)
    if as_json:
        print_json(result.to_dict() | {"report": str(report)})
    _print_summary(result, report, err=as_json)
    if fail_on_alert and result.fired:
        error_line(f"{len(result.fired)} alert rule(s) fired: "
                   + "; ".join(a.rule for a in result.fired))
        raise typer.Exit(_FAILED_ALERT)


def _window_text(record: MonitoringRecord) -> str:
    if record.window_end is None:
        return f"{fmt_time(record.creation_time)} (recorded)"
    return f"{fmt_time(record.window_start)} to {fmt_time(record.window_end)}"


def _drifted_text(record: MonitoringRecord) -> str:
    shown = ", ".join(record.drifted[:_TOP_DRIFTED])
    more = len(record.drifted) - _TOP_DRIFTED
    return shown + (f" +{more} more" if more > 0 else "") or "-"


def history_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., metavar="MODEL", help="A registered model's name."),
    since: str | None = typer.Option(
        None, "--since", metavar="WHEN",
        help="Windows ending after this: a duration back from now (7d, 12h) or a time "
             "(2026-12-01)."),
    until: str | None = typer.Option(None, "--until", metavar="WHEN",
                                     help="Windows ending before this (same forms)."),
    limit: int = typer.Option(100, "--limit", metavar="N", min=1,
                              help="At most the newest N runs."),
    as_json: bool = typer.Option(False, "--json", help="Print the records as JSON."),
) -> None:
    """Show what earlier monitoring runs of MODEL found, oldest first.

    `forgeline monitor` and the server's periodic monitor record every run.
    """
    from rich.markup import escape

    now = now_ms()
    records = get_client(ctx).get_monitoring_history(
        model, since=parse_time(since, "--since", now), until=parse_time(until, "--until", now),
        limit=limit)
    if as_json:
        print_json(records)
        return
    t = table("window", "source", "version", "rows", "dataset drift", "prediction drift",
              "top drifted features", "alerts", title=f"Monitoring history of {model}")
    for r in records:
        drift = f"{r.dataset_drift:.0%}" + (" [red]DRIFTED[/red]" if r.dataset_drifted else "")
        t.add_row(_window_text(r), r.source, r.version or "-", f"{r.rows:,}", drift,
                  fmt_value(r.prediction_drift), _drifted_text(r),
                  f"[red]{escape('; '.join(r.alerts))}[/red]" if r.alerts else "-")
    print_table(t, empty=f"No monitoring runs recorded for {model}"
                         + (f" since {since}" if since else "")
                         + f". Run `forgeline monitor {model}` to record one.")


class _MonitorGroup(TyperGroup):
    """``forgeline monitor MODEL ...`` is ``forgeline monitor check MODEL ...``: a first
    argument that names no subcommand is the model to check."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [_CHECK, *args]
        return super().parse_args(ctx, args)


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        cls=_MonitorGroup, no_args_is_help=True,
        help="Monitor a model: `forgeline monitor MODEL [OPTIONS]` checks production data "
             "(the same as `monitor check`); `forgeline monitor history MODEL` shows what "
             "earlier checks found.")
    group.command(_CHECK, no_args_is_help=True)(monitor_command)
    group.command("history", no_args_is_help=True)(history_command)
    app.add_typer(group, name="monitor")
