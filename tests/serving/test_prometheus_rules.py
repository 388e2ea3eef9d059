"""``forgeline deploy prometheus``: alert rules that promtool accepts and unit-tests, a
dashboard whose every query parses and names only what the server exports, and a real
Prometheus scraping a real ``forgeline serve``."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from forgeline.exposition import MONITORING_GAUGES, SERVER, exported_series
from forgeline.serving.observability import ALERTS, FILES, PROMETHEUS_SERIES
from tests.serving.conftest import TrainedStore, invoke, make_frame, one_error_line
from tests.serving.test_serve_cli import ROW, _server

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed "
                                    "(scripts/install-sysdeps.sh installs Debian's prometheus)")
needs_prometheus = pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not "
                                      "installed (scripts/install-sysdeps.sh installs it)")
LABELS = {"model": "fraud", "version": "1"}



@pytest.fixture
def written(trained: TrainedStore, tmp_path: Path) -> Path:
    out = tmp_path / "monitoring"
    done = invoke(tmp_path, "--store", trained.uri, "deploy", "prometheus", "fraud@champion",
                  "-o", str(out), "--floor", "roc_auc=0.8")
    assert done.exit_code == 0, done.output
    return out


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def rules_of(directory: Path) -> dict[str, dict[str, Any]]:
    (group,) = yaml.safe_load((directory / "alerts.yaml").read_text())["groups"]
    return {rule["alert"]: rule for rule in group["rules"]}


# -- the command --------------------------------------------------------------------------
def test_the_files_are_written_and_a_rerun_replaces_them(written: Path, trained: TrainedStore,
                                                         tmp_path: Path) -> None:
    found = sorted(p.relative_to(written).as_posix() for p in written.rglob("*")
                   if p.is_file())
    assert found == sorted([*FILES, ".forgeline-deploy"])
    rules = rules_of(written)
    assert sorted(rules) == sorted(ALERTS)
    for rule in rules.values():
        assert rule["for"] and rule["labels"]["severity"] in ("critical", "warning")
        assert {"model": "fraud", "version": "1"}.items() <= rule["labels"].items()
        assert "model fraud version 1" in rule["annotations"]["description"]
    assert "> 0.05" in rules["ForgelineHighErrorRate"]["expr"]
    assert ">= 0.5" in rules["ForgelineDatasetDrift"]["expr"]  # the monitor's default
    assert 'metric="roc_auc"' in rules["ForgelineEstimatedMetricLow"]["expr"]
    dashboard = json.loads((written / "dashboard.json").read_text())
    assert dashboard["schemaVersion"] >= 39 and dashboard["uid"] == "forgeline-fraud"
    assert dashboard["templating"]["list"][0]["name"] == "datasource"
    assert all(p["datasource"]["uid"] == "${datasource}" for p in dashboard["panels"]
               if p["type"] != "row")
    sources = yaml.safe_load((written / "provisioning/datasources.yaml").read_text())
    assert sources["datasources"][0]["type"] == "prometheus"
    providers = yaml.safe_load((written / "provisioning/dashboards.yaml").read_text())
    assert providers["providers"][0]["options"]["path"]

    again = invoke(tmp_path, "--store", trained.uri, "deploy", "prometheus", "fraud/1", "-o",
                   str(written), "--error-rate", "0.2", "--p99-latency", "1.5",
                   "--drift-share", "0.3", "--job", "models", "--json")
    assert again.exit_code == 0, again.output
    result = json.loads(again.stdout)
    assert result["job"] == "models" and result["thresholds"]["floors"] == {}
    rules = rules_of(written)
    assert "ForgelineEstimatedMetricLow" not in rules  # no floor configured this time
    assert '{job="models"' in rules["ForgelineHighErrorRate"]["expr"]
    assert rules["ForgelineHighErrorRate"]["expr"].endswith("> 0.2")
    assert rules["ForgelineHighLatency"]["expr"].endswith("> 1.5")
    assert rules["ForgelineDatasetDrift"]["expr"].endswith(">= 0.3")
    (written / "provisioning" / "alerting.yaml").write_text("apiVersion: 1\n")
    refused = invoke(tmp_path, "--store", trained.uri, "deploy", "prometheus", "fraud/1",
                     "-o", str(written))  # replacing the folder would lose the user's file
    one_error_line(refused, 4, "did not write: provisioning/alerting.yaml.")
    assert (written / "provisioning" / "alerting.yaml").is_file()


def test_the_training_specs_retrain_triggers_set_the_thresholds() -> None:
    from forgeline.workflows.observability import thresholds_from_rules

    assert thresholds_from_rules(["dataset_drift > 0.3", "estimated_roc_auc < 0.75",
                                  "psi.amount > 0.2"]) == {
        "drift_share": 0.3, "floors": {"roc_auc": 0.75}}
    assert thresholds_from_rules([]) == {"drift_share": 0.5, "floors": {}}


def test_a_models_own_retrain_triggers_set_its_alerts(trained: TrainedStore,
                                                      tmp_path: Path) -> None:
    from forgeline.store import close_stores
    from forgeline.tracking.client import Client
    from forgeline.workflows.train import train

    store = trained.copy(tmp_path / "store")
    data = tmp_path / "churn.csv"
    make_frame(200, 3).to_csv(data, index=False)
    train({"name": "churn", "data": {"path": str(data), "target": "y"}, "seed": 0,
           "models": ["logistic_regression"], "tuning": {"trials": 1, "cv_folds": 2},
           "retrain": {"triggers": ["dataset_drift > 0.3", "estimated_roc_auc < 0.7"]}},
          client=Client(store.uri))
    close_stores()
    out = tmp_path / "monitoring"
    done = invoke(tmp_path, "--store", store.uri, "deploy", "prometheus", "churn", "-o",
                  str(out))
    assert done.exit_code == 0, done.output
    rules = rules_of(out)
    assert rules["ForgelineDatasetDrift"]["expr"].endswith(">= 0.3")
    low = rules["ForgelineEstimatedMetricLow"]
    assert low["expr"].endswith("< 0.7") and low["labels"]["metric"] == "roc_auc"
    done = invoke(tmp_path, "--store", store.uri, "deploy", "prometheus", "churn", "-o",
                  str(out), "--drift-share", "0.6", "--floor", "accuracy=0.9")
    assert done.exit_code == 0, done.output  # the options win over the spec
    rules = rules_of(out)
    assert rules["ForgelineDatasetDrift"]["expr"].endswith(">= 0.6")
    assert 'metric="accuracy"' in rules["ForgelineEstimatedMetricLow"]["expr"]


def test_mistakes_are_one_line_and_write_nothing(trained: TrainedStore,
                                                 tmp_path: Path) -> None:
    out = tmp_path / "monitoring"
    cases = [(("ghost@champion",), 3, "ghost"),
             (("fraud@champion", "--floor", "roc_auc"), 2, "Invalid --floor 'roc_auc'"),
             (("fraud@champion", "--error-rate", "5"), 2, "Invalid error rate 5"),
             (("fraud@champion", "--window", "five"), 2, "Invalid duration 'five'"),
             (("fraud@champion", "--job", 'a"b'), 2, "Invalid job")]
    for args, code, fragment in cases:
        done = invoke(tmp_path, "--store", trained.uri, "deploy", "prometheus", *args, "-o",
                      str(out))
        one_error_line(done, code, fragment)
        assert not out.exists(), args
    out.mkdir()
    (out / "mine.yaml").write_text("x: 1\n")
    done = invoke(tmp_path, "--store", trained.uri, "deploy", "prometheus", "fraud@champion",
                  "-o", str(out))
    one_error_line(done, 4, "is not empty")
    assert [p.name for p in out.iterdir()] == ["mine.yaml"]


# -- promtool -----------------------------------------------------------------------------
@needs_promtool
def test_promtool_accepts_the_rules(written: Path) -> None:
    done = promtool("check", "rules", "alerts.yaml", cwd=written)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in done.stdout


def _case(alert: str, series: list[tuple[str, str]], eval_time: str,
          fired: dict[str, str] | None, rules: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One promtool unit test: these series, then ``alert`` fires with ``fired`` (its
    labels from the expression) or, when None, does not fire."""
    rule = rules[alert]
    expected = [] if fired is None else [{"exp_labels": {**rule["labels"], **fired},
                                          "exp_annotations": rule["annotations"]}]
    return {"interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in series],
            "alert_rule_test": [{"eval_time": eval_time, "alertname": alert,
                                 "exp_alerts": expected}]}


