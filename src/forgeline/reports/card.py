"""The model card: a Markdown page that travels in the model package as ``card.md``.

It follows the sections of "Model Cards for Model Reporting" (Mitchell et al., 2019) that
Forgeline can fill from what it recorded; intended use is the owner's to write, and stays
a clearly marked placeholder until they do.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from forgeline.data.findings import Finding, Severity
from forgeline.entities import Evaluation
from forgeline.metrics import METRICS
from forgeline.reports._summary import split_summary

__all__ = ["PLACEHOLDER", "render_card"]

PLACEHOLDER = ("> **TO BE FILLED IN by the model owner:** what this model is for, who uses "
               "its predictions and for which decisions, and what it must not be used for.")
FAIRNESS_GAP_WARNING = 0.1  # a parity or odds gap above this becomes a caveat
MAX_COLUMNS_LISTED = 40


def _md(value: Any, digits: int = 4) -> str:
    """A value as Markdown text: numbers rounded, table and HTML characters escaped."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    return " ".join(text.replace("<", "&lt;").replace(">", "&gt;").split())


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _details(name: str, version: int | None, ev: Evaluation, summary: Mapping[str, Any]
             ) -> list[str]:
    rows = [("Name", name), ("Version", version if version is not None else "not registered"),
            ("Task", ev.task), ("Model type", summary.get("model_type")),
            ("Training run", summary.get("run_id")), ("Date", summary.get("time")),
            ("Code version", summary.get("code_version")),
            ("Primary metric", f"{ev.metric} = {_md(ev.score)} on the test split")]
    return ["## Model details", "", *_table(["Field", "Value"], rows)]


def _data(ev: Evaluation, summary: Mapping[str, Any], data: Mapping[str, Any]) -> list[str]:
    columns: Mapping[str, Mapping[str, Any]] = data.get("columns") or {}
    listed = [f"{c} ({s.get('kind', '?')})" for c, s in list(columns.items())[
        :MAX_COLUMNS_LISTED]]
    more = f", and {len(columns) - len(listed)} more" if len(columns) > len(listed) else ""
    rows = [("Dataset", data.get("name", summary.get("dataset"))),
            ("Digest", data.get("digest", summary.get("dataset_digest"))),
            ("Rows", data.get("rows", summary.get("rows"))),
            ("Test rows", ev.n_rows),
            ("Columns", f"{len(columns)}: " + ", ".join(listed) + more if columns else None)]
    lines = ["## Training data", "", *_table(["Field", "Value"], rows)]
    balance = data.get("class_balance") or {}
    if balance:
        lines += ["Class balance: " + ", ".join(f"{_md(k)}: {_md(v)}"
                                                for k, v in balance.items()) + ".", ""]
    return lines


def _llm(llm: Mapping[str, Any]) -> list[str]:
    features = llm.get("features") or []
    if not features:
        return []
    rows = [(f.get("name"), f.get("type"), f.get("ask"), ", ".join(f.get("categories") or ()))
            for f in features]
    return ["## LLM features", "", f"Asked of {_md(llm.get('model'))} ({_md(llm.get('mode'))}) "
            f"at {_md(llm.get('url'))} for every prediction; an answer that names none of the "
            "allowed answers is a missing value.", "",
            *_table(["Feature", "Type", "Question", "Categories"], rows)]


def _privacy(privacy: Mapping[str, Any]) -> list[str]:
    columns = privacy.get("columns") or {}
    sensitive = list(privacy.get("sensitive") or [])
    lines = ["## Personal and sensitive data", ""]
    if not columns and not sensitive:
        return [*lines, "No column was found or declared personal, and no sensitive column "
                "was named.", ""]
    rows = [(name, c.get("kind"), "yes" if c.get("feature") else "no", c.get("handling"),
             c.get("prediction_log")) for name, c in columns.items()]
    if rows:
        lines += [f"Personal columns (privacy policy: {_md(privacy.get('policy'))}); the "
                  "reports and this card show none of their values.", "",
                  *_table(["Column", "Kind", "Feature", "In training", "In the prediction log"],
                          rows)]
    if sensitive:
        lines += ["Sensitive columns (evaluated per slice, not features): "
                  + ", ".join(_md(s) for s in sensitive) + ".", ""]
    return lines


