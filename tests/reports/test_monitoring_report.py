"""The monitoring HTML report: one offline file, every section, every user string escaped,
rendered from a real ``monitor()`` run's JSON form."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from forgeline.errors import InvalidInput
from forgeline.monitoring import MonitorConfig, monitor
from forgeline.reports import monitoring_plots as plots
from forgeline.reports import render_monitor_report
from tests.monitoring.conftest import FEATURES, Model, log_frame, make_frame
from tests.reports.conftest import EVIL, offline_page

SECTIONS = ["Summary", "Alerts", "Data drift", "Drift over time", "Prediction drift",
            "Multivariate drift", "Data quality", "Performance"]


def test_the_report_is_offline_complete_and_escaped(model: Model, tmp_path: Path) -> None:
    log, y = log_frame(model, 4_000, 81, shifted=True, days=4)
    log.loc[:99, "c2"] = EVIL  # an unseen category: in a finding and the quality table
    reference = make_frame(3_000, 82)[FEATURES]
    reference.loc[:599, "c0"] = EVIL  # a reference category: in the bins of a plot
    labels = pd.DataFrame({"request_id": [*log["request_id"][:1000], EVIL],
                           "y": [*y[:1000], 1]})
    config = MonitorConfig(rules=(f'psi."{EVIL}" > 1', "dataset_drift > 0.1"))
    result = monitor(model.predictor, log, labels=labels, config=config)
    path = render_monitor_report(result, tmp_path / "out" / "monitor.html",
                                 title=f"{EVIL} report")
    html = offline_page(path, SECTIONS)
    assert EVIL not in html  # title, category, rule, label id in a warning
    assert "&lt;script&gt;alert(1)&lt;/script&gt; report" in html
    assert html.count('class="plotly-graph-div"') >= 25 + 2 + 1 + 1
    assert len(html) < len(get_plotlyjs()) + 1_000_000


def test_a_plain_file_without_times_or_predictions_still_renders(model: Model,
                                                                 tmp_path: Path) -> None:
    result = monitor(model.predictor, make_frame(300, 83)[FEATURES].drop(columns=["n1"]),
                     config=MonitorConfig(window=None))
    html = render_monitor_report(result, tmp_path / "plain.html").read_text(encoding="utf-8")
    assert "No time windows" in html and "No prediction drift" in html
    assert "No performance: the data has no predictions" in html
    assert "n1" in html and "missing from the current data" in html


def test_a_high_cardinality_column_draws_both_other_bars(model: Model, tmp_path: Path) -> None:
    from forgeline.monitoring.binning import OTHER

    result = monitor(model.predictor, make_frame(2_000, 84)[FEATURES],
                     config=MonitorConfig(window=None))
    c3 = result.features["c3"]  # 60 levels: the profile keeps 50, the rest in other_count
    assert len(c3.bins["labels"]) == 51 and c3.bins["reference"][-1] > 0
    features = result.to_dict()["features"]
    reference, current = plots.distribution(features["c3"])["data"]
    assert reference["x"] == current["x"] and len(reference["x"]) == plots.MAX_CATEGORIES + 1
    assert reference["x"][-1] == OTHER and reference["y"][-1] > 0 and current["y"][-1] > 0
    assert sum(reference["y"]) == pytest.approx(1.0) and sum(current["y"]) == pytest.approx(1.0)
    assert reference["x"][:3] == ["m00", "m01", "m02"]  # the largest categories are drawn
    assert "38 smaller ones not drawn" in reference["customdata"][-1]
    # every category of c2 is in the profile: no empty (other) bar
    reference, _ = plots.distribution(features["c2"])["data"]
    assert reference["x"] == ["x", "y", "z"]


def test_plot_titles_are_html_headings_and_the_mode_bar_stays_out_of_the_way(
        model: Model, tmp_path: Path) -> None:
    log, _ = log_frame(model, 2_000, 85, shifted=True, days=4)
    html = render_monitor_report(monitor(model.predictor, log), tmp_path / "m.html"
                                 ).read_text("utf-8")
    assert '<h4>c0 <span class="sub bad">' in html and '<h4>n2 <span class="sub">' in html
    assert '<h4>Predictions <span class="sub' in html
    assert "<h4>Dataset drift by window: share of drifted features</h4>" in html
    assert html.count("Dataset drift by window: share of drifted features") == 1  # not in the plot
    assert '"displayModeBar": "hover"' in html and '"showSendToCloud": false' in html
    assert '"sendChartToCloud"' in html  # in the buttons removed


def test_the_report_renders_from_the_json_form_alone(model: Model, tmp_path: Path) -> None:
    from forgeline.monitoring.binning import OTHER
    from forgeline.monitoring.config import TESTS

    log, y = log_frame(model, 1_500, 86, shifted=True, days=3)
    labels = pd.DataFrame({"request_id": [*log["request_id"][:500], "nobody"],
                           "y": [*y[:500], 1]})
    config = MonitorConfig(column_methods={"n2": "ks", "c2": "chisquare"})  # 2 p-values
    result = monitor(model.predictor, log, labels=labels, config=config)
    data = json.loads(json.dumps(result.to_dict()))  # as a file written by --json holds it
    from_json = render_monitor_report(data, tmp_path / "json.html").read_text("utf-8")
    from_result = render_monitor_report(result, tmp_path / "result.html").read_text("utf-8")
    assert from_json == from_result  # "generated" comes from the result: the same bytes
    # what the page needs of the monitoring stage travels in the JSON form
    for name, f in data["features"].items():
        assert f["pvalue"] is (f["method"] in TESTS), name
        assert f["bins"]["other"] == (OTHER if f["kind"] == "categorical" else None), name
    assert data["performance"]["feedback"]["message"] == result.performance.feedback.message
    assert "1 of 501 label ids match no prediction" in from_json
    assert from_json.count('<td class="">&lt; 0.05</td>') == 2
    assert '<td class="">&gt;= 0.1</td>' in from_json


def test_only_a_monitoring_result_or_its_json_form_renders(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as e:
        render_monitor_report(42, tmp_path / "a.html")  # type: ignore[arg-type]
    assert str(e.value) == ("Cannot render a monitoring report from a value of type int. "
                            "Pass a monitoring result or its to_dict().")
    with pytest.raises(InvalidInput) as e:
        render_monitor_report({"model": "m", "rows": 3}, tmp_path / "b.html")
    assert str(e.value).startswith("Cannot render a monitoring report: the result has no "
                                   "task, period, config, features, dataset, quality, ")
    assert not list(tmp_path.iterdir())


def test_long_feature_names_with_one_prefix_stay_apart_on_an_axis() -> None:
    names = ["customer_account_balance_last_30_days", "customer_account_balance_last_90_days",
             "<b>bold</b>"]
    feature = {"reference": 1.0, "current": 1.0, "share_change": 0.0}
    fig = plots.attribution({"features": dict.fromkeys(names, feature), "units": "log-odds",
                             "drifted_features": []})
    y = fig["data"][0]["y"]
    assert len(set(y)) == 3 and all(len(label) <= 28 for label in y)
    assert "customer_acco…_last_30_days" in y and "&lt;b&gt;bold&lt;/b&gt;" in y
