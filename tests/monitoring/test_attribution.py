"""Attribution drift: the packaged model explains production rows, compared with the
attributions it was packaged with."""

from __future__ import annotations

from pathlib import Path

import pytest

from forgeline.errors import InvalidSpec
from forgeline.monitoring import MonitorConfig, monitor
from forgeline.packaging import load_model
from forgeline.reports import render_monitor_report
from tests.cli.conftest import invoke
from tests.monitoring.conftest import FEATURES, Model, make_frame
from tests.reports.test_explain_report import figures
from tests.smallmodel import package_on, transactions

CONFIG = MonitorConfig(window=None, rules=("attribution_drifted == 1",))


def test_rows_drawn_like_the_reference_move_no_attribution(model: Model) -> None:
    result = monitor(model.predictor, make_frame(3_000, 7)[FEATURES], config=CONFIG)
    a = result.attribution
    assert a is not None and result.warnings == []
    assert a.rows == 1_000 and a.reference_rows == 1_000 and a.units == "log-odds"
    assert a.drifted_features == [] and a.largest_share_change < CONFIG.attribution_share_change
    # the model decides on n0, n2 and c0 (make_frame's logit), in production as in training
    assert {c for c, f in a.features.items() if f["current_rank"] <= 3} == {"n0", "n2", "c0"}
    assert result.fired == []
    assert result.to_dict()["attribution"]["drifted"] is False


def test_a_scaled_feature_takes_over_the_attribution(model: Model, tmp_path: Path) -> None:
    current = make_frame(3_000, 7)[FEATURES]
    current["n2"] = 10 + (current["n2"] - 10) * 4  # the same model now reacts 4x to n2
    result = monitor(model.predictor, current, config=CONFIG)
    a = result.attribution
    assert a is not None and a.drifted_features[0] == "n2"
    n2 = a.features["n2"]
    assert n2["current"] == pytest.approx(4 * n2["reference"], rel=0.15)
    assert n2["share_change"] > 0.2 and n2["current_rank"] == 1 and n2["rank_change"] >= 1
    assert [f.rule for f in result.fired] == ["attribution_drifted == 1"]
    values = result.values()
    assert values["attribution_drifted"] == 1.0
    assert values["attribution_change.n2"] == pytest.approx(n2["share_change"])
    data = result.to_dict()["attribution"]
    assert data["drifted"] is True and data["features"]["n2"]["drifted"] is True

    html = render_monitor_report(result, tmp_path / "m.html").read_text()
    assert '<section id="attribution"><h2>Attribution drift</h2>' in html
    (title,) = [t for t in figures(html) if t.startswith("Attribution drift")]
    bars = figures(html)[title]["data"]
    assert [b["name"] for b in bars] == ["reference (test split)", "current"]
    top = bars[1]["y"][-1]
    assert top == "n2" and bars[1]["x"][-1] == pytest.approx(n2["current"])
    assert bars[0]["x"][-1] == pytest.approx(n2["reference"])


def test_a_package_without_reference_attributions_warns(tmp_path: Path) -> None:
    train = transactions(300)
    predictor = load_model(package_on(train, tmp_path / "old"))  # no attributions.json
    result = monitor(predictor, transactions(200, seed=1), reference=train,
                     config=MonitorConfig(window=None))
    assert result.attribution is None
    assert any("no reference attributions" in w for w in result.warnings)
    html = render_monitor_report(result, tmp_path / "m.html").read_text()
    assert "No attribution drift: the model package has no reference attributions" in html


def test_attribution_settings_are_checked() -> None:
    with pytest.raises(InvalidSpec, match="attribution_share_change"):
        MonitorConfig(attribution_share_change=0)
    with pytest.raises(InvalidSpec, match="attribution_rows"):
        MonitorConfig(attribution_rows=-1)


def test_the_cli_prints_the_features_that_moved(model: Model, tmp_path: Path) -> None:
    current = make_frame(2_000, 9)[FEATURES]
    current["n2"] = 10 + (current["n2"] - 10) * 4
    current.to_csv(tmp_path / "cur.csv", index=False)
    args = ("monitor", str(model.path), "--current", str(tmp_path / "cur.csv"), "-o",
            str(tmp_path / "r.html"))
    result = invoke(*args, "--rule", "attribution_drifted == 1", "--fail-on-alert")
    assert result.exit_code == 1, result.output
    assert "Attribution drift: n2 (share +" in result.output
    bad = invoke(*args, "--attribution-change", "1.5")
    assert bad.exit_code == 2 and "attribution_share_change must lie in (0, 1)" in bad.output
    assert "Traceback" not in bad.output