@needs_promtool
def test_each_alert_fires_when_it_should_and_only_then(written: Path) -> None:
    rules = rules_of(written)
    job = {"job": "fraud"}
    req = 'forgeline_requests_total{job="fraud",instance="a",route="/predict",method="POST",'
    bucket = ('forgeline_request_duration_seconds_bucket{job="fraud",instance="a",'
              'route="/predict",method="POST",status="200",le="%s"}')
    dropped = 'forgeline_prediction_log_dropped_total{job="fraud",instance="a"}'
    drift = 'forgeline_dataset_drift_share{job="fraud",instance="a",model="fraud"}'
    estimated = ('forgeline_estimated_metric{job="fraud",instance="a",model="fraud",'
                 'metric="roc_auc"}')
    up = 'up{job="fraud",instance="a"}'
    cases = [
        _case("ForgelineServerDown", [(up, "0x15")], "5m", {**job, "instance": "a"}, rules),
        _case("ForgelineServerDown", [('up{job="other",instance="b"}', "1x15")], "5m", job,
              rules),  # absent: never scraped at all
        _case("ForgelineServerDown", [(up, "1x15")], "5m", None, rules),
        _case("ForgelineHighErrorRate", [(req + 'status="200"}', "0+60x30"),
                                         (req + 'status="500"}', "0+10x30")], "15m", job,
              rules),
        _case("ForgelineHighErrorRate", [(req + 'status="200"}', "0+60x30"),
                                         (req + 'status="500"}', "0+1x30")], "15m", None,
              rules),
        _case("ForgelineHighLatency", [(bucket % "0.1", "0x40"), (bucket % "0.5", "0x40"),
                                       (bucket % "1", "0+10x40"), (bucket % "+Inf", "0+10x40")],
              "25m", job, rules),
        _case("ForgelineHighLatency", [(bucket % "0.1", "0+10x40"),
                                       (bucket % "0.5", "0+10x40"), (bucket % "1", "0+10x40"),
                                       (bucket % "+Inf", "0+10x40")], "25m", None, rules),
        _case("ForgelinePredictionLogDropping", [(dropped, "0+5x20")], "12m", job, rules),
        _case("ForgelinePredictionLogDropping", [(dropped, "0x20")], "12m", None, rules),
        _case("ForgelineDatasetDrift", [(drift, "0.6x30")], "20m", {"model": "fraud"}, rules),
        _case("ForgelineDatasetDrift", [(drift, "0.2x30")], "20m", None, rules),
        _case("ForgelineEstimatedMetricLow", [(estimated, "0.7x40")], "35m",
              {"model": "fraud", "metric": "roc_auc"}, rules),
        _case("ForgelineEstimatedMetricLow", [(estimated, "0.9x40")], "35m", None, rules),
    ]
    assert {c["alert_rule_test"][0]["alertname"] for c in cases} == set(ALERTS)
    (written / "alerts_test.yaml").write_text(yaml.safe_dump(
        {"rule_files": ["alerts.yaml"], "evaluation_interval": "1m", "tests": cases},
        sort_keys=False))
    done = promtool("test", "rules", "alerts_test.yaml", cwd=written)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def _expressions(written: Path) -> list[str]:
    dashboard = json.loads((written / "dashboard.json").read_text())
    panels = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", ())]
    assert len(panels) >= 12
    return panels + [r["expr"] for r in rules_of(written).values()]


