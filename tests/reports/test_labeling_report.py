"""The labelling HTML report, rendered from ``labels.json`` (the labelling run's JSON form):
one offline file, every section, every user string escaped, the parts a run may lack said
in words, many sources still readable; and the page in a real browser."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from forgeline.errors import InvalidInput
from forgeline.reports import labeling_plots as plots
from forgeline.reports import render_labeling_report
from tests.reports.conftest import EVIL, offline_page
from tests.server.ui.conftest import browser  # noqa: F401  (a fixture: Chromium)

ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
SECTIONS = ["Summary", "Sources", "Confidence threshold", "Classes", "LLM labeller",
            "Likely label errors", "Review queue"]

FULL: dict[str, Any] = {
    "name": "tweets", "created": "2026-12-04T20:00:00+00:00", "rows": 1000,
    "classes": ["negative", "neutral", EVIL],
    "dataset": {"digest": "sha256:9f2c1e0b7a4d5e6f0011", "name": "tweets-labelled",
                "source": "data/tweets.csv", "num_rows": 820},
    "label_model": {"name": "dawid_skene", "reason": "more accurate than majority vote on gold",
                    "threshold": 0.8, "labelled": 820, "coverage": 0.82,
                    "accuracy": 0.914, "majority_accuracy": 0.87,
                    "best_source": {"name": "lf_negative_words", "accuracy": 0.89,
                                    "coverage": 0.33},
                    "class_counts": {"negative": 500, "neutral": 200, EVIL: 120}},
    "gold": {"rows": 120, "source": "column human_label"},
    "sources": [
        {"name": "lf_negative_words", "kind": "function", "version": "178ca49c99dd0000ffff",
         "coverage": 0.334, "overlap": 0.316, "conflict": 0.118, "accuracy": 0.892,
         "gold_votes": 93, "errors": 0, "error_examples": []},
        {"name": EVIL, "kind": "function", "version": "bfd23bd579240000", "coverage": 0.177,
         "overlap": 0.166, "conflict": 0.087, "accuracy": 0.574, "gold_votes": 47,
         "errors": 3, "error_examples": [f"KeyError: {EVIL}"]},
        {"name": "llm:gemma", "kind": "llm", "version": "gemma-3-270m@ab12", "coverage": 0.908,
         "overlap": 0.534, "conflict": 0.187, "accuracy": 0.841, "gold_votes": 110,
         "errors": 7, "error_examples": ["timeout after 30 s"]}],
    "agreement": {"sources": ["lf_negative_words", EVIL, "llm:gemma"],
                  "matrix": [[1.0, 0.0, 0.75], [0.0, 1.0, None], [0.75, None, 1.0]]},
    "thresholds": [{"threshold": t, "coverage": c, "accuracy": a} for t, c, a in
                   ((0.5, 0.96, 0.874), (0.7, 0.876, 0.878), (0.8, 0.82, 0.914),
                    (0.9, 0.62, 0.92), (0.99, 0.063, None))],
    "llm": {"model": "gemma-3-270m", "url": "http://127.0.0.1:8089/v1", "mode": "logprobs",
            "prompt_digest": "5d41402abc4b2a76b971", "rows": 1000, "requests": 740,
            "cache_hits": 260, "prompt_tokens": 412345, "completion_tokens": 740,
            "seconds": 121.5, "rows_per_s": 8.23, "errors": {"timeout": 4, "not_a_label": 3},
            "kappa": 0.62, "kappa_rows": 110},
    "suspects": [{"id": "s17", "given": "neutral", "suggested": "negative", "score": 0.93,
                  "text": f"worst flight ever {EVIL}"}],
    "review": [{"id": "r42", "reason": "disagreement", "label": "negative",
                "confidence": 0.51, "text": f"on hold for hours {EVIL}"},
               {"id": "r43", "reason": "uncertainty", "label": None, "confidence": 0.34,
                "text": "meh"}],
}

MINIMAL: dict[str, Any] = {
    "name": "plain", "created": "2026-12-04T20:00:00+00:00", "rows": 50,
    "classes": ["no", "yes"], "dataset": None,
    "label_model": {"name": "majority", "reason": "no gold labels to compare the models on",
                    "threshold": 0.0, "labelled": 40, "coverage": 0.8, "accuracy": None,
                    "majority_accuracy": None, "best_source": None,
                    "class_counts": {"no": 25, "yes": 15}},
    "gold": None,
    "sources": [{"name": "lf_only", "kind": "function", "version": "abc", "coverage": 0.8,
                 "overlap": 0.0, "conflict": 0.0, "accuracy": None, "gold_votes": 0,
                 "errors": 0, "error_examples": []}],
    "agreement": {"sources": ["lf_only"], "matrix": [[1.0]]},
    "thresholds": [{"threshold": 0.5, "coverage": 0.8, "accuracy": None},
                   {"threshold": 0.9, "coverage": 0.8, "accuracy": None}],
    "llm": None, "suspects": [], "review": [],
}


def many_sources(n: int = 25, k: int = 5) -> dict[str, Any]:
    """FULL with ``n`` sources (long names) and ``k`` classes."""
    s = copy.deepcopy(FULL)
    s["classes"] = [f"class_{i}" for i in range(k)]
    s["label_model"]["class_counts"] = {f"class_{i}": 100 + i for i in range(k)}
    names = [f"lf_a_rather_long_labelling_function_name_{i:02d}" for i in range(n)]
    s["sources"] = [{**FULL["sources"][0], "name": name, "coverage": i / n}
                    for i, name in enumerate(names)]
    s["agreement"] = {"sources": names,
                      "matrix": [[None if (i + j) % 7 == 0 else 0.5 for j in range(n)]
                                 for i in range(n)]}
    return s


def _plots(html: str) -> int:
    return html.count('class="plotly-graph-div"')


def test_the_full_report_is_offline_complete_and_escaped(tmp_path: Path) -> None:
    path = render_labeling_report(FULL, tmp_path / "out" / "labels.html",
                                  title=f"{EVIL} labels")
    html = offline_page(path, SECTIONS)
    assert EVIL not in html  # title, class, source name, error example, texts
    assert f"{ESCAPED} labels" in html and f"KeyError: {ESCAPED}" in html
    # summary: the model shipped and why, accuracies, the output data set
    assert "Dawid-Skene: more accurate than majority vote on gold" in html
    assert "91.4%" in html and "87.0%" in html
    assert "lf_negative_words: 89.0% accurate on 93 gold votes, 33.0% coverage" in html
    assert "tweets-labelled (sha256:9f2c1e0b7a4d…, 820 rows) from data/tweets.csv" in html
    # sources: version cut short, accuracy with its gold votes, errors counted
    assert "178ca49c99dd…" in html and "89.2% (93)" in html and "timeout after 30 s" in html
    assert html.count('class="sev-fail"') == 2
    # the chosen threshold's row is marked; the LLM's figures and kappa band
    assert re.search(r'<tr class="best"><td class="num">0.8</td>', html)
    assert "260 (26% of rows)" in html
    assert "412,345 in, 740 out" in html and "timeout: 4, not_a_label: 3" in html
    assert "0.620 on 110 rows with a human label: substantial agreement" in html
    assert "s17" in html and "0.93" in html and "r42" in html and "disagreement" in html
    # accuracy bars, rates, accuracy per source, agreement, 2 threshold plots, classes, kappa
    assert _plots(html) == 8


def test_a_run_without_gold_llm_or_labels_says_what_is_missing(tmp_path: Path) -> None:
    html = render_labeling_report(MINIMAL, tmp_path / "m.html").read_text(encoding="utf-8")
    for heading in SECTIONS:
        assert f"<h2>{heading}</h2>" in html
    assert "none: accuracies need gold labels" in html
    assert "No gold labels: source accuracies are not known" in html
    assert "Accuracy at each threshold needs gold labels; only coverage is shown" in html
    assert "No pairwise agreement: it needs two sources or more" in html
    assert "No LLM labeller was used in this run" in html
    assert "No suspects" in html and "The review queue is empty" in html
    assert "(unlabelled)" in html  # 10 of the 50 rows
    # rates per source, coverage by threshold, classes: no accuracy plots, no kappa
    assert _plots(html) == 3
    fig = plots.by_threshold(MINIMAL["thresholds"], 0.0)
    assert [t["name"] for t in fig["data"]] == ["coverage"] and "shapes" not in fig["layout"]


def test_the_llm_section_without_gold_explains_the_missing_kappa(tmp_path: Path) -> None:
    s = {**MINIMAL, "llm": {**FULL["llm"], "kappa": None, "kappa_rows": 0,
                            "errors": {}, "mode": "json"}}
    html = render_labeling_report(s, tmp_path / "l.html").read_text(encoding="utf-8")
    assert "No Cohen&#39;s kappa: it needs human (gold) labels" in html
    assert "chat, answer in a JSON schema" in html and "Rows with errors</th><td>none" in html


def test_many_sources_and_classes_stay_readable() -> None:
    s = many_sources(25, 5)
    rates = plots.source_rates(s["sources"])
    assert rates["layout"]["height"] >= 25 * 24
    bars = rates["data"][0]
    assert bars["y"][0].endswith("_24")  # the most covering on top
    assert len(set(bars["y"])) == 25 and all(len(label) <= 28 for label in bars["y"])
    heat = plots.agreement(s["agreement"])
    assert heat["layout"]["height"] >= 25 * 26 and "texttemplate" not in heat["data"][0]
    assert "texttemplate" in plots.agreement(FULL["agreement"])["data"][0]
    classes = plots.class_counts(s["label_model"]["class_counts"], s["classes"], 30)
    assert classes["data"][0]["y"] == [*s["classes"], "(unlabelled)"]
    # a user's name reaches plotly with its tags escaped (plotly reads <b>, <a> in labels)
    assert plots.source_rates(FULL["sources"])["data"][0]["y"][2].startswith("&lt;script")


def test_a_shipped_majority_vote_is_drawn_once_and_small_spans_are_widened() -> None:
    lm = {**FULL["label_model"], "name": "majority", "accuracy": 0.87}
    bars = plots.accuracy_bars(lm, FULL["sources"])["data"][0]
    assert bars["y"] == ["label model (majority)", "best source: lf_negative_words"]
    assert bars["text"] == ["87.0%", "89.0% of 93 votes"]
    lines = plots.source_accuracy(FULL["sources"], lm)["layout"]["shapes"]
    assert [line["name"] for line in lines] == ["label model (majority): 87.0%"]
    # accuracies 89.6% to 89.9%: the axis spans 5 points (+ margins), not 0.3
    points = [{"threshold": t, "coverage": c, "accuracy": a}
              for t, c, a in ((0.5, 0.672, 0.896), (0.6, 0.61, 0.899), (0.7, 0.585, 0.898))]
    fig = plots.tradeoff(points, 0.7)
    low, high = fig["layout"]["yaxis"]["range"]
    assert low < 0.896 and high > 0.899 and high - low == pytest.approx(0.06)
    assert "range" not in fig["layout"]["xaxis"]  # 8.7 points of coverage: plotly's own
    assert fig["data"][1]["x"] == [0.585]  # the chosen threshold's star


@pytest.mark.parametrize(("value", "word"), [(-0.1, "poor"), (0.0, "poor"), (0.15, "slight"),
                                             (0.41, "moderate"), (0.62, "substantial"),
                                             (0.95, "almost perfect")])
def test_kappa_words_follow_landis_and_koch(value: float, word: str) -> None:
    assert plots.kappa_band(value) == word


@pytest.mark.parametrize(("summary", "missing"), [
    ({k: v for k, v in FULL.items() if k != "label_model"}, "label_model"),
    ({**FULL, "label_model": {"name": "majority"}}, "label_model.threshold"),
    ({**FULL, "sources": [{"kind": "llm"}]}, "sources[0].name"),
    ({**FULL, "sources": "lf_a"}, "sources (a list)"),
    ([FULL], "of type list"),
])
def test_a_summary_that_is_not_a_labelling_run_is_refused(summary: Any, missing: str,
                                                          tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=re.escape(missing)) as e:
        render_labeling_report(summary, tmp_path / "x.html")
    assert "labels.json" in (e.value.hint or "")
    assert not (tmp_path / "x.html").exists()


def test_the_page_draws_every_plot_in_a_browser(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    summary = many_sources(25, 5)
    summary["sources"] = [*FULL["sources"], *summary["sources"]]  # with the hostile name
    path = render_labeling_report(summary, tmp_path / "page.html")
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("dialog", lambda d: errors.append(f"dialog: {d.message}"))
    try:
        page.goto(path.resolve().as_uri())
        page.wait_for_load_state("load")
        count = page.locator(".plotly-graph-div").count()
        assert count == 8
        page.wait_for_function(
            f"document.querySelectorAll('.plotly-graph-div .main-svg').length >= {count}")
        # every plot has drawn marks: bars, heatmap cells, lines or the kappa marker
        drawn = page.eval_on_selector_all(
            ".plotly-graph-div", "ds => ds.map(d => d.querySelectorAll("
            "'.point, .hm image, .hm rect, .scatterlayer path.js-line').length)")
        assert all(n > 0 for n in drawn), drawn
        # the hostile source name shows as text in a tick label, not as markup
        ticks = page.eval_on_selector_all(".ytick text", "ts => ts.map(t => t.textContent)")
        assert EVIL in ticks
    finally:
        context.close()
    assert not errors, errors
