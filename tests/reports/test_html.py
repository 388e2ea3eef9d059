"""render_report: one offline HTML file, every section, every user string escaped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from plotly.offline import get_plotlyjs

from forgeline.reports import render_report
from tests.reports.conftest import EVIL

SECTIONS = ["Summary", "Data", "Findings", "Tuning", "Test metrics", "Diagnostic plots",
            "Feature importance", "Slices and fairness"]
TRIALS = [{"number": i, "model": "linear", "score": 0.9 + 0.01 * (i % 4), "state": "COMPLETE",
           "params": {"C": 10.0 ** -i, "note": EVIL}} for i in range(6)]
TRIALS.append({"number": 6, "model": "hgb", "score": None, "params": {}, "state": "PRUNED"})


def _render(tmp_path: Path, evaluation, **kwargs) -> str:
    path = render_report(tmp_path / "out" / "report.html", title=f"{EVIL} report",
                         evaluation=evaluation, **kwargs)
    assert path == tmp_path / "out" / "report.html" and path.is_file()
    assert not list(path.parent.glob(".*.tmp"))
    return path.read_text(encoding="utf-8")


def test_binary_report_is_offline_complete_and_escaped(tmp_path, binary_eval, summary, data,
                                                        findings) -> None:
    html = _render(tmp_path, binary_eval, summary=summary, data=data, findings=findings,
                   trials=TRIALS, baseline={"roc_auc": 0.95, "log_loss": 0.5})
    # offline: plotly.js inline exactly once, nothing loaded from elsewhere
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.I)
    assert not re.search(r"<link\b", html, re.I) and "@import" not in html
    assert html.count(get_plotlyjs()[:300]) == 1 and html.count("plotly.js v") == 1
    assert len(html) < len(get_plotlyjs()) + 1_500_000
    for heading in SECTIONS:
        assert f"<h2>{heading}</h2>" in html
    assert EVIL not in html  # title, column name, finding, slice value, trial params
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt; report</title>" in html
    assert "<h1>&lt;script&gt;alert(1)&lt;/script&gt; report</h1>" in html
    # confusion, ROC, PR, calibration, importance, tuning, class balance, 2 slice charts,
    # and 2 charts of the rates per group with their bootstrap intervals
    assert html.count("Plotly.newPlot(") == 11
    for text in ("Confusion matrix", "ROC curve", "Precision-recall curve", "Calibration",
                 "Permutation importance", "roc_auc by sex", "best so far",
                 "Rates by sex, with 95% bootstrap intervals", "95% bootstrap interval"):
        assert text in html
    assert html.index('class="badge fail"') < html.index('class="badge warn"') < html.index(
        'class="badge info"')  # failures first
    assert "3 finding(s): 1 fail, 1 warn, 1 info." in html
    assert ">baseline<" in html and ">0.95<" in html and "r1b2c3" in html
    assert "25.0%" in html and "a|b" in html  # the data table, shares as percentages
    assert "PRUNED" in html and "demographic parity diff" in html


def test_multiclass_and_regression_plots(tmp_path, multiclass_eval, regression_eval,
                                         summary) -> None:
    html = _render(tmp_path, multiclass_eval, summary=summary)
    assert "ROC curves, one class against the rest" in html and "Residual" not in html
    assert "Precision-recall curve" not in html and "Confusion matrix" in html
    html = _render(tmp_path, regression_eval, summary=summary)
    assert "Residuals (true - predicted)" in html and "Residual histogram" in html
    assert "Confusion matrix" not in html and "ROC curve" not in html
    assert "rmse by sex" in html and html.count("plotly.js v") == 1


def test_report_without_optional_parts(tmp_path, regression_eval) -> None:
    html = _render(tmp_path, regression_eval, summary={})
    for heading in SECTIONS:
        assert f"<h2>{heading}</h2>" in html
    for note in ("No per-column statistics were recorded.", "No validation or leakage findings.",
                 "No tuning trials were recorded."):
        assert note in html
    assert ">baseline<" not in html


def test_summary_keys_are_matched_leniently(tmp_path, binary_eval) -> None:
    html = _render(tmp_path, binary_eval, summary={"model name": "cancer", "run id": "r9",
                                                   "test roc_auc": 0.9912})
    assert "<th>Model</th><td>cancer</td>" in html and "<th>Run</th><td>r9</td>" in html
    assert "<th>test roc_auc</th><td>0.9912</td>" in html
    assert "cancer · binary task · run r9" in html


def test_plot_titles_are_headings_above_the_plots(tmp_path, binary_eval, summary) -> None:
    html = _render(tmp_path, binary_eval, summary=summary, trials=TRIALS)
    for title in ("Confusion matrix", "ROC curve", "Calibration", "Tuning: roc_auc by trial"):
        assert f'<div class="plot"><h4>{title}</h4>' in html
        assert html.count(title) == 1  # not also inside the figure, under the mode bar
    assert "<h4>roc_auc by sex</h4>" in html
    assert '"displayModeBar": "hover"' in html and '"showSendToCloud": false' in html


def test_the_page_is_written_atomically(tmp_path) -> None:
    from forgeline.reports._page import write_html

    path = write_html(tmp_path / "a" / "page.html", "<p>one</p>")
    assert path.read_text(encoding="utf-8") == "<p>one</p>"
    write_html(path, "<p>two</p>")
    assert path.read_text(encoding="utf-8") == "<p>two</p>"
    (tmp_path / "dir.html").mkdir()
    with pytest.raises(OSError):  # a folder is in the way: nothing is left half-done
        write_html(tmp_path / "dir.html", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "dir.html"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["page.html"]
