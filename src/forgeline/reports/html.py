"""One self-contained HTML report of a trained model: it opens offline, from one file.

plotly.js is embedded once, in the head; every figure after it is a ``<div>`` and a small
script that calls it. Nothing is fetched from the network. Every user string (title,
column names, messages, parameters) is escaped by Jinja2's autoescaping. The page frame,
the figures, the table cells and the write are shared with the monitoring report
(:mod:`._page`, :mod:`._tables`, :mod:`._template`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from markupsafe import Markup

from forgeline.data.findings import Finding, Severity
from forgeline.entities import Evaluation
from forgeline.metrics import METRICS
from forgeline.packaging.attributions import GlobalExplanation
from forgeline.reports import explain_plots, plots
from forgeline.reports._page import Figures, render_page, write_html
from forgeline.reports._summary import LABELS, split_summary
from forgeline.reports._tables import SEVERITY_ORDER, badge, fmt, row, table

__all__ = ["render_report"]

_FIRST_STATS = ("kind", "dtype", "missing_share", "n_unique")
_SECTIONS = [("summary", "Summary"), ("data", "Data"), ("findings", "Findings"),
             ("tuning", "Tuning"), ("metrics", "Test metrics"), ("plots", "Diagnostic plots"),
             ("importance", "Feature importance"), ("explain", "Why the model decides"),
             ("fairness", "Slices and fairness")]


def _data_context(data: Mapping[str, Any] | None, html: Figures) -> dict[str, Any]:
    data = data or {}
    columns: Mapping[str, Mapping[str, Any]] = data.get("columns") or {}
    keys = [k for k in _FIRST_STATS if any(k in s for s in columns.values())]
    keys += list(dict.fromkeys(k for s in columns.values() for k in s if k not in keys))
    col_rows = [row(str(name), *((fmt(stats.get(k), k), "num" if isinstance(
        stats.get(k), int | float) else "") for k in keys)) for name, stats in columns.items()]
    balance: Mapping[str, Any] = data.get("class_balance") or {}
    total = sum(v for v in balance.values() if isinstance(v, int | float)) or 1
    bal_rows = [row(str(k), (fmt(v), "num"), (f"{v / total:.1%}", "num"))
                for k, v in balance.items()]
    info = [(k.replace("_", " ").capitalize(), fmt(v)) for k, v in data.items()
            if k not in ("columns", "class_balance")]
    return {"data_info": info,
            "columns": table(["column", *[(k, "") for k in keys]], col_rows),
            "balance": table(["class", ("count", "num"), ("share", "num")], bal_rows),
            "balance_plot": html(plots.class_balance(balance))}


def _findings_context(findings: Sequence[Finding]) -> dict[str, Any]:
    ordered = sorted(findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 3))
    rows = [row(badge(str(f.severity), str(f.severity)), f.check, f.message,
                ", ".join(f.columns) or "—", cls=f"sev-{f.severity}") for f in ordered]
    counts = {s: sum(f.severity == s for f in findings) for s in Severity}
    summary = ", ".join(f"{counts[s]} {s}" for s in (Severity.FAIL, Severity.WARN, Severity.INFO))
    return {"findings": table(["severity", "check", "message", "columns"], rows),
            "findings_summary": f"{len(findings)} finding(s): {summary}."}


def _tuning_context(trials: Sequence[Mapping[str, Any]], ev: Evaluation, html: Figures
                    ) -> dict[str, Any]:
    scored = [t.get("score") for t in trials if plots._finite(t.get("score"))]
    best = (max if METRICS[ev.metric].greater_is_better else min)(scored) if scored else None
    rows = []
    for i, t in enumerate(sorted(trials, key=lambda t: t.get("number", 0))):
        params = t.get("params") or {}
        text = ", ".join(f"{k}={fmt(v)}" for k, v in params.items()) if isinstance(
            params, Mapping) else fmt(params)
        rows.append(row((fmt(t.get("number", i)), "num"), fmt(t.get("model")),
                        (fmt(t.get("score")), "num"), Markup("<code>{}</code>").format(text),
                        fmt(t.get("state")),
                        cls="best" if best is not None and t.get("score") == best else ""))
    return {"trials": table([("#", "num"), "model", (ev.metric, "num"), "params", "state"],
                            rows),
            "tuning_plot": html(plots.trials(trials, ev.metric,
                                             METRICS[ev.metric].greater_is_better))}


def _metrics_context(ev: Evaluation, baseline: Mapping[str, float] | None) -> dict[str, Any]:
    headers: list[str | tuple[str, str]] = ["metric", ("test", "num")]
    if baseline is not None:
        headers += [("baseline", "num"), ("change", "num")]
    headers.append("direction")
    rows = []
    for name, value in ev.metrics.items():
        up = METRICS[name].greater_is_better
        cells: list[Any] = [name, (fmt(value), "num")]
        if baseline is not None:
            base = baseline.get(name)
            diff = value - base if plots._finite(base) and plots._finite(value) else None
            mood = "" if not diff else ("better" if (diff > 0) == up else "worse")
            cells += [(fmt(base), "num"), (f"{diff:+.4g}" if diff is not None else "—",
                                          f"num {mood}")]
        cells.append("higher is better" if up else "lower is better")
        rows.append(row(*cells, cls="primary" if name == ev.metric else ""))
    return {"metrics": table(headers, rows)}


def _explain_context(g: GlobalExplanation | None, note: str, html: Figures,
                     personal: Sequence[str]) -> dict[str, Any]:
    if g is None:
        return {"explain": None, "explain_note": note or "The model was not explained."}
    e = g.explanation
    categorical = [c for c in list(g.mean_abs)[:explain_plots.MAX_FEATURES]
                   if c not in personal and not explain_plots.encode(e.data[c])[1]]
    text = (f"Contributions (SHAP values, {e.method}) of each input column on {g.rows} rows "
            f"of the test split, in {e.units}: a row's contributions and the base value add "
            "up to the model's output. In the summary each point is a row; its colour is the "
            "column's value (numbers from low to high, clipped to their 5th-95th "
            "percentiles; missing values grey)")
    if categorical:
        text += (". Categorical columns (" + ", ".join(categorical) + ") are coloured by "
                 "category code, in sorted order, not by an order of their own")
    shown = [c for c in personal if c in g.mean_abs]
    if shown:
        text += (". Personal columns (" + ", ".join(shown) + ") are shown by name only: "
                 "grey points, no values, no dependence plot")
    return {"explain": {"summary": html(explain_plots.summary(g, personal)),
                        "bars": html(explain_plots.mean_abs_bars(g)),
                        "dependence": [html(f) for f in explain_plots.dependences(
                            g, hidden=personal)],
                        "interactions": html(explain_plots.interactions(g)),
                        "interaction_note": g.interaction_note},
            "explain_note": text + "."}


def _flat(record: Mapping[str, Any]) -> dict[str, Any]:
    """{"selection_rate": {"a": 0.2}} -> {"selection_rate a": 0.2}: one column per class."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            flat.update({f"{key} {k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def _fairness_context(ev: Evaluation, html: Figures) -> dict[str, Any]:
    rows = []
    for column, fair in ev.fairness.items():
        gap = fair.get("largest_gap") or {}
        rows.append(row(column, (f"{fair['n_scored']} / {fair['n_slices']}", "num"),
                        (fmt(fair.get("demographic_parity_difference")), "num"),
                        (fmt(fair.get("equalized_odds_difference")), "num"),
                        (fmt(gap.get("value")), "num"), fmt(gap.get("best_slice")),
                        fmt(gap.get("worst_slice"))))
    blocks = []
    for column, nested in ev.slices.items():
        slices = [_flat(r) for r in nested]
        keys = list(dict.fromkeys(k for r in slices for k in r
                                  if k not in ("value", "n", "share", "skipped")))
        body = [row(str(r["value"]), (fmt(r["n"]), "num"), (fmt(r["share"], "share"), "num"),
                    *((fmt(r.get(k), k) if not r["skipped"] else "too few rows", "num")
                      for k in keys)) for r in slices]
        blocks.append({"column": column, "plot": html(plots.slices(ev, column)),
                       "rates_plot": html(plots.fairness_groups(ev, column)),
                       "differences": _differences(ev.fairness.get(column, {})),
                       "groups": _group_rates(ev.fairness.get(column, {})),
                       **table(["slice", ("rows", "num"), ("share", "num"),
                                *((k, "num") for k in keys)], body)})
    headers = ["sensitive column", ("slices scored", "num"), ("demographic parity diff", "num"),
               ("equalized odds diff", "num"), (f"largest {ev.metric} gap", "num"),
               "best slice", "worst slice"]
    return {"fairness": table(headers, rows), "slice_blocks": blocks,
            "limits": _limits(ev.fairness_limits)}


def _ci(ci: Any) -> str:
    return f"[{fmt(ci[0])}, {fmt(ci[1])}]" if ci and ci[0] is not None else "—"


def _differences(fair: Mapping[str, Any]) -> dict[str, Any] | None:
    """fairlearn's differences and ratios of one column, with their intervals."""
    found = fair.get("metrics") or {}
    if not found:
        return None
    return table(["metric", ("value", "num"), ("95% bootstrap interval", "num")],
                 [row(name, (fmt(m.get("value")), "num"), (_ci(m.get("ci")), "num"))
                  for name, m in found.items()])


def _group_rates(fair: Mapping[str, Any]) -> dict[str, Any] | None:
    """Per group of one column (binary): the rates and the calibration, with intervals."""
    groups = fair.get("groups") or []
    if not groups or "selection_rate" not in groups[0]:
        return None
    keys = ["selection_rate", "tpr", "fpr", "calibration_gap"]
    return table(["group", ("rows", "num"),
                  *((f"{k.replace('_', ' ')} [95% interval]", "num") for k in keys),
                  ("Brier", "num")],
                 [row(str(g["group"]), (fmt(g.get("count")), "num"),
                      *((f"{fmt(g.get(k))} {_ci(g.get(f'{k}_ci'))}", "num") for k in keys),
                      (fmt(g.get("brier")), "num"))
                  for g in groups])


def _limits(checked: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The spec's limits: pass or fail on the model and on a mitigated candidate."""
    if not checked:
        return None
    mitigation = checked.get("mitigation")
    rows = [row(who, r["limit"], r["column"], (fmt(r["value"]), "num"), (_ci(r["ci"]), "num"),
                "met" if r["passed"] else "BROKEN", cls="" if r["passed"] else "sev-fail")
            for who, found in (("model", checked), ("mitigated candidate", mitigation or {}))
            for r in found.get("limits", [])]
    result = table(["model", "limit", "sensitive column", ("value", "num"),
                    ("95% bootstrap interval", "num"), "result"], rows)
    result["note"] = None
    if mitigation:
        result["note"] = (
            f"Mitigated candidate: fairlearn ThresholdOptimizer ({mitigation['constraint']}, "
            f"thresholds per group fitted on {mitigation['fitted_on']}): test "
            f"{mitigation['metric']} {fmt(mitigation['score'])}, a cost of "
            f"{fmt(mitigation['cost'])} against the model; not registered: {mitigation['note']}.")
    return result


def render_report(path: Path, *, title: str, evaluation: Evaluation,
                  summary: Mapping[str, Any], data: Mapping[str, Any] | None = None,
                  findings: Sequence[Finding] = (), trials: Sequence[Mapping[str, Any]] = (),
                  baseline: Mapping[str, float] | None = None,
                  explanation: GlobalExplanation | None = None, explanation_note: str = "",
                  personal: Sequence[str] = ()) -> Path:
    """Write the HTML report of one model to ``path`` (replaced atomically).

    Args:
        path: Where to write the ``.html`` file; its folder is created.
        title: The page title (escaped).
        evaluation: The test-split evaluation.
        summary: Run facts for the header: ``name``, ``version``, ``model_type``, ``run_id``,
            ``dataset``, ``rows``, ``time``, ``code_version``, ... (matched leniently, see
            :mod:`forgeline.reports._summary`; any other key is shown as given).
        data: Dataset facts: ``columns`` (column -> {kind, dtype, missing_share, n_unique,
            ...}), ``class_balance`` (class -> rows) and any scalar facts (name, digest).
        findings: Validation and leakage findings.
        trials: Tuning trials, each {number, model, score, params, state}.
        baseline: Metric -> score of a model to compare with (e.g. the champion).
        explanation: contributions on a sample of the test split, for the "Why the model
            decides" section; None with ``explanation_note`` saying why there are none.
        personal: personal columns: in the explanation by name only, never by value.

    Returns:
        ``path``.
    """
    ev = evaluation
    html = Figures()
    known, extra = split_summary(summary)
    shown = [(label, fmt(known[k])) for k, label in LABELS.items() if k in known]
    model = " v".join(fmt(known[k]) for k in ("name", "version") if known.get(k) is not None)
    context = {
        "title": title, "sections": _SECTIONS, "n_rows": ev.n_rows, "metric": ev.metric,
        "max_features": plots.MAX_FEATURES, "min_rows": ev.min_slice_rows,
        "subtitle": " · ".join(p for p in (model, f"{ev.task} task", known.get("run_id") and
                                           f"run {known['run_id']}") if p),
        "kpis": [(ev.metric, fmt(ev.score), ""), ("task", ev.task, ""),
                 ("test rows", f"{ev.n_rows:,}", "")] + ([("model", model, "")] if model else []),
        "summary": shown + [(k, fmt(v)) for k, v in extra],
        "plots": [p for p in map(html, (plots.confusion(ev), plots.roc(ev),
                                        plots.precision_recall(ev), plots.calibration(ev)))
                  if p is not None],
        "residuals_plot": html(plots.residuals(ev)),
        "importance_plot": html(plots.importance(ev)), "importance_note": ev.importance_note,
        **_data_context(data, html), **_findings_context(findings),
        **_tuning_context(trials, ev, html), **_metrics_context(ev, baseline),
        **_fairness_context(ev, html), **_explain_context(explanation, explanation_note, html,
                                                         personal),
    }
    return write_html(path, render_page("training.html", context))