def _evaluation(ev: Evaluation) -> list[str]:
    rows = [(f"**{n}**" if n == ev.metric else n, v,
             "higher is better" if METRICS[n].greater_is_better else "lower is better")
            for n, v in ev.metrics.items()]
    lines = ["## Evaluation", "",
             f"Metrics on the held-out test split ({ev.n_rows} rows); the primary metric, "
             f"{ev.metric}, is in bold.", "", *_table(["Metric", "Value", "Direction"], rows)]
    top = [r for r in ev.importance if isinstance(r["mean"], float)
           and math.isfinite(r["mean"])][:5]
    if top:
        named = ", ".join(f"{_md(r['feature'])} ({_md(r['mean'], 3)})" for r in top)
        lines += [f"Most important features (permutation importance: how much {ev.metric} "
                  f"worsens when the feature is shuffled): {named}.", ""]
    return lines


def _slices(ev: Evaluation) -> list[str]:
    lines = ["## Per-slice performance and fairness", ""]
    if not ev.slices:
        return [*lines, "No sensitive columns were evaluated: performance across groups of "
                "people is unknown. Name them in `data.sensitive` to have it measured.", ""]
    rates = [k for k in ("positive_rate", "tpr", "fpr") if ev.task == "binary"]
    for column, rows in ev.slices.items():
        table = [(r["value"], r["n"], f"{r['share']:.1%}",
                  *((r.get(k) for k in (ev.metric, *rates)) if not r["skipped"]
                    else ["too few rows"] * (1 + len(rates)))) for r in rows]
        fair = ev.fairness.get(column, {})
        gap = fair.get("largest_gap")
        lines += [f"### {_md(column)}", "",
                  *_table(["Slice", "Rows", "Share", ev.metric, *rates], table),
                  f"- Demographic parity difference: "
                  f"{_md(fair.get('demographic_parity_difference'), 3)}",
                  f"- Equalized odds difference: "
                  f"{_md(fair.get('equalized_odds_difference'), 3)}",
                  f"- Largest {ev.metric} gap: " + (
                      f"{_md(gap['value'], 3)} (best {_md(gap['best_slice'])}, worst "
                      f"{_md(gap['worst_slice'])})" if gap else "—"), ""]
    return [*lines, f"Slices with fewer than {ev.min_slice_rows} test rows are not scored.", "",
            *_fairness(ev)]


def _ci(ci: Any) -> str:
    return f"[{_md(ci[0], 3)}, {_md(ci[1], 3)}]" if ci and ci[0] is not None else "—"


def _fairness(ev: Evaluation) -> list[str]:
    """fairlearn's differences and ratios with their intervals, and the spec's limits."""
    lines = []
    rows = [(column, name, _md(m.get("value"), 3), _ci(m.get("ci")))
            for column, fair in ev.fairness.items()
            for name, m in (fair.get("metrics") or {}).items()]
    if rows:
        lines += ["### Fairness metrics", "",
                  *_table(["Sensitive column", "Metric", "Value", "95% bootstrap interval"],
                          rows)]
    checked = ev.fairness_limits
    if not checked:
        return lines
    lines += ["### Fairness limits", "",
              *_table(["Limit", "Sensitive column", "Value", "95% bootstrap interval",
                       "Result"],
                      [(r["limit"], r["column"], _md(r["value"], 3), _ci(r["ci"]),
                        "met" if r["passed"] else "**broken**") for r in checked["limits"]])]
    mitigation = checked.get("mitigation")
    if mitigation:
        met = "meets" if mitigation["passed"] else "does not meet"
        lines += [f"Mitigation: fairlearn's ThresholdOptimizer ({mitigation['constraint']}, "
                  f"thresholds per group fitted on {mitigation['fitted_on']}) {met} the "
                  f"limits, with test {mitigation['metric']} {_md(mitigation['score'], 4)} "
                  f"(a cost of {_md(mitigation['cost'], 4)}). It was not registered: "
                  f"{mitigation['note']}.", ""]
    elif not checked["passed"]:
        lines += ["No mitigation was tried (fairness.mitigate: none).", ""]
    return lines


