"""One self-contained HTML report of a labelling run; it opens offline, from one file.

Rendered from the run's JSON form (``labels.json``, the artifact ``forgeline label``
writes and ``--json`` prints): the reports stage never imports the labelling stage, as
:mod:`forgeline.reports.monitoring` renders a monitoring run's JSON. Built on the same page
frame, stylesheet, figure rendering, table cells and atomic write (:mod:`._page`,
:mod:`._tables`); every user string (source names, classes, texts, error messages) is
escaped by Jinja2's autoescaping, and in the figures by :mod:`.labeling_plots`.

Sections: a summary (label model shipped and why, accuracy against majority vote and the
best source), the sources (coverage, overlap, conflict, accuracy on gold, errors, pairwise
agreement), the confidence threshold's trade-off, the classes produced, the LLM labeller
(tokens, time, cache hits, Cohen's kappa against humans), the likely label errors and the
head of the review queue. Every part but the summary may be missing (no gold, no LLM, no
existing labels, an empty queue); the section then says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from forgeline.errors import InvalidInput
from forgeline.reports import labeling_plots as plots
from forgeline.reports._page import Figures, render_page, write_html
from forgeline.reports._tables import fmt, num, row, table

__all__ = ["render_labeling_report"]

_SECTIONS = [("summary", "Summary"), ("sources", "Sources"), ("threshold", "Threshold"),
             ("classes", "Classes"), ("llm", "LLM"), ("errors", "Label errors"),
             ("review", "Review queue")]
_REQUIRED = ("name", "rows", "classes", "label_model", "sources")
_MODEL_REQUIRED = ("name", "threshold", "labelled", "coverage")
_MODELS = {"dawid_skene": "Dawid-Skene", "majority": "majority vote"}
_MODES = {"logprobs": "completions, label log-probabilities",
          "json": "chat, answer in a JSON schema"}
_SHORT = 12  # characters of a digest or version shown

Summary = Mapping[str, Any]


def _pct(value: Any) -> str:
    return fmt(value, "share")


def _short(value: Any) -> str:
    """A digest or version cut to :data:`_SHORT` characters after any ``sha256:`` prefix."""
    prefix, _, text = fmt(value).rpartition(":") if str(value).startswith("sha") else (
        "", "", fmt(value))
    cut = text if len(text) <= _SHORT + 1 else text[:_SHORT] + "…"
    return f"{prefix}:{cut}" if prefix else cut


def _accuracy(value: float | None, votes: int | None) -> tuple[str, str]:
    if value is None:
        return "—", "num"
    return f"{value:.1%}" + (f" ({votes:,})" if votes is not None else ""), "num"


def _summary(s: Summary, html: Figures) -> dict[str, Any]:
    lm, gold, ds = s["label_model"], s.get("gold"), s.get("dataset")
    best = lm.get("best_source")
    model = _MODELS.get(lm["name"], lm["name"])
    info = [("Rows", f"{s['rows']:,}"), ("Classes", ", ".join(map(str, s["classes"]))),
            ("Label model", model + (f": {lm['reason']}" if lm.get("reason") else "")),
            ("Confidence threshold", fmt(lm["threshold"])),
            ("Labelled", f"{lm['labelled']:,} rows ({_pct(lm['coverage'])})"),
            ("Gold labels", f"{gold['rows']:,} rows, {gold['source']}" if gold else
             "none: accuracies need gold labels (a label column or a reviewed file)")]
    if gold:
        info += [("Accuracy on gold", _pct(lm.get("accuracy"))),
                 ("Majority vote on gold", _pct(lm.get("majority_accuracy"))),
                 ("Best single source", _best(best, s["sources"]))]
    if ds:
        info.append(("Labelled data set", f"{ds['name']} ({_short(ds['digest'])}, "
                                          f"{ds['num_rows']:,} rows) from {ds['source']}"))
    return {"summary": info, "accuracy_plot": html(plots.accuracy_bars(lm, s["sources"]))}


def _best(best: Mapping[str, Any] | None, sources: Sequence[Mapping[str, Any]]) -> str:
    """The best single source in words, with the gold votes its accuracy rests on."""
    if not best:
        return "—"
    votes = next((x.get("gold_votes") for x in sources if x["name"] == best["name"]), None)
    on = "" if votes is None else f" on {votes:,} gold vote" + ("" if votes == 1 else "s")
    return (f"{best['name']}: {_pct(best['accuracy'])} accurate{on}, "
            f"{_pct(best['coverage'])} coverage")


def _kpis(s: Summary) -> list[tuple[str, str, str]]:
    lm, llm = s["label_model"], s.get("llm")
    kpis = [("rows", f"{s['rows']:,}", ""),
            ("labelled", _pct(lm["coverage"]), ""),
            ("label model", _MODELS.get(lm["name"], lm["name"]), ""),
            ("sources", str(len(s["sources"])), "")]
    if lm.get("accuracy") is not None:
        better = lm.get("majority_accuracy") is None or lm["accuracy"] >= lm["majority_accuracy"]
        kpis.insert(2, ("accuracy on gold", _pct(lm["accuracy"]), "good" if better else ""))
    errors = sum(x.get("errors") or 0 for x in s["sources"])
    if errors:
        kpis.append(("source errors", f"{errors:,}", "bad"))
    if llm and llm.get("kappa") is not None:
        kpis.append(("LLM kappa", f"{llm['kappa']:.2f}", ""))
    return kpis


def _sources(s: Summary, html: Figures) -> dict[str, Any]:
    rows = []
    for x in s["sources"]:
        errors = x.get("errors") or 0
        examples = "; ".join(map(str, x.get("error_examples") or ()))
        rows.append(row(x["name"], x.get("kind") or "—", _short(x.get("version")),
                        num(x["coverage"], "share"), num(x.get("overlap"), "share"),
                        num(x.get("conflict"), "share"),
                        _accuracy(x.get("accuracy"), x.get("gold_votes")),
                        (f"{errors:,}", "num") if errors else ("0", "num"),
                        examples or ("—" if not errors else ""),
                        cls="sev-fail" if errors else ""))
    lm = s["label_model"]
    gold = s.get("gold")
    note = ("Coverage: the share of rows a source labels; overlap: of rows another source "
            "labels too; conflict: of rows another source labels differently. "
            + ("Accuracy on the gold rows a source voted on (votes in brackets)."
               if gold else "No gold labels: source accuracies are not known."))
    figures = [html(plots.source_rates(s["sources"])),
               html(plots.source_accuracy(s["sources"], lm))]
    return {"sources": table(["source", "kind", "version", ("coverage", "num"),
                              ("overlap", "num"), ("conflict", "num"),
                              ("accuracy on gold", "num"), ("errors", "num"),
                              "error examples"], rows),
            "sources_note": note, "source_plots": [f for f in figures if f is not None],
            "agreement_plot": html(plots.agreement(s.get("agreement")))}


def _threshold(s: Summary, html: Figures) -> dict[str, Any]:
    lm, points = s["label_model"], s.get("thresholds") or []
    t = lm["threshold"]
    figures = [html(plots.tradeoff(points, t)), html(plots.by_threshold(points, t))]
    has_gold = any(p.get("accuracy") is not None for p in points)
    labelled = (f"{lm['labelled']:,} rows, {_pct(lm['coverage'])}, have a label"
                + (" counting the gold rows; the grid counts only the label model's labels"
                   if s.get("gold") else ""))
    note = (f"The chosen threshold is {t:g}: rows whose label model confidence is below it "
            f"stay unlabelled ({labelled})." if t > 0 else
            f"No confidence threshold: every row a source voted on has a label ({labelled}).")
    if points and not has_gold:
        note += " Accuracy at each threshold needs gold labels; only coverage is shown."
    rows = [row(num(p["threshold"]), num(p["coverage"], "share"),
                num(p.get("accuracy"), "share"),
                cls="best" if abs(p["threshold"] - t) < 1e-9 else "") for p in points]
    return {"threshold_plots": [f for f in figures if f is not None], "threshold_note": note,
            "thresholds": table([("threshold", "num"), ("coverage", "num"),
                                 ("accuracy on gold", "num")], rows)}


def _classes(s: Summary, html: Figures) -> dict[str, Any]:
    lm = s["label_model"]
    counts = lm.get("class_counts") or {}
    unlabelled = max(s["rows"] - lm["labelled"], 0)
    total = sum(counts.values()) + unlabelled
    rows = [row(c, num(f"{n:,}"), num(n / total if total else None, "share"))
            for c, n in counts.items()]
    if unlabelled:
        rows.append(row("(unlabelled)", num(f"{unlabelled:,}"), num(unlabelled / total,
                                                                       "share"), cls="muted"))
    return {"classes_plot": html(plots.class_counts(counts, s["classes"], unlabelled)),
            "class_table": table(["class", ("rows", "num"), ("share of rows", "num")], rows)}


def _llm(s: Summary, html: Figures) -> dict[str, Any]:
    llm, gold = s.get("llm"), s.get("gold")
    if not llm:
        return {"llm": [], "kappa_plot": None, "kappa_note": "",
                "llm_note": "No LLM labeller was used in this run."}
    rows, hits = llm.get("rows") or 0, llm.get("cache_hits") or 0
    errors = llm.get("errors") or {}
    failed = ", ".join(f"{kind}: {n:,}" for kind, n in errors.items() if n)
    info = [("Model", llm.get("model")), ("Endpoint", llm.get("url")),
            ("Mode", _MODES.get(llm.get("mode"), fmt(llm.get("mode")))),
            ("Prompt digest", _short(llm.get("prompt_digest"))),
            ("Rows", f"{rows:,}"), ("Requests", f"{llm.get('requests') or 0:,}"),
            ("Cache hits", f"{hits:,}" + (f" ({hits / rows:.0%} of rows)" if rows else "")),
            ("Tokens", f"{llm.get('prompt_tokens') or 0:,} in, "
                       f"{llm.get('completion_tokens') or 0:,} out"),
            ("Time", f"{fmt(llm.get('seconds'))} s, {fmt(llm.get('rows_per_s'))} rows/s"),
            ("Rows with errors", failed or "none")]
    k = llm.get("kappa")
    if k is not None:
        note = (f"Cohen's kappa {k:.3f} on {llm.get('kappa_rows') or 0:,} rows with a human "
                f"label: {plots.kappa_band(k)} agreement (Landis & Koch: below 0 poor, to "
                "0.2 slight, 0.4 fair, 0.6 moderate, 0.8 substantial, above almost perfect).")
    elif gold:
        note = "No Cohen's kappa: the LLM answered none of the rows with a human label."
    else:
        note = "No Cohen's kappa: it needs human (gold) labels to compare the LLM with."
    return {"llm": info, "llm_note": "", "kappa_note": note,
            "kappa_plot": html(plots.kappa(k, llm.get("kappa_rows") or 0))}


def _texts(s: Summary) -> dict[str, Any]:
    suspects = [row(x.get("id"), x.get("given"), x.get("suggested"), num(x.get("score")),
                    x.get("text")) for x in s.get("suspects") or ()]
    review = [row(x.get("id"), fmt(x.get("reason")), fmt(x.get("label")),
                  num(x.get("confidence")), x.get("text")) for x in s.get("review") or ()]
    return {"suspects": table(["id", "given", "suggested", ("score", "num"), "text"],
                              suspects),
            "review": table(["id", "reason", "suggested label", ("confidence", "num"), "text"],
                            review)}


def _checked(summary: Any) -> Summary:
    """``summary``, checked for the parts every section reads."""
    hint = "Pass the labels.json that `forgeline label` writes (or prints with --json)."
    if not isinstance(summary, Mapping):
        raise InvalidInput("Cannot render a labelling report from a value of type "
                           f"{type(summary).__name__}.", hint=hint)
    missing = [k for k in _REQUIRED if k not in summary]
    lm = summary.get("label_model")
    if isinstance(lm, Mapping):
        missing += [f"label_model.{k}" for k in _MODEL_REQUIRED if k not in lm]
    elif "label_model" not in missing:
        missing.append("label_model (an object)")
    sources = summary.get("sources")
    if isinstance(sources, Sequence) and not isinstance(sources, str):
        missing += [f"sources[{i}].{k}" for i, x in enumerate(sources)
                    for k in ("name", "coverage") if not isinstance(x, Mapping) or k not in x]
    elif "sources" not in missing:
        missing.append("sources (a list)")
    if missing:
        raise InvalidInput(f"Cannot render a labelling report: the summary has no "
                           f"{', '.join(missing[:8])}.", hint=hint)
    return summary


def render_labeling_report(summary: Summary, path: str | Path, *,
                           title: str | None = None) -> Path:
    """Write the HTML report of a labelling run to ``path`` (replaced atomically).

    Args:
        summary: the run's JSON form (``labels.json``, as a dict or read back from its file).
        path: where the ``.html`` file goes; its folder is created.
        title: the page title (escaped); ``"<name>: labelling report"`` by default.

    Returns:
        ``path``, as a :class:`~pathlib.Path`.

    Raises:
        InvalidInput: ``summary`` is not a labelling run's JSON form.
    """
    s = _checked(summary)
    html = Figures()
    lm = s["label_model"]
    subtitle = " · ".join(str(x) for x in (
        s["name"], f"{s['rows']:,} rows", f"{len(s['classes'])} classes",
        _MODELS.get(lm["name"], lm["name"]), s.get("created")) if x)
    context = {
        "title": title or f"{s['name']}: labelling report", "sections": _SECTIONS,
        "subtitle": subtitle, "kpis": _kpis(s),
        **_summary(s, html), **_sources(s, html), **_threshold(s, html),
        **_classes(s, html), **_llm(s, html), **_texts(s),
    }
    return write_html(Path(path), render_page("labeling.html", context))
