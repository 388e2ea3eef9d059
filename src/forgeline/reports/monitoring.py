"""One self-contained HTML report of a monitoring run; it opens offline, from one file.

Rendered from the run's JSON form (``MonitorResult.to_dict()``, or that JSON read back from
a file): the reports stage never imports the monitoring stage, and everything the page
says (which scores are p-values, which bucket is ``(other)``) travels in that form.

Built like the training report (:mod:`forgeline.reports.html`), on the same page frame,
stylesheet, figure rendering, table cells and atomic write (:mod:`._page`, :mod:`._tables`):
plotly.js embedded once in the head, every user string (column names, categories, rules,
messages) escaped by Jinja2's autoescaping.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from markupsafe import Markup

from forgeline.data.findings import Severity
from forgeline.errors import InvalidInput
from forgeline.reports import monitoring_plots as plots
from forgeline.reports._page import Figures, render_page, write_html
from forgeline.reports._tables import SEVERITY_ORDER, badge, fmt, num, row, table

__all__ = ["MAX_DISTRIBUTIONS", "render_monitor_report"]

MAX_DISTRIBUTIONS = 30
_SECTIONS = [("summary", "Summary"), ("alerts", "Alerts"), ("drift", "Data drift"),
             ("time", "Drift over time"), ("prediction", "Prediction drift"),
             ("multivariate", "Multivariate"), ("attribution", "Attribution drift"),
             ("quality", "Data quality"),
             ("performance", "Performance")]
_REQUIRED = ("model", "task", "rows", "period", "config", "features", "dataset", "quality",
             "windows", "alerts")

Result = Mapping[str, Any]
_CLOCKS = {"event": "when the rows happened: the model's data.time_column",
           "logging": "when the predictions were logged",
           "rows": "the data has no time column"}


class HasDict(Protocol):
    """Anything with a JSON form, such as a ``MonitorResult``."""

    def to_dict(self) -> Mapping[str, Any]: ...


def _drift(r: Result, html: Figures) -> dict[str, Any]:
    ranked = sorted(r["features"].values(),
                    key=lambda f: (not f["drifted"], -(f["stats"].get("psi") or 0.0)))
    rows = [row(f["column"], f["kind"], f["method"], num(f["score"]),
                ("< " if f.get("pvalue") else ">= ") + fmt(f["threshold"]),
                badge("drift", "drift") if f["drifted"] else badge("ok", "ok"),
                num(f["stats"].get("psi")), num(f["n_current"]),
                cls="drifted" if f["drifted"] else "") for f in ranked]
    shown = ranked[:MAX_DISTRIBUTIONS]
    d = r["dataset"]
    note = (f"{d['n_drifted']} of {d['n_features']} features drifted ({d['share']:.0%}); the "
            f"dataset counts as drifted from {d['threshold']:.0%}. Methods: "
            "Kolmogorov-Smirnov and chi-square (p-values) up to "
            f"{r['config']['small_sample_rows']} rows, Wasserstein (over the reference std) "
            "and Jensen-Shannon distances above, all from the reference profile's bins.")
    skipped = r.get("skipped") or {}
    return {"drift": table(["feature", "kind", "method", ("score", "num"), "drifted when",
                            "verdict", ("PSI", "num"), ("rows", "num")], rows),
            "drift_note": note,
            "skipped": table(["column", "why"], [row(k, x) for k, x in skipped.items()]),
            "distributions": [html(plots.distribution(f)) for f in shown],
            "distributions_note": f"Drifted features first, then by PSI; {len(shown)} of "
                                  f"{len(ranked)} shown. Numeric bins are the reference's "
                                  "quantile bins."}


def _clock(r: Result) -> str | None:
    """Which clock cut the windows, in words (None in a JSON form from before clocks)."""
    clock = r.get("clock") or {}
    label = clock.get("label")
    if not label:
        return None
    why = _CLOCKS.get(clock.get("kind"))
    return f"{label} ({why})" if why else str(label)


def _time(r: Result, html: Figures) -> dict[str, Any]:
    windows = r["windows"]
    plots_ = [p for p in (html(plots.drift_over_time(windows, r["dataset"]["threshold"])),
                          html(plots.drift_heatmap(windows))) if p is not None]
    rows = [row(w["window"], num(w["rows"]),
                num(w.get("dataset_drift_share"), "share") if w["scored"] else "too few rows",
                ", ".join(w.get("drifted", [])[:6]) or "—") for w in windows]
    clock, least = _clock(r), r["config"]["min_window_rows"]
    by = f"Windows: {r.get('windows_by')}" + (f", by {clock}" if clock else "")
    if windows and plots_:
        note = f"{by}; windows under {least} rows are not scored."
    elif windows:
        note = f"{by}; no window has the {least} rows needed to score it."
    else:
        note = ("No time windows: the data has no time column and too few rows, or windows "
                "were turned off.")
    return {"time_plots": plots_, "windows_note": note,
            "windows": table(["window", ("rows", "num"), ("drifted share", "num"),
                              "drifted features"], rows)}


def _prediction(r: Result, html: Figures) -> dict[str, Any]:
    f = r.get("prediction")
    if f is None:
        return {"prediction_plot": None, "prediction_note": "No prediction drift: the data "
                "has no predictions, or the profile no prediction reference."}
    return {"prediction_plot": html(plots.distribution(f, "Predictions")),
            "prediction_note": f"{f['method']} {fmt(f['score'])} (threshold "
                               f"{fmt(f['threshold'])}), PSI {fmt(f['stats'].get('psi'))}, "
                               "against the model's predictions on its test split."}


def _multivariate(r: Result, html: Figures) -> dict[str, Any]:
    m = r.get("multivariate")
    if m is None:
        return {"multivariate_info": [], "multivariate_plot": None, "sigma": "",
                "multivariate_note": "No multivariate check: the profile has no PCA "
                                     "reference, or its columns are missing."}
    step = m.get("step", 1)
    info = [("Verdict", "drifted" if m["drifted"] else "no drift"),
            ("Reconstruction error", fmt(m["error"])),
            ("Reference error", fmt(m["reference_mean"])),
            ("Band", f"{fmt(m['lower'])} to {fmt(m['upper'])}"),
            ("Components", f"{m['components']} of {len(m['columns'])} features "
                           f"({m['explained_variance']:.0%} of the variance)"),
            ("Rows measured", f"{m['rows']:,}" + (f" (every {step}th row)" if step > 1
                                                  else ""))]
    return {"multivariate_info": info, "multivariate_plot": html(plots.multivariate(m)),
            "sigma": fmt(r["config"]["multivariate_sigma"]), "multivariate_note": ""}


def _attribution(r: Result, html: Figures) -> dict[str, Any]:
    a = r.get("attribution")
    if a is None:
        return {"attribution_plot": None, "attribution": table([], []),
                "attribution_note": "No attribution drift: the model package has no "
                                    "reference attributions, or it was not measured (see "
                                    "the warnings)."}
    rows = [row(name, num(f["reference"]), num(f["current"]), (
                    "—" if f["relative_change"] is None else f"{f['relative_change']:+.0%}",
                    "num"),
                num(f["reference_share"], "share"), num(f["current_share"], "share"),
                (f"{f['share_change']:+.1%}", "num"),
                f"{f['reference_rank']} → {f['current_rank']}",
                badge("moved", "drift") if f["drifted"] else badge("ok", "ok"),
                cls="drifted" if f["drifted"] else "")
            for name, f in a["features"].items()]
    note = (f"Mean |contribution| ({a['units']}, {a['method']}) of each input column over "
            f"{a['rows']:,} current rows, against {a.get('reference_rows') or 0:,} rows of the "
            "test split when the model was trained. A feature is flagged when its share of "
            f"all attribution moved by more than {a['threshold']:.0%} points: the model now "
            "decides more (or less) on it.")
    return {"attribution_plot": html(plots.attribution(a)), "attribution_note": note,
            "attribution": table(["feature", ("reference", "num"), ("current", "num"),
                                  ("relative change", "num"), ("share (ref.)", "num"),
                                  ("share (current)", "num"), ("share change", "num"),
                                  "rank", "verdict"], rows)}


def _quality(r: Result) -> dict[str, Any]:
    q = r["quality"]
    issues = sorted(q["issues"], key=lambda i: SEVERITY_ORDER.get(i["severity"], 3))
    issue_rows = [row(badge(str(i["severity"]), str(i["severity"])), i["check"], i["message"],
                      ", ".join(i.get("columns") or ()) or "—", cls=f"sev-{i['severity']}")
                  for i in issues]
    rows = [row(name, fmt(c.get("kind")), num(c.get("missing_share"), "share"),
                num(c.get("reference_missing_share"), "share"),
                num(c.get("missing_share_change")),
                num(c.get("out_of_range_share"), "share"),
                num(c.get("unseen_share"), "share") if "unseen" in c else ("—", "num"),
                num(c.get("not_parsed"))) for name, c in q["columns"].items()]
    dup = fmt(q.get("duplicate_share"), "share")
    ref = fmt(q.get("reference_duplicate_share"), "share")
    note = (f"Duplicated input rows: {dup} (training: {ref}). Unseen categories are counted "
            "only where every training category is known; elsewhere values outside the "
            "profile's 50 most frequent categories fall in its '(other)' bucket.")
    return {"issues": table(["severity", "check", "message", "columns"], issue_rows),
            "quality": table(["column", "kind", ("missing", "num"), ("missing (training)",
                              "num"), ("change", "num"), ("out of range", "num"),
                              ("unseen", "num"), ("not parseable", "num")], rows),
            "quality_note": note}


def _performance(r: Result, html: Figures) -> dict[str, Any]:
    p = r.get("performance")
    if p is None:
        return {"performance": table([], []), "performance_plots": [],
                "performance_note": "No performance: the data has no predictions."}
    realized, estimated = p.get("realized") or {}, p.get("estimated") or {}
    reference, degraded = p.get("reference") or {}, p.get("degraded") or ()
    names = list(dict.fromkeys([*realized, *estimated]))
    rows = []
    for name in names:
        bad = name in degraded or f"estimated_{name}" in degraded
        rows.append(row(name, num(reference.get(name)), num(realized.get(name)),
                        num(estimated.get(name)), badge("degraded", "drift") if bad else "",
                        cls="drifted" if bad else ""))
    primary = next((m for m in ("roc_auc", "f1_macro", "rmse") if m in names), None)
    more = [m for m in ("accuracy", "f1") if m in names and m != primary]
    figures = [html(plots.performance_over_time(p, m)) for m in [primary, *more] if m]
    feedback = (p.get("feedback") or {}).get("message")
    notes = p.get("notes") or ()
    note = (f"{p['labelled']} of {p['rows']} rows have labels. "
            + ("Estimated metrics come from the model's confidence (CBPE"
               + (", after the test-split calibration map)" if p.get("calibrated") else ")")
               + " and assume calibrated probabilities." if estimated else "")
            + (f" Labels: {feedback}." if feedback else "")
            + (" " + "; ".join(notes) + "." if notes else "") + _fairness_note(p))
    headers = ["metric", ("test", "num"), ("realised", "num"), ("estimated", "num"), ""]
    return {"performance": table(headers, rows),
            "performance_plots": [f for f in figures if f is not None],
            "performance_note": note}


def _fairness_note(p: Mapping[str, Any]) -> str:
    """fairlearn's differences and ratios on the labelled rows, per sensitive column."""
    found = p.get("fairness") or {}
    parts = [f"{column}: " + ", ".join(f"{name.replace('_', ' ')} {fmt(value)}"
                                       for name, value in values.items())
             for column, values in found.items() if values]
    return (" Fairness on the labelled rows (" + "; ".join(parts) + ")." if parts else "")


