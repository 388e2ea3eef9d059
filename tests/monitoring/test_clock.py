"""Which clock cuts the windows: the data's event time, the log's logging time, row order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgeline.data.profile import time_section
from forgeline.errors import InvalidSpec
from forgeline.monitoring import MonitorConfig, monitor
from forgeline.monitoring.windows import choose_clock
from forgeline.reports import render_monitor_report
from tests.cli.conftest import invoke
from tests.monitoring.conftest import FEATURES, SHIFTED, Model, log_frame, make_frame

DAYS = 30


def _event_times(n: int, days: int = DAYS, start: str = "2025-05-01") -> pd.Series:
    return pd.Timestamp(start) + pd.to_timedelta(np.linspace(0, days * 86400 - 1, n),
                                                 unit="s")


def _burst(model: Model, seed: int) -> pd.DataFrame:
    """A month of rows logged within ten seconds, in an order unrelated to when they
    happened; the last third of the month drifted. Their event time sits where the log
    keeps an input-side ``ts``: ``input_ts``, beside its own ``ts``."""
    calm, _ = log_frame(model, 2_000, seed, days=10 / 86400)
    late, _ = log_frame(model, 1_000, seed + 1, shifted=True, days=10 / 86400)
    calm["input_ts"] = _event_times(2_000, 20).to_numpy()
    late["input_ts"] = _event_times(1_000, 10, "2025-05-21").to_numpy()
    log = pd.concat([calm, late], ignore_index=True)
    log = log.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    log["ts"] = pd.Timestamp("2025-06-02 09:00", tz="UTC") + pd.to_timedelta(
        np.linspace(0, 10, len(log)), unit="s")  # logged in time order, within seconds
    return log


def test_the_profile_records_the_event_time_column(event_model: Model,
                                                   model: Model) -> None:
    section = event_model.predictor.profile["time"]
    assert section == {"column": "ts", "min": "2025-01-01T00:00:00",
                       "max": "2025-05-01T00:00:00"}
    assert "time" not in model.predictor.profile  # nothing named, nothing recorded
    assert time_section(pd.Series([3, 1, np.nan], name="day")) == {
        "column": "day", "min": 1.0, "max": 3.0}
    assert time_section(pd.Series(["2025-01-02", "2025-01-01"], name="when"))["min"] == \
        "2025-01-01T00:00:00"


def test_a_month_logged_in_seconds_is_windowed_by_its_event_time(event_model: Model,
                                                                 tmp_path: Path) -> None:
    result = monitor(event_model.predictor, _burst(event_model, 120))
    assert result.clock.kind == "event" and result.clock.label == "event time: ts"
    assert result.clock.source == "input_ts"
    assert result.windows_by == "1D" and len(result.windows) == DAYS
    assert [w["window"] for w in result.windows[:2]] == ["2025-05-01", "2025-05-02"]
    assert result.windows[-1]["window"] == "2025-05-30"
    assert result.period == {"start": "2025-05-01T00:00:00+00:00",
                             "end": "2025-05-30T23:59:59+00:00"}
    early = [w["dataset_drift_share"] for w in result.windows[:18]]
    late = [w["dataset_drift_share"] for w in result.windows[21:]]
    assert np.mean(late) > 0.15 > np.mean(early)  # the drift shows where it happened
    assert set().union(*(w["drifted"] for w in result.windows[21:])) >= SHIFTED - {"c1"}
    assert result.quality.new_columns == []  # the event time is expected beside the inputs
    assert not any("event time" in w for w in result.warnings)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["clock"] == {"kind": "event", "column": "ts", "source": "input_ts",
                             "label": "event time: ts"}
    html = render_monitor_report(data, tmp_path / "r.html").read_text("utf-8")
    assert "Windows: 1D, by event time: ts (when the rows happened" in html
    assert "<td>event time: ts (when the rows happened" in html


def test_without_the_event_time_it_falls_back_to_logging_time(event_model: Model,
                                                              tmp_path: Path) -> None:
    log = _burst(event_model, 121).drop(columns=["input_ts"])
    result = monitor(event_model.predictor, log)
    assert result.clock.kind == "logging" and result.clock.label == "logging time: ts"
    assert result.windows_by == "10 equal windows" and len(result.windows) == 10
    labels = [w["window"] for w in result.windows]
    assert len(set(labels)) == 10 and labels[0] == "2025-06-02 09:00:00"  # seconds apart
    assert result.period["start"].startswith("2025-06-02T09:00:00")
    assert "windows by logging time: ts, not by event time: the prediction log has no " \
        "'input_ts' column with times (the model's data.time_column is 'ts'); join it to " \
        "the log by request id" in " ".join(result.warnings)
    assert result.to_dict()["clock"]["label"] == "logging time: ts"
    html = render_monitor_report(result, tmp_path / "r.html").read_text("utf-8")
    assert "by logging time: ts (when the predictions were logged)" in html
    # a log's own ts is never taken for the event time, even where the names agree
    assert choose_clock(log, MonitorConfig(), "ts", log=True).kind == "logging"


def test_the_windows_say_which_clock_they_follow(event_model: Model, model: Model) -> None:
    rows = make_frame(1_500, 122)[FEATURES]
    plain = monitor(event_model.predictor, rows.assign(ts=_event_times(1_500).astype(str)))
    assert plain.clock.label == "event time: ts" and len(plain.windows) == DAYS
    assert plain.clock.source == "ts"  # a file of rows: its ts is the rows' own time
    none = monitor(event_model.predictor, rows)
    assert none.clock.kind == "rows" and none.clock.label == "row order"
    assert none.windows_by == "10 equal windows" and none.period["start"] is None
    assert "windows by row order, not by event time: the data has no 'input_ts' or 'ts' " \
        "column with times" in " ".join(none.warnings)
    # a model without an event-time column: the log's ts is its logging time, as before
    old = monitor(model.predictor, log_frame(model, 900, 123)[0])
    assert old.clock.label == "logging time: ts" and old.windows_by == "1D"
    assert not any("event time" in w for w in old.warnings)
    quiet = monitor(event_model.predictor, rows, config=MonitorConfig(window=None))
    assert not any("event time" in w for w in quiet.warnings)  # no windows, no warning


def test_an_explicit_time_column_wins(event_model: Model) -> None:
    log = _burst(event_model, 124)
    logged = monitor(event_model.predictor, log, config=MonitorConfig(time_column="ts"))
    assert logged.clock.label == "logging time: ts" and len(logged.windows) == 10
    stored = monitor(event_model.predictor, log,
                     config=MonitorConfig(time_column="input_ts", window="7D"))
    assert stored.clock.label == "event time: ts" and stored.windows_by == "7D"
    other = log.rename(columns={"input_ts": "happened"})
    chosen = monitor(event_model.predictor, other,
                     config=MonitorConfig(time_column="happened"))
    assert chosen.clock.label == "event time: happened" and len(chosen.windows) == DAYS
    with pytest.raises(InvalidSpec, match="Window '1D' needs a time column, and the data "
                                          "has no 'when' column with times"):
        monitor(event_model.predictor, log, config=MonitorConfig(time_column="when",
                                                                 window="1D"))
    with pytest.raises(InvalidSpec, match="time_column must be a column name or None"):
        MonitorConfig(time_column="")


def test_cli_windows_a_file_by_its_event_time(event_model: Model, tmp_path: Path) -> None:
    rows = make_frame(1_200, 125)[FEATURES].assign(ts=_event_times(1_200))
    rows.to_csv("events.csv", index=False)
    result = invoke("monitor", str(event_model.path), "--current", "events.csv",
                    "-o", "events.html")
    assert result.exit_code == 0, result.output
    assert "Windows: 30 (1D), by event time: ts" in result.output
    bare = invoke("monitor", str(event_model.path), "--current", "events.csv", "--json",
                  "--time-column", "nope", "-o", "bare.html")
    assert bare.exit_code == 0, bare.output
    assert json.loads(bare.stdout)["clock"]["label"] == "row order"
    assert "Windows: 10 (10 equal windows), by row order" in bare.stderr
