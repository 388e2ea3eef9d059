"""Serve a model and monitor it (``forgeline serve --monitor-every``): a real server
monitors its own prediction log.

Real servers on loopback, a real Parquet prediction log, a real webhook receiver; the
monitor runs every few tenths of a second so a test sees several runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from forgeline.errors import InvalidInput, InvalidSpec
from forgeline.serving.config import InvalidSetting, MonitorSchedule, ServeConfig
from forgeline.util.time import parse_duration
from forgeline.workflows.schedule import WorkerLock
from forgeline.workflows.serve import check_monitor, create_app
from tests.serving.conftest import (
    FEATURES,
    LiveServer,
    TrainedStore,
    live_servers,
    make_frame,
)
from tests.webhook import Webhook

Samples = dict[tuple[tuple[str, str], ...], float]


@pytest.fixture(scope="module")
def trained(serving_store: TrainedStore,
            tmp_path_factory: pytest.TempPathFactory) -> TrainedStore:
    """This module's copy of the session's trained store (its monitors write to it), with
    a model cache of its own."""
    base = tmp_path_factory.mktemp("serve")
    copy = serving_store.copy(base / "store")
    return TrainedStore(copy.root, base / "cache", copy.rows)


@pytest.fixture
def serve(trained: TrainedStore) -> Iterator[Callable[..., LiveServer]]:
    """Live servers of the flow's app: the model server with its periodic monitor."""
    with live_servers(trained, create_app) as start:
        yield start


