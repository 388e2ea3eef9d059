"""One self-contained HTML report of a monitoring run; it opens offline, from one file.

Built like the training report (:mod:`forgeline.reports.html`), on the same page frame,
stylesheet, figure rendering and atomic write (:mod:`forgeline.reports._page`): plotly.js
embedded once in the head, every user string (column names, categories, rules, messages)
escaped by Jinja2's autoescaping.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from forgeline.data.findings import Severity
from forgeline.monitoring import _plots as plots
from forgeline.monitoring.config import TESTS
from forgeline.reports._page import Figures, render_page, write_html
from forgeline.reports.html import fmt

if TYPE_CHECKING:
    from forgeline.monitoring.result import MonitorResult

__all__ = ["MAX_DISTRIBUTIONS", "render_monitor_report"]

MAX_DISTRIBUTIONS = 30
_SECTIONS = [("summary", "Summary"), ("alerts", "Alerts"), ("drift", "Data drift"),
             ("time", "Drift over time"), ("prediction", "Prediction drift"),
             ("multivariate", "Multivariate"), ("quality", "Data quality"),
             ("performance", "Performance")]
_ORDER = {Severity.FAIL: 0, Severity.WARN: 1, Severity.INFO: 2}


def _row(*cells: Any, cls: str = "") -> dict[str, Any]:
    return {"cls": cls, "cells": [c if isinstance(c, tuple) else (c, "") for c in cells]}


def _table(headers: Sequence[str | tuple[str, str]], rows: list[dict[str, Any]]
           ) -> dict[str, Any]:
    return {"headers": [h if isinstance(h, tuple) else (h, "") for h in headers], "rows": rows}


def _badge(text: str, cls: str) -> Markup:
    return Markup('<span class="badge {}">{}</span>').format(cls, text)


def _num(value: Any, key: str = "") -> tuple[str, str]:
    return fmt(value, key), "num"


def _drift(r: MonitorResult, html: Figures) -> dict[str, Any]:
    ranked = sorted(r.features.values(),
                    key=lambda f: (not f.drifted, -(f.stats.get("psi") or 0.0)))
    rows = [_row(f.column, f.kind, f.method, _num(f.score),
                 ("< " if f.method in TESTS else ">= ") + fmt(f.threshold),
                 _badge("drift", "drift") if f.drifted else _badge("ok", "ok"),
                 _num(f.stats.get("psi")), _num(f.n_current), cls="drifted" if f.drifted else "")
            for f in ranked]
    shown = ranked[:MAX_DISTRIBUTIONS]
    note = (f"{r.dataset.n_drifted} of {r.dataset.n_features} features drifted "
            f"({r.dataset.share:.0%}); the dataset counts as drifted from "
            f"{r.dataset.threshold:.0%}. Methods: Kolmogorov-Smirnov and chi-square (p-values) "
            f"up to {r.config.small_sample_rows} rows, Wasserstein (over the reference std) "
            "and Jensen-Shannon distances above, all from the reference profile's bins.")
    return {"drift": _table(["feature", "kind", "method", ("score", "num"), "drifted when",
                             "verdict", ("PSI", "num"), ("rows", "num")], rows),
            "drift_note": note,
            "skipped": _table(["column", "why"], [_row(k, x) for k, x in r.skipped.items()]),
            "distributions": [html(plots.distribution(f)) for f in shown],
            "distributions_note": f"Drifted features first, then by PSI; {len(shown)} of "
                                  f"{len(ranked)} shown. Numeric bins are the reference's "
                                  "quantile bins."}


def _time(r: MonitorResult, html: Figures) -> dict[str, Any]:
    plots_ = [p for p in (html(plots.drift_over_time(r.windows, r.dataset.threshold)),
                          html(plots.drift_heatmap(r.windows))) if p is not None]
    rows = [_row(w["window"], _num(w["rows"]),
                 _num(w.get("dataset_drift_share"), "share") if w["scored"] else "too few rows",
                 ", ".join(w.get("drifted", [])[:6]) or "—") for w in r.windows]
    note = (f"Windows: {r.windows_by}; windows under {r.config.min_window_rows} rows are not "
            "scored." if r.windows else "No time windows: the data has no time column and too "
            "few rows, or windows were turned off.")
    return {"time_plots": plots_, "windows_note": note,
            "windows": _table(["window", ("rows", "num"), ("drifted share", "num"),
                               "drifted features"], rows)}


def _prediction(r: MonitorResult, html: Figures) -> dict[str, Any]:
    f = r.prediction
    if f is None:
        return {"prediction_plot": None, "prediction_note": "No prediction drift: the data "
                "has no predictions, or the profile no prediction reference."}
    return {"prediction_plot": html(plots.distribution(f, "Predictions")),
            "prediction_note": f"{f.method} {fmt(f.score)} (threshold {fmt(f.threshold)}), "
                               f"PSI {fmt(f.stats.get('psi'))}, against the model's "
                               "predictions on its test split."}


def _multivariate(r: MonitorResult, html: Figures) -> dict[str, Any]:
    m = r.multivariate
    if m is None:
        return {"multivariate_info": [], "multivariate_plot": None, "sigma": "",
                "multivariate_note": "No multivariate check: the profile has no PCA "
                                     "reference, or its columns are missing."}
    info = [("Verdict", "drifted" if m.drifted else "no drift"),
            ("Reconstruction error", fmt(m.error)),
            ("Reference error", fmt(m.reference_mean)),
            ("Band", f"{fmt(m.lower)} to {fmt(m.upper)}"),
            ("Components", f"{m.components} of {len(m.columns)} features "
                           f"({m.explained_variance:.0%} of the variance)"),
            ("Rows measured", f"{m.rows:,}" + (f" (every {m.step}th row)" if m.step > 1
                                               else ""))]
    return {"multivariate_info": info, "multivariate_plot": html(plots.multivariate(m)),
            "sigma": fmt(r.config.multivariate_sigma), "multivariate_note": ""}


def _quality(r: MonitorResult) -> dict[str, Any]:
    q = r.quality
    issues = sorted(q.issues, key=lambda i: _ORDER.get(i.severity, 3))
    issue_rows = [_row(_badge(str(i.severity), str(i.severity)), i.check, i.message,
                       ", ".join(i.columns) or "—", cls=f"sev-{i.severity}") for i in issues]
    rows = [_row(name, fmt(c.get("kind")), _num(c.get("missing_share"), "share"),
                 _num(c.get("reference_missing_share"), "share"),
                 _num(c.get("missing_share_change")),
                 _num(c.get("out_of_range_share"), "share"),
                 _num(c.get("unseen_share"), "share") if "unseen" in c else ("—", "num"),
                 _num(c.get("not_parsed"))) for name, c in q.columns.items()]
    dup = fmt(q.duplicate_share, "share")
    ref = fmt(q.reference_duplicate_share, "share")
    note = (f"Duplicated input rows: {dup} (training: {ref}). Unseen categories are counted "
            "only where every training category is known; elsewhere values outside the "
            "profile's 50 most frequent categories fall in its '(other)' bucket.")
    return {"issues": _table(["severity", "check", "message", "columns"], issue_rows),
            "quality": _table(["column", "kind", ("missing", "num"), ("missing (training)",
                               "num"), ("change", "num"), ("out of range", "num"),
                               ("unseen", "num"), ("not parseable", "num")], rows),
            "quality_note": note}


def _performance(r: MonitorResult, html: Figures) -> dict[str, Any]:
    p = r.performance
    if p is None:
        return {"performance": _table([], []), "performance_plots": [],
                "performance_note": "No performance: the data has no predictions."}
    names = list(dict.fromkeys([*p.realized, *p.estimated]))
    rows = []
    for name in names:
        test, real, est = p.reference.get(name), p.realized.get(name), p.estimated.get(name)
        bad = name in p.degraded or f"estimated_{name}" in p.degraded
        rows.append(_row(name, _num(test), _num(real), _num(est),
                         _badge("degraded", "drift") if bad else "", cls="drifted" if bad else ""))
    primary = next((m for m in ("roc_auc", "f1_macro", "rmse") if m in names), None)
    more = [m for m in ("accuracy", "f1") if m in names and m != primary]
    figures = [html(plots.performance_over_time(p, m)) for m in [primary, *more] if m]
    note = (f"{p.labelled} of {p.rows} rows have labels. "
            + ("Estimated metrics come from the model's confidence (CBPE"
               + (", after the test-split calibration map)" if p.calibrated else ")")
               + " and assume calibrated probabilities." if p.estimated else "")
            + (f" Labels: {p.feedback.message}." if p.feedback and p.feedback.message else "")
            + (" " + "; ".join(p.notes) + "." if p.notes else ""))
    headers = ["metric", ("test", "num"), ("realised", "num"), ("estimated", "num"), ""]
    return {"performance": _table(headers, rows),
            "performance_plots": [f for f in figures if f is not None],
            "performance_note": note}


def _alerts(r: MonitorResult) -> dict[str, Any]:
    rows = [_row(Markup("<code>{}</code>").format(a.rule),
                 _badge("fired", "drift") if a.fired else _badge("quiet", "ok"),
                 ", ".join(f"{k} = {fmt(x)}" for k, x in (a.matches or a.values).items())
                 or (a.note or "—"), cls="drifted" if a.fired else "") for a in r.alerts]
    return {"alerts": _table(["rule", "state", "values"], rows)}


def _kpis(r: MonitorResult) -> list[tuple[str, str, str]]:
    d = r.dataset
    kpis = [("rows", f"{r.rows:,}", ""),
            ("drifted features", f"{d.n_drifted} / {d.n_features}", "bad" if d.drifted else
             "good"),
            ("quality issues", str(sum(i.severity != Severity.INFO for i in r.quality.issues)),
             ""),
            ("alerts fired", str(len(r.fired)), "bad" if r.fired else "")]
    if r.prediction is not None:
        kpis.insert(2, ("prediction drift", "yes" if r.prediction.drifted else "no",
                        "bad" if r.prediction.drifted else "good"))
    if r.multivariate is not None:
        kpis.insert(3, ("multivariate drift", "yes" if r.multivariate.drifted else "no",
                        "bad" if r.multivariate.drifted else "good"))
    if r.performance is not None:
        for prefix, values in (("", r.performance.realized),
                               ("estimated ", r.performance.estimated)):
            name = next((m for m in ("roc_auc", "f1_macro", "rmse") if values.get(m)
                         is not None), None)
            if name:
                kpis.append((f"{prefix}{name}", fmt(values[name]), ""))
                break
    return kpis


def render_monitor_report(result: MonitorResult, path: Path, *, title: str | None = None
                          ) -> Path:
    """Write the HTML report of ``result`` to ``path`` (replaced atomically).

    Args:
        result: a monitoring result.
        path: where the ``.html`` file goes; its folder is created.
        title: the page title (escaped); ``"<model>: monitoring report"`` by default.

    Returns:
        ``path``.
    """
    r = result
    html = Figures()
    model = r.model + (f" v{r.version}" if r.version else "")
    period = " to ".join(x for x in (r.period.get("start"), r.period.get("end")) if x)
    summary = [("Model", model), ("Task", r.task), ("Rows", f"{r.rows:,}"),
               ("Period", period or "—"), ("Reference", f"{r.reference} "
                                           f"({fmt(r.reference_rows)} rows)"),
               ("Windows", r.windows_by)]
    context = {
        "title": title or f"{r.model}: monitoring report", "sections": _SECTIONS,
        "subtitle": " · ".join(x for x in (model, f"{r.task} task", period) if x),
        "kpis": _kpis(r), "summary": summary, "warnings": r.warnings,
        "generated": r.generated,
        **_alerts(r), **_drift(r, html), **_time(r, html), **_prediction(r, html),
        **_multivariate(r, html), **_quality(r), **_performance(r, html),
    }
    return write_html(path, render_page("monitoring.html", context))