_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "or", "and",
             "unless", "bool", "offset"}


def metric_names(expr: str) -> set[str]:
    """The series an expression selects: its identifiers less functions, keywords, label
    matchers, groupings and ranges."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", text)
    names = set()
    for found in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?", text):
        word = found.group(0).rstrip("( ")
        if not found.group(1) and word not in _KEYWORDS:
            names.add(word)
    return names


def test_every_expression_names_only_series_the_server_exports(written: Path) -> None:
    assert metric_names('sum by (le) (rate(a_bucket{job="x",s=~"5.."}[5m])) / '
                        "count(b) > 0.5 or absent(up{job=\"x\"})") == {"a_bucket", "b", "up"}
    allowed = exported_series() | PROMETHEUS_SERIES
    named: set[str] = set()
    for expr in _expressions(written):
        names = metric_names(expr)
        assert names and names <= allowed, (expr, names - allowed)
        named |= names
    # the panels cover the server's traffic, latency, batches, models, drops and monitoring
    assert {"forgeline_requests_total", "forgeline_request_duration_seconds_bucket",
            "forgeline_batch_size_rows_bucket", "forgeline_model_info",
            "forgeline_prediction_log_dropped_total", "forgeline_drift_score",
            "forgeline_dataset_drift_share", "forgeline_estimated_metric",
            "forgeline_realized_metric", "ALERTS"} <= named


@needs_promtool
def test_every_dashboard_expression_parses(written: Path) -> None:
    records = [{"record": f"dashboard:expr_{i}", "expr": expr}
               for i, expr in enumerate(_expressions(written))]
    (written / "exprs.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard",
                                                                     "rules": records}]}))
    done = promtool("check", "rules", "exprs.yaml", cwd=written)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_exported_list_is_what_the_registries_hold() -> None:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics import MetricWrapperBase

    from forgeline.monitoring.gauges import ensure_gauges
    from forgeline.serving.metrics import ServingMetrics

    metrics = ServingMetrics()
    try:
        held = {m._name: (m._type, tuple(m._labelnames)) for m in vars(metrics).values()
                if isinstance(m, MetricWrapperBase)}
        exposed = {f.name for f in metrics.registry.collect()}
    finally:
        metrics.close()
    assert exposed == set(held)
    assert held == SERVER
    assert set(ensure_gauges(CollectorRegistry())) == set(MONITORING_GAUGES)


# -- a real Prometheus scraping a real server ---------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _query(base: str, promql: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


@needs_prometheus
def test_prometheus_scrapes_the_server_and_counts_its_requests(
        trained: TrainedStore, written: Path, tmp_path: Path) -> None:
    assert PROMETHEUS is not None
    sent = 7
    with _server(trained, tmp_path) as (_, url, stderr):
        with httpx.Client(base_url=url) as http:
            for _ in range(sent):
                assert http.post("/predict", json={"records": [ROW]}).status_code == 200
        port = _free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(written / "alerts.yaml")],
            "scrape_configs": [{"job_name": "fraud", "metrics_path": "/metrics",
                                "static_configs": [{"targets": [url.removeprefix(
                                    "http://")]}]}]}))
        log = (tmp_path / "prometheus.log").open("w")
        prometheus = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            counted: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                assert prometheus.poll() is None, (tmp_path / "prometheus.log").read_text()
                try:  # 503 until it has loaded its storage
                    ready = httpx.get(f"{base}/-/ready", timeout=5).status_code == 200
                except httpx.TransportError:
                    ready = False
                if ready:
                    counted = _query(base, 'sum(forgeline_requests_total{job="fraud",'
                                           'route="/predict",status="200"})')
                    if counted and _query(base, 'up{job="fraud"} == 1'):
                        break
                time.sleep(0.2)
            assert counted, (tmp_path / "prometheus.log").read_text()[-3000:]
            assert float(counted[0]["value"][1]) == sent
            rules = httpx.get(f"{base}/api/v1/rules", timeout=5).json()["data"]["groups"]
            assert {r["name"] for g in rules for r in g["rules"]} == set(ALERTS)
            # every series the server exposes is in the exported list
            names = {r["metric"]["__name__"] for r in _query(
                base, 'count by (__name__) ({job="fraud"})')}
            ours = {n for n in names  # less Prometheus' own: up, scrape_*, ALERTS*
                    if not n.startswith(("scrape_", "ALERTS")) and n != "up"}
            assert ours and ours <= exported_series(), ours - exported_series()
        finally:
            prometheus.terminate()
            try:
                prometheus.wait(timeout=20)
            except subprocess.TimeoutExpired:
                prometheus.kill()
                prometheus.wait(timeout=10)
            log.close()
    assert "Traceback" not in "".join(stderr)