def _alerts(r: Result) -> dict[str, Any]:
    rows = [row(Markup("<code>{}</code>").format(a["rule"]),
                badge("fired", "drift") if a["fired"] else badge("quiet", "ok"),
                ", ".join(f"{k} = {fmt(x)}" for k, x in (a.get("matches") or a.get("values")
                                                          or {}).items())
                or (a.get("note") or "—"), cls="drifted" if a["fired"] else "")
            for a in r["alerts"]]
    return {"alerts": table(["rule", "state", "values"], rows)}


def _kpis(r: Result) -> list[tuple[str, str, str]]:
    d = r["dataset"]
    fired = [a for a in r["alerts"] if a["fired"]]
    issues = sum(i["severity"] != Severity.INFO for i in r["quality"]["issues"])
    kpis = [("rows", f"{r['rows']:,}", ""),
            ("drifted features", f"{d['n_drifted']} / {d['n_features']}",
             "bad" if d["drifted"] else "good"),
            ("quality issues", str(issues), ""),
            ("alerts fired", str(len(fired)), "bad" if fired else "")]
    for at, key, label in ((2, "prediction", "prediction drift"),
                           (3, "multivariate", "multivariate drift"),
                           (4, "attribution", "attribution drift")):
        part = r.get(key)
        if part is not None:
            kpis.insert(at, (label, "yes" if part["drifted"] else "no",
                             "bad" if part["drifted"] else "good"))
    perf = r.get("performance")
    if perf is not None:
        for prefix, values in (("", perf.get("realized") or {}),
                               ("estimated ", perf.get("estimated") or {})):
            name = next((m for m in ("roc_auc", "f1_macro", "rmse") if values.get(m)
                         is not None), None)
            if name:
                kpis.append((f"{prefix}{name}", fmt(values[name]), ""))
                break
    return kpis


