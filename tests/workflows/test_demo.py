"""``forgeline demo``: the whole story at a tiny scale, for real (a ``forgeline serve``
process on loopback, real training, the prediction log, labels, a retraining cycle)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import forgeline as fl
from forgeline.cli import app
from forgeline.config import load_settings
from forgeline.errors import InvalidInput
from forgeline.examples.fraud import fraud_spec, generate
from forgeline.store.predictions import labelled_predictions, prediction_log_root, read_predictions
from forgeline.training.spec import load_spec
from forgeline.workflows.demo import MARKER, DemoConfig, run_demo
from tests.demorun import TINY, DemoRun

ROOT = Path(__file__).parents[2]


def test_the_whole_story(demo_run: DemoRun) -> None:
    home, result = demo_run.home, demo_run.result
    text = " ".join(demo_run.output.split())
    assert [s.name for s in result.steps] == ["Generate", "Train", "Serve", "Traffic",
                                              "Monitor", "Labels", "Retrain", "Switch"]
    # the server answered every request with the champion, and logged each one
    assert result.url.startswith("http://127.0.0.1:") and result.served_version == 1
    answers = pd.read_parquet(home / "data" / "answers.parquet")
    assert len(answers) == 400 and answers["request_id"].is_unique
    assert set(answers["version"]) == {1}
    client = fl.Client(f"sqlite:///{home / 'forgeline.db'}")
    settings = load_settings(home=home)
    logged = read_predictions(prediction_log_root(settings), "fraud")
    assert set(answers["request_id"]) <= set(logged["request_id"])
    # the monitor fired the rule and wrote its report
    assert result.alerts == ["dataset_drift > 0.3"]
    assert (home / "reports" / "fraud-monitor.html").stat().st_size > 10_000
    # its windows follow when the transactions happened (a month), not when they were sent
    monitored = next(s for s in result.steps if s.name == "Monitor")
    assert "windowed by event time: ts" in monitored.result
    page = (home / "reports" / "fraud-monitor.html").read_text("utf-8")
    assert "event time: ts (when the rows happened" in page
    assert re.search(r"2025-05-0\d\S* to 2025-05-[23]\d", page)
    # and the check is in the monitoring history (what the web UI charts)
    [record] = client.get_monitoring_history("fraud")
    assert record.source == "monitor" and record.alerts == ("dataset_drift > 0.3",)
    assert record.clock.startswith("event time") and record.report.endswith("fraud-monitor.html")
    # the labels joined the logged predictions by request id
    assert result.labels == 400
    labelled = labelled_predictions(settings, "fraud")
    assert len(labelled) >= 400
    # a decision was recorded, with its evidence
    d = result.decision
    assert d.action in ("promoted", "kept") and d.triggers_fired == ["dataset_drift > 0.3"]
    assert d.challenger == 2 and d.rows["gate"] == 150
    recorded = json.loads((home / "reports" / "retrain" / "decision.json").read_text())
    assert recorded["action"] == d.action and recorded["run_id"] == d.run_id
    # the spec's fairness limit was checked on both models, by the age band the requests
    # carried (logged in clear beside the inputs: a group, not personal data)
    assert set(recorded["fairness"]) == {"champion", "challenger", "broken"}
    [limit] = recorded["fairness"]["champion"]
    assert (limit["column"], limit["limit"]) == ("age_band",
                                                 "demographic_parity_difference <= 0.05")
    if recorded["fairness"]["broken"]:
        assert d.action == "kept" and "breaks fairness limit(s)" in d.reason
    champion = client.get_model_version("fraud@champion").version
    if d.action == "promoted":  # the server switched without a restart
        assert d.challenger_score > d.champion_score + 0.01
        assert champion == 2 and result.final_version == 2 and result.switches == 1
        assert "fraud@champion moved: now serving fraud/2" in (home / "server.log").read_text()
        assert "replaced it; the server answers with fraud/2" in text
    else:  # nothing faked: the champion stays, and the story says so
        assert champion == 1 and result.final_version == 1
        assert "stays champion" in text
    assert "The story" in text and "Total" in text
    assert demo_run.home_env_after is None  # the story's environment is undone


def test_a_store_it_did_not_make_is_left_alone(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    (mine / "reports").mkdir(parents=True)
    (mine / "forgeline.db").write_text("not the demo's")
    with pytest.raises(InvalidInput, match="did not make"):
        run_demo(DemoConfig(home=mine, **TINY))
    assert (mine / "forgeline.db").read_text() == "not the demo's"
    assert not (mine / MARKER).exists()


def test_an_earlier_demo_is_cleared_and_other_files_kept(tmp_path: Path) -> None:
    from forgeline.workflows.demo import _fresh_home

    home = tmp_path / "demo"
    home.mkdir()
    (home / "notes.txt").write_text("keep me")
    _fresh_home(home)  # no store or data of its own there yet: used as it is
    (home / "reports").mkdir()
    (home / "reports" / "old.html").write_text("old")
    (home / "forgeline.db").write_text("old")
    _fresh_home(home)  # now the marker says the demo made them
    assert not (home / "forgeline.db").exists() and not (home / "reports").exists()
    assert (home / "notes.txt").read_text() == "keep me" and (home / MARKER).exists()


def test_cli_refuses_a_bad_rule_before_any_work(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--home", str(tmp_path / "d"), "--rule",
                                      "dataset_drift >"])
    assert result.exit_code != 0
    assert not (tmp_path / "d").exists()


def test_the_example_spec_is_the_demo_spec() -> None:
    raw = yaml.safe_load((ROOT / "examples" / "fraud" / "spec.yaml").read_text())
    assert load_spec(raw, ("data.path=x.parquet",)) == load_spec(fraud_spec("x.parquet"))


def test_the_pattern_shift_only_adds_new_fraud_on_mobile_after_the_drift() -> None:
    kwargs = dict(days=150, drift=1.0, drift_start=0.84, drift_end=0.9, seed=3)
    before = generate(20_000, **kwargs)
    after = generate(20_000, pattern_shift=2.0, **kwargs)
    others = [c for c in before.columns if c != "is_fraud"]
    pd.testing.assert_frame_equal(before[others], after[others])
    new = (after["is_fraud"] == 1) & (before["is_fraud"] == 0)
    assert (after["is_fraud"] >= before["is_fraud"]).all() and new.sum() > 100
    start = before["ts"].iloc[0].normalize() + pd.Timedelta(days=126)
    assert (before.loc[new, "ts"] >= start).all()  # nothing before the drift begins
    assert (before.loc[new, "channel"] == "mobile").mean() > 0.6


def test_without_the_new_options_the_data_is_what_it_was() -> None:
    # figures of the generator before drift_start, drift_end and pattern_shift existed
    frame = generate(3000, drift=0.7, seed=1)
    assert round(frame["amount"].sum(), 2) == 152933.67 and frame["is_fraud"].sum() == 25
    assert frame["channel"].value_counts().to_dict() == {"pos": 1144, "online": 1092,
                                                         "mobile": 764}
    with pytest.raises(InvalidInput, match="drift"):
        generate(100, drift_start=0.9, drift_end=0.5)