def _samples(url: str, name: str) -> Samples:
    """The samples of metric ``name`` on ``url/metrics``: sorted label pairs -> value."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def _value(url: str, name: str, **labels: str) -> float | None:
    wanted = set(labels.items())
    found = [v for k, v in _samples(url, name).items() if wanted <= set(k)]
    return found[0] if found else None


def _runs(url: str, outcome: str) -> float:
    return _value(url, "forgeline_monitor_runs_total", model="fraud", outcome=outcome) or 0.0


def _wait_for(condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _send(url: str, n: int, seed: int) -> None:
    rows = make_frame(n, seed)[FEATURES].to_dict("records")
    with httpx.Client(base_url=url, timeout=30) as http:
        for start in range(0, n, 25):
            answer = http.post("/predict", json={"records": rows[start:start + 25]})
            assert answer.status_code == 200, answer.text


def test_the_server_monitors_its_predictions_exports_gauges_and_alerts(
        serve: Callable[..., LiveServer], webhook: Webhook,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="forgeline.serving")
    started = time.time()
    server = serve(monitor=MonitorSchedule(every_s=0.3, rules=("rows >= 200", "dataset_drift > 2"),
                                           webhook=webhook.url))
    url = server.url
    # No predictions yet: runs are skipped and counted, not failures, and no gauge is set.
    _wait_for(lambda: _runs(url, "empty") >= 1, "a run on an empty log")
    assert _runs(url, "failed") == 0 and _runs(url, "ok") == 0
    assert _samples(url, "forgeline_dataset_drift_share") == {}

    _send(url, 200, 11)
    _wait_for(lambda: _value(url, "forgeline_monitor_rows", model="fraud") == 200,
              "a run that sees the 200 predictions")
    share = _value(url, "forgeline_dataset_drift_share", model="fraud")
    assert share is not None and 0.0 <= share <= 1.0
    drifted = _samples(url, "forgeline_feature_drifted")
    assert {dict(k)["feature"] for k in drifted} == set(FEATURES)
    assert all(v in (0.0, 1.0) for v in drifted.values())
    psi = _value(url, "forgeline_drift_score", model="fraud", feature="amount", method="psi")
    assert psi is not None and psi >= 0.0
    assert _value(url, "forgeline_drift_score", feature="country", method="chisquare_pvalue")
    assert _value(url, "forgeline_prediction_drift_score", model="fraud", method="psi") \
        is not None
    assert 0.5 < (_value(url, "forgeline_estimated_metric", model="fraud",
                         metric="roc_auc") or 0.0) <= 1.0
    assert _value(url, "forgeline_missing_share", model="fraud", feature="items") == 0.0
    assert _value(url, "forgeline_alerts_fired", model="fraud") == 1.0
    stamp = _value(url, "forgeline_monitor_timestamp_seconds", model="fraud")
    assert stamp is not None and started <= stamp <= time.time()
    assert (_value(url, "forgeline_monitor_duration_seconds", model="fraud") or 0.0) > 0.0
    assert _runs(url, "failed") == 0

    # The rule that started firing was delivered once, not again at every run.
    ok = _runs(url, "ok")
    _wait_for(lambda: _runs(url, "ok") >= ok + 3, "three more runs")
    (payload,) = webhook.received
    assert [f["rule"] for f in payload["fired"]] == ["rows >= 200"]
    assert payload["model"] == "fraud" and payload["version"] == "1" and payload["rows"] == 200

    lines = [r.getMessage() for r in caplog.records if r.name == "forgeline.serving"]
    assert any(m == "monitor fraud/1: no predictions in the last 24h yet; skipped"
               for m in lines)
    seen = [m for m in lines if m.startswith("monitor fraud/1: 200 rows in the last 24h, ")]
    assert seen and "1 of 2 alert rules firing (1 new: rows >= 200), delivered to the " \
        "webhook" in "\n".join(seen)
    assert not [r for r in caplog.records
                if r.levelno >= logging.WARNING and r.name.startswith("forgeline")]


def test_a_failing_run_is_counted_and_the_next_one_recovers(
        serve: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="forgeline.serving")
    server = serve(monitor=MonitorSchedule(every_s=0.2, last=500))
    url = server.url
    _send(url, 50, 12)
    _wait_for(lambda: _value(url, "forgeline_monitor_rows", model="fraud") == 50, "a run")
    day = next(server.state.prediction_log.directory.glob("date=*"))
    garbage = day / "part-999999999999-garbage.parquet"  # read with the others, unreadable
    garbage.write_bytes(b"not parquet at all")
    _wait_for(lambda: _runs(url, "failed") >= 1, "a failed run")
    _send(url, 25, 13)  # the server answers as before
    garbage.unlink()
    ok = _runs(url, "ok")
    _wait_for(lambda: _runs(url, "ok") > ok, "a run after the failure")
    _wait_for(lambda: _value(url, "forgeline_monitor_rows", model="fraud") == 75, "75 rows")
    failures = [r.getMessage() for r in caplog.records
                if r.levelno >= logging.WARNING and r.name.startswith("forgeline")]
    assert failures and all(m.startswith("monitor fraud/1: run failed (") for m in failures)
    assert failures[0].endswith("; next run in 0.2s")


def test_each_run_is_kept_in_the_monitoring_history(
        serve: Callable[..., LiveServer], trained: TrainedStore, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    from forgeline.tracking.client import Client

    own = trained.copy(tmp_path / "own")
    server = serve(store=own, monitor=MonitorSchedule(every_s=0.2, rules=("rows >= 10",)))
    _send(server.url, 60, 14)
    client = Client(own.uri)
    seen = _wait_for(lambda: [r for r in client.get_monitoring_history("fraud")
                              if r.rows == 60], "a recorded run of the 60 predictions")
    record = seen[-1]
    assert record.model == "fraud" and record.version == "1" and record.source == "serve"
    assert record.alerts == ("rows >= 10",) and record.report is None
    assert record.clock == "logging time: ts" and set(record.features) == set(FEATURES)
    assert record.window_start is not None and record.window_end is not None
    assert record.window_start <= record.window_end <= record.creation_time
    assert record.prediction_drift is not None and "roc_auc" in record.estimated
    # runs on an empty log are skipped, not recorded
    assert all(r.rows > 0 for r in client.get_monitoring_history("fraud"))
    assert not [r for r in caplog.records
                if r.levelno >= logging.WARNING and r.name.startswith("forgeline")]


@dataclass(frozen=True)
class _ReadOnly(TrainedStore):
    """The same store, opened read-only: the server loads its models, and nothing can be
    written to it."""

    @property
    def uri(self) -> str:
        return f"sqlite:///file:{self.root / 'forgeline.db'}?mode=ro&uri=true"


def test_a_store_that_cannot_be_written_costs_a_warning_not_the_run(
        serve: Callable[..., LiveServer], trained: TrainedStore, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="forgeline.serving")
    own = trained.copy(tmp_path / "own")
    monkeypatch.setenv("FORGELINE_ARTIFACT_ROOT", str(own.root / "artifacts"))
    server = serve(store=_ReadOnly(own.root, own.cache, own.rows),
                   monitor=MonitorSchedule(every_s=0.2))
    _send(server.url, 30, 15)
    _wait_for(lambda: _value(server.url, "forgeline_monitor_rows", model="fraud") == 30,
              "a run of the 30 predictions")
    _wait_for(lambda: _runs(server.url, "ok") >= 2, "another run")
    assert _runs(server.url, "failed") == 0
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno >= logging.WARNING and r.name.startswith("forgeline")]
    assert warnings and all(m.startswith("monitor fraud/1: monitoring history not recorded "
                                         "for fraud: Cannot open the SQLite store")
                            for m in warnings)


def test_several_workers_run_one_monitor(trained: TrainedStore, tmp_path: Path) -> None:
    from tests.serving.test_serve_cli import ROW, _server

    args = ("--workers", "2", "--monitor-every", "0.3s", "--rule", "rows >= 1")
    with _server(trained, tmp_path, *args) as (process, url, stderr):
        for _ in range(6):
            with httpx.Client(base_url=url) as fresh:  # new connections: both workers answer
                assert fresh.post("/predict", json={"records": [ROW]}).status_code == 200
        _wait_for(lambda: _value(url, "forgeline_monitor_rows", model="fraud"), "a run")
        for _ in range(4):  # whichever worker answers, it reports the monitor's gauges
            (labels,) = _samples(url, "forgeline_dataset_drift_share")
            assert labels == (("model", "fraud"),)  # one series, no pid label
            assert _value(url, "forgeline_alerts_fired", model="fraud") == 1.0
        # The other worker's rows reach the disk within its flush interval (5 s).
        _wait_for(lambda: _value(url, "forgeline_monitor_rows", model="fraud") == 6,
                  "the rows of both workers", timeout=30)
        process.terminate()
        assert process.wait(timeout=30) in (0, -15)
    log = "".join(stderr)
    assert log.count("runs the monitor; the other workers stand by") == 1, log
    assert log.count("monitor fraud/1: 6 rows in the last 24h") >= 1, log
    assert "Traceback" not in log and log.count("Application shutdown complete") == 2


def test_the_worker_lock_has_one_holder(tmp_path: Path) -> None:
    first, second = WorkerLock(tmp_path / "m.lock"), WorkerLock(tmp_path / "m.lock")
    assert first.acquire() and first.held and first.acquire()
    assert not second.acquire() and not second.held
    first.release()
    assert second.acquire() and second.held
    second.release()
    assert WorkerLock(None).held  # one process: nothing to share


@pytest.mark.parametrize(("text", "seconds"), [("5m", 300.0), ("0.5s", 0.5), ("24h", 86400.0),
                                               ("90", 90.0), (" 2 w", 1_209_600.0),
                                               ("250ms", 0.25), ("1.5D", 129_600.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "--monitor-every") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["soon", "0s", "-1m", "", "5 minutes", "1e3s"])
def test_a_bad_duration_names_the_option(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_duration(text, "--monitor-window")
    assert info.value.message == f"Invalid duration {text!r} for --monitor-window."
    assert info.value.hint == "Use a number and a unit, such as 90s, 5m, 24h or 7d."


# The settings are checked where they are made (MonitorSchedule, ServeConfig), naming the
# parameters (InvalidSetting, an InvalidInput); the alert rules by the flow that runs the
# monitor (serving cannot parse them).
@pytest.mark.parametrize(("settings", "error", "message"), [
    ({"monitor": {"window_s": 60.0}}, InvalidSetting,
     "monitor window_s needs monitor every_s"),
    ({"monitor": {"rules": ("rows > 1",)}}, InvalidSetting, "monitor rules needs monitor every_s"),
    ({"monitor": {"webhook": "http://x"}}, InvalidSetting,
     "monitor webhook needs monitor every_s"),
    ({"monitor": {"every_s": 0.01}}, InvalidSetting,
     "Invalid monitor every_s 0.01: expected a number from 0.1 to 2.592e+06."),
    ({"monitor": {"every_s": 60, "last": 0}}, InvalidSetting, "Invalid monitor last 0"),
    ({"monitor": {"every_s": 60}, "log_predictions": False}, InvalidSetting,
     "monitor every_s reads the prediction log, and log_predictions=False turns it off."),
    ({"monitor": {"every_s": 60, "webhook": "ftp://host/x"}}, InvalidSetting,
     "Invalid monitor webhook 'ftp://host/x': expected an http:// or https:// URL."),
    ({"monitor": {"every_s": 60, "rules": ("psi > 0.2",)}}, InvalidSpec,
     "Invalid alert rule 'psi > 0.2'"),
])
def test_bad_monitor_settings(settings: dict[str, Any], error: type[Exception],
                              message: str) -> None:
    with pytest.raises(error) as info:
        monitor = MonitorSchedule(**settings["monitor"])
        rest = {k: v for k, v in settings.items() if k != "monitor"}
        check_monitor(ServeConfig("fraud@champion", monitor=monitor, **rest))
    assert type(info.value) is error and str(info.value).startswith(message)


def test_monitor_settings_travel_to_workers_and_describe_themselves() -> None:
    config = ServeConfig("fraud@champion", monitor=MonitorSchedule(
        every_s=300, last=50_000, rules=("dataset_drift > 0.3", "psi.amount > 0.2"),
        webhook="https://hooks.example/x"))
    again = ServeConfig.from_json(config.to_json())
    assert again == config and again.monitor.rules == config.monitor.rules
    assert config.monitor.describe() == ("every 5m, at most 50,000 rows, 2 alert rules to "
                                         "the webhook")
    assert MonitorSchedule(every_s=0.5, window_s=172_800).describe() == \
        "every 0.5s, last 2d of predictions"
    assert MonitorSchedule(every_s=90).describe() == "every 90s, last 24h of predictions"
    assert ServeConfig("f").monitor.describe() is None


def test_cli_mistakes_are_one_line(trained: TrainedStore) -> None:
    from typer.testing import CliRunner

    from forgeline.cli import app

    cases = [(("--monitor-every", "soon"), "Invalid duration 'soon' for --monitor-every."),
             (("--rule", "rows > 1"), "--rule needs --monitor-every"),
             (("--monitor-every", "1m", "--rule", "psi > 1"), "Invalid alert rule 'psi > 1'"),
             (("--monitor-every", "1m", "--no-log"), "--no-log turns it off")]
    for args, fragment in cases:
        done = CliRunner().invoke(app, ["--store", trained.uri, "serve", "fraud@champion",
                                        "--port", "0", *args])
        assert done.exit_code == 2, (args, done.output)
        assert fragment in done.stderr and done.stderr.count("\n") <= 2, (args, done.stderr)
        assert done.stdout == ""
