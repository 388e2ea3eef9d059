"""``forgeline monitor``: a registered model, its prediction log or a file, every bad input."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pandas as pd

from tests.cli.conftest import invoke
from tests.monitoring.conftest import (
    FEATURES,
    Model,
    make_frame,
    recent_log,
    write_log,
)


def test_the_prediction_log_of_the_last_day(model: Model, registered: Path) -> None:
    write_log(registered, "fraud", recent_log(model, 91, shifted=True))
    result = invoke("monitor", "fraud@champion", "--since", "24h", "-o", "r.html")
    assert result.exit_code == 0, result.output  # drift is reported, not a failure
    assert "fraud v1: 3,000 rows" in result.output
    assert "Dataset drift: 7 of 25 features (28%)" in result.output
    assert "Drifted features" in result.output and "Prediction drift" in result.output
    assert "Report: r.html" in result.output and Path("r.html").is_file()


def test_an_empty_window_is_a_clear_error(registered: Path) -> None:
    result = invoke("monitor", "fraud@champion", "--since", "24h")
    assert result.exit_code == 3
    assert "error: no predictions logged for fraud in the last 24h" in result.output
    bad = invoke("monitor", "fraud@champion", "--since", "yesterday")
    assert bad.exit_code == 2 and "Invalid duration 'yesterday' for --since" in bad.output


def test_the_retraining_loop_refuses_a_schedule_it_cannot_keep() -> None:
    # one grammar for every duration (util/time.py): a bare number is seconds, so "5" is valid
    for every in ("0s", "0.0m", "soon", "5 parsecs"):
        bad = invoke("loop", "fraud", "--every", every)
        assert bad.exit_code == 2, (every, bad.output)
        assert f"Invalid duration '{every}' for --every" in bad.output
        assert "Traceback" not in bad.output


def test_a_file_missing_columns_still_gets_a_report(model: Model, tmp_path: Path) -> None:
    make_frame(800, 92)[FEATURES].drop(columns=["n3"]).to_csv("current.csv", index=False)
    result = invoke("monitor", str(model.path), "--current", "current.csv", "--json",
                    "-o", "plain.html")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["quality"]["missing_columns"] == ["n3"] and len(data["features"]) == 24
    assert data["report"] == "plain.html" and Path("plain.html").is_file()
    assert "warning: 1 signature column(s) missing from the current data: n3" in \
        result.stderr


def test_alerts_labels_and_delivery_problems(model: Model, registered: Path) -> None:
    write_log(registered, "fraud", recent_log(model, 93, shifted=True))
    pd.DataFrame({"request_id": ["nope-1", "nope-2"], "y": [0, 1]}).to_csv("labels.csv",
                                                                          index=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = invoke("monitor", "fraud@champion", "--last", "2000", "--labels", "labels.csv",
                    "--label-column", "y", "--rule", "dataset_drift > 0.1",
                    "--webhook", f"http://127.0.0.1:{port}/x", "--fail-on-alert")
    assert result.exit_code == 1
    assert "alert fired: dataset_drift > 0.1" in result.output
    assert "none of the 2 label ids match a prediction" in result.output
    assert f"alert not delivered to webhook http://127.0.0.1:{port}/x" in result.output
    assert "error: 1 alert rule(s) fired: dataset_drift > 0.1" in result.output
    assert Path("fraud-monitor.html").is_file()


def test_bad_arguments(model: Model) -> None:
    rule = invoke("monitor", str(model.path), "--current", "x.csv", "--rule", "psi > 1")
    assert rule.exit_code == 2 and "Invalid alert rule 'psi > 1'" in rule.output
    both = invoke("monitor", str(model.path), "--current", "x.csv", "--since", "1h")
    assert both.exit_code == 2 and "either --current FILE or a prediction log" in both.output
    missing = invoke("monitor", str(model.path), "--current", "nothing.csv")
    assert missing.exit_code == 3 and "nothing.csv" in missing.output
