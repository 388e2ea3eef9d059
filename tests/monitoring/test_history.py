"""The monitoring history: ``forgeline monitor`` records each run of a registered model in
the store; ``forgeline monitor history`` and ``Client.get_monitoring_history`` read it."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import pytest

import forgeline as fl
from forgeline.errors import InvalidInput
from forgeline.monitoring.config import MonitorConfig
from forgeline.monitoring.history import record_result, to_record
from forgeline.monitoring.orchestrator import monitor
from forgeline.store import get_store
from forgeline.util.time import now_ms
from tests.cli.conftest import invoke
from tests.monitoring.conftest import (
    FEATURES,
    SHIFTED,
    Model,
    make_frame,
    recent_log,
    write_log,
)


def test_each_run_is_recorded_and_the_history_shows_it(model: Model, registered: Path) -> None:
    write_log(registered, "fraud", recent_log(model, 91, shifted=True))
    before = now_ms()
    first = invoke("monitor", "fraud@champion", "--since", "24h", "--rule",
                   "dataset_drift > 0.1", "-o", "r.html")
    assert first.exit_code == 0, first.output
    second = invoke("monitor", "fraud@champion", "--last", "1000", "-o", "r2.html")
    assert second.exit_code == 0, second.output

    history = fl.Client().get_monitoring_history("fraud", since="7d")
    assert len(history) == 2
    one = next(r for r in history if r.report == str(Path("r.html").resolve()))
    assert one.model == "fraud" and one.version == "1" and one.source == "monitor"
    assert one.rows == 3_000 and one.dataset_drift == pytest.approx(7 / 25)
    assert set(one.drifted) == SHIFTED and set(one.features) == set(FEATURES)
    assert one.alerts == ("dataset_drift > 0.1",) and one.clock == "logging time: ts"
    assert one.prediction_drift is not None and 0.5 < one.estimated["roc_auc"] <= 1.0
    assert one.quality["missing_share.n0"] == 0.0 and one.metrics == {}
    assert one.window_start is not None and one.window_end is not None
    assert before - 21 * 3_600_000 < one.window_start < one.window_end <= one.creation_time
    assert before <= one.creation_time <= now_ms()

    shown = invoke("monitor", "history", "fraud", "--since", "7d")
    assert shown.exit_code == 0, shown.output
    assert "Monitoring history of fraud" in shown.output
    assert "3,000" in shown.output and "1,000" in shown.output and "28%" in shown.output
    assert "dataset_drift > 0.1" in shown.output and "+4 more" in shown.output

    data = json.loads(invoke("monitor", "history", "fraud", "--json").stdout)
    assert [r["record_id"] for r in data] == [r.record_id for r in history]
    assert data[0]["alerts"] == list(history[0].alerts)
    latest = invoke("monitor", "history", "fraud", "--limit", "1", "--json")
    assert [r["record_id"] for r in json.loads(latest.stdout)] == [history[-1].record_id]


def test_the_history_bounds_and_its_mistakes(model: Model, registered: Path) -> None:
    empty = invoke("monitor", "history", "fraud", "--since", "2d")
    assert empty.exit_code == 0
    assert "No monitoring runs recorded for fraud since 2d. Run `forgeline monitor fraud` " \
           "to record one." in empty.output
    bad = invoke("monitor", "history", "fraud", "--since", "yesterday")
    assert bad.exit_code == 2 and "error: Invalid --since 'yesterday': expected a time." \
        in bad.output
    assert "Traceback" not in bad.output
    name = invoke("monitor", "history", "fraud@champion")
    assert name.exit_code == 2 and "Invalid model name 'fraud@champion'" in name.output


def test_a_bare_package_is_monitored_without_recording(model: Model) -> None:
    make_frame(800, 92)[FEATURES].to_csv("current.csv", index=False)
    result = invoke("monitor", str(model.path), "--current", "current.csv", "-o", "p.html")
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    assert fl.Client().get_monitoring_history("model") == []


def test_a_store_that_cannot_be_written_costs_a_warning_not_the_result(
        model: Model, registered: Path) -> None:
    write_log(registered, "fraud", recent_log(model, 94))
    read_only = f"sqlite:///file:{registered / 'forgeline.db'}?mode=ro&uri=true"
    result = invoke("--store", read_only, "monitor", "fraud@champion", "--last", "500",
                    "--json", "-o", "ro.html",
                    env={"FORGELINE_ARTIFACT_ROOT": str(registered / "artifacts")})
    assert result.exit_code == 0, result.output
    assert Path("ro.html").is_file() and json.loads(result.stdout)["rows"] == 500
    (line,) = [w for w in json.loads(result.stdout)["warnings"] if "history" in w]
    assert line.startswith("monitoring history not recorded for fraud: Cannot open the "
                           "SQLite store") and "readonly database" in line
    assert "warning: monitoring history not recorded for fraud" in result.stderr
    assert fl.Client().get_monitoring_history("fraud") == []


def test_the_client_reads_times_in_every_form(model: Model, registered: Path) -> None:
    log = recent_log(model, 95)
    result = monitor(model.predictor, log, config=MonitorConfig(window=None))
    store = get_store(None)
    for hours_ago in (30, 10, 2):  # three runs whose windows ended that long ago
        end = now_ms() - hours_ago * 3_600_000
        record = to_record(result, source="serve", model="fraud")
        store.record_monitoring(replace(record, window_start=end - 1000, window_end=end))
    client = fl.Client()
    assert len(client.get_monitoring_history("fraud", since="12h")) == 2
    assert len(client.get_monitoring_history("fraud", until="5h")) == 2
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=20)
    assert len(client.get_monitoring_history("fraud", since=since)) == 2
    naive = since.replace(tzinfo=None)  # naive datetimes are UTC
    assert len(client.get_monitoring_history("fraud", since=naive)) == 2
    assert len(client.get_monitoring_history("fraud", since=since.isoformat())) == 2
    ms = int(since.timestamp() * 1000)
    assert len(client.get_monitoring_history("fraud", since=ms, until="5h")) == 1
    assert len(client.get_monitoring_history("fraud", limit=1)) == 1
    with pytest.raises(InvalidInput, match="Invalid since 'last week': expected a time"):
        client.get_monitoring_history("fraud", since="last week")
    assert record_result(store, result, source="serve", model="fraud") is None
    assert len(client.get_monitoring_history("fraud")) == 4