def _caveats(ev: Evaluation, findings: Sequence[Finding]) -> list[str]:
    items = [f"**{_md(f.check)}** ({f.severity}): {_md(f.message)}" for f in findings
             if f.severity in (Severity.WARN, Severity.FAIL)]
    for column, fair in ev.fairness.items():
        for key in ("demographic_parity_difference", "equalized_odds_difference"):
            value = fair.get(key)
            if value is not None and value > FAIRNESS_GAP_WARNING:
                items.append(f"**{key.replace('_', ' ')}** of {value:.3f} across "
                             f"{_md(column)} (above {FAIRNESS_GAP_WARNING}).")
        small = [r["value"] for r in ev.slices.get(column, []) if r["skipped"]]
        if small:
            items.append(f"{len(small)} slice(s) of {_md(column)} had too few test rows to "
                         "be scored: " + ", ".join(_md(v) for v in small) + ".")
    if not items:
        items = ["No warnings were raised by the validation and leakage checks."]
    return ["## Caveats and warnings", "", *(f"- {i}" for i in items), ""]


def render_card(*, name: str, version: int | None, evaluation: Evaluation,
                summary: Mapping[str, Any], data: Mapping[str, Any] | None = None,
                findings: Sequence[Finding] = (), intended_use: str | None = None,
                privacy: Mapping[str, Any] | None = None,
                llm: Mapping[str, Any] | None = None) -> str:
    """The model card of one model version, as Markdown.

    Args:
        name: The registered model name.
        version: Its version number (None before registration).
        evaluation: The test-split evaluation.
        summary: Run facts: ``model_type``, ``run_id``, ``time``, ``code_version``,
            ``dataset``, ``dataset_digest``, ``rows``, ``alias`` (for the load example);
            matched leniently (``"run id"`` is ``run_id``), other keys are ignored.
        data: Dataset facts: ``name``, ``digest``, ``rows``, ``columns`` (column ->
            {kind, ...}), ``class_balance``; they win over the same facts in ``summary``.
        findings: Validation and leakage findings; warnings and failures become caveats.
        intended_use: What the model is for; a marked placeholder when None.
        privacy: The package's privacy record (``policy``, ``columns`` -> {kind, feature,
            handling, prediction_log}, ``sensitive``); the card lists the personal and
            sensitive columns and how each was handled, never a value.
        llm: The LLM features (``model``, ``mode``, ``url``, ``features``: [{name, type,
            ask, categories}]): the card lists each question and the model asked.

    Returns:
        The card's Markdown text.
    """
    summary = split_summary(summary)[0]
    alias = summary.get("alias") or "champion"
    lines = [f"# Model card: {_md(name)}", "", *_details(name, version, evaluation, summary),
             "## Intended use", "", intended_use.strip() if intended_use else PLACEHOLDER, "",
             *_data(evaluation, summary, data or {}), *_llm(llm or {}),
             *_privacy(privacy or {}), *_evaluation(evaluation),
             *_slices(evaluation), *_caveats(evaluation, findings),
             "## How to load", "", "```python", "import forgeline as fl", "",
             f"model = fl.load_model({json.dumps(f'{name}@{alias}')})",
             "predictions = model.predict(frame)  # checks the input against the signature"]
    if version is not None:
        lines.append(f"# this exact version: fl.load_model({json.dumps(f'{name}/{version}')})")
    return "\n".join([*lines, "```", ""])