def _as_dict(result: Result | HasDict) -> Result:
    """The JSON form of ``result``, checked for the parts every section reads."""
    if not isinstance(result, Mapping):
        to_dict = getattr(result, "to_dict", None)
        if not callable(to_dict):
            raise InvalidInput("Cannot render a monitoring report from a value of type "
                               f"{type(result).__name__}.",
                               hint="Pass a monitoring result or its to_dict().")
        result = to_dict()
    missing = [k for k in _REQUIRED if k not in result]
    if missing:
        raise InvalidInput("Cannot render a monitoring report: the result has no "
                           f"{', '.join(missing)}.",
                           hint="Pass a monitoring result or its to_dict().")
    return result


def render_monitor_report(result: Result | HasDict, path: str | Path, *,
                          title: str | None = None) -> Path:
    """Write the HTML report of a monitoring run to ``path`` (replaced atomically).

    Args:
        result: the run's JSON form, ``MonitorResult.to_dict()`` (as returned, or read back
            from a JSON file), or anything with such a ``to_dict()`` method (the result).
        path: where the ``.html`` file goes; its folder is created.
        title: the page title (escaped); ``"<model>: monitoring report"`` by default.

    Returns:
        ``path``, as a :class:`~pathlib.Path`.

    Raises:
        InvalidInput: ``result`` is not a monitoring result nor its JSON form.
    """
    r = _as_dict(result)
    html = Figures()
    model = r["model"] + (f" v{r['version']}" if r.get("version") else "")
    period = " to ".join(x for x in (r["period"].get("start"), r["period"].get("end")) if x)
    summary = [("Model", model), ("Task", r["task"]), ("Rows", f"{r['rows']:,}"),
               ("Period", period or "—"),
               ("Reference", f"{r.get('reference')} ({fmt(r.get('reference_rows'))} rows)"),
               ("Windows", r.get("windows_by")),
               *([("Clock", _clock(r))] if _clock(r) else [])]
    context = {
        "title": title or f"{r['model']}: monitoring report", "sections": _SECTIONS,
        "subtitle": " · ".join(x for x in (model, f"{r['task']} task", period) if x),
        "kpis": _kpis(r), "summary": summary, "warnings": r.get("warnings") or [],
        **({"generated": r["generated"]} if r.get("generated") else {}),
        **_alerts(r), **_drift(r, html), **_time(r, html), **_prediction(r, html),
        **_multivariate(r, html), **_attribution(r, html), **_quality(r), **_performance(r, html),
    }
    return write_html(Path(path), render_page("monitoring.html", context))
