"""``forgeline deploy prometheus``: alert rules and a Grafana dashboard for a model's server.

:func:`observability_files` gives, for one model version, the text of:

- ``alerts.yaml``: a Prometheus rule-groups file (``rule_files:``) with one alert per way
  a served model goes wrong: its server is down or absent; too many of its answers are
  5xx; its p99 latency (``histogram_quantile`` over the server's request histogram) is
  too high; the prediction log drops records (monitoring and retraining lose them);
  its inputs drifted (the share of drifted features, set by the periodic monitor of
  ``forgeline serve --monitor-every``) at or above the threshold; an estimated metric
  (confidence-based, no labels needed) below its floor, for each floor configured.
  Each alert waits out its ``for:``, carries ``severity`` and the model's name and
  version as labels, and says what happened and what to do in its annotations.
- ``dashboard.json``: a Grafana dashboard over a ``${datasource}`` Prometheus variable:
  traffic, latency quantiles by route, errors, batch sizes, the versions and runtimes
  served, prediction-log drops; then drift per feature, dataset drift, estimated and
  realised metrics, and the alerts firing.
- ``provisioning/dashboards.yaml`` and ``provisioning/datasources.yaml``: Grafana's
  provisioning files, so the dashboard and its data source load at Grafana's start.

Every expression names only series the server exports (:mod:`forgeline.exposition`),
plus Prometheus' own ``up`` and ``ALERTS``, and selects the scrape job (``job="<job>"``,
the model's name by default: the Service name ``forgeline deploy k8s`` gives it). The
same model and options give the same bytes, so a rerun shows up as no change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from forgeline.errors import InvalidInput
from forgeline.packaging.predictor import Predictor, load_model
from forgeline.serving.kubernetes import write_folder

if TYPE_CHECKING:
    from forgeline.tracking.client import Client

__all__ = ["ALERTS", "FILES", "PROMETHEUS_SERIES", "Observability", "Thresholds",
           "observability_files", "write_observability"]

FILES = ("alerts.yaml", "dashboard.json", "provisioning/dashboards.yaml",
         "provisioning/datasources.yaml")
ALERTS = ("ForgelineServerDown", "ForgelineHighErrorRate", "ForgelineHighLatency",
          "ForgelinePredictionLogDropping", "ForgelineDatasetDrift",
          "ForgelineEstimatedMetricLow")
PROMETHEUS_SERIES = frozenset({"up", "ALERTS"})  # Prometheus' own, not the server's
SCHEMA_VERSION = 39  # Grafana 10.4 / 11
_JOB = re.compile(r"^[A-Za-z0-9_.:/-]{1,200}$")
_DURATION = re.compile(r"^\d+[smhd]$")
_QUANTILES = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class Thresholds:
    """When each alert fires.

    Attributes:
        error_rate: share of answers that are 5xx, over ``window``.
        p99_latency_s: the 99th percentile of request latency, in seconds.
        drift_share: share of drifted features (the monitor's ``dataset_drift``).
        floors: estimated metric name (``roc_auc``, ``accuracy``...) -> its lowest
            acceptable value; one alert each.
        window: the range of ``rate()`` and ``increase()``.
        wait: alert name -> its ``for:`` (the defaults for those not given).
    """

    error_rate: float = 0.05
    p99_latency_s: float = 0.5
    drift_share: float = 0.5
    floors: Mapping[str, float] = field(default_factory=dict)
    window: str = "5m"
    wait: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.error_rate < 1:
            raise InvalidInput(f"Invalid error rate {self.error_rate:g}: expected a share "
                               "between 0 and 1.", hint="e.g. --error-rate 0.05 (5%).")
        if not self.p99_latency_s > 0:
            raise InvalidInput(f"Invalid p99 latency {self.p99_latency_s:g}: expected "
                               "seconds above 0.", hint="e.g. --p99-latency 0.5.")
        if not 0 < self.drift_share <= 1:
            raise InvalidInput(f"Invalid drift share {self.drift_share:g}: expected a share "
                               "above 0 and at most 1.", hint="e.g. --drift-share 0.5.")
        for metric, floor in self.floors.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*", metric) or not 0 <= floor <= 1:
                raise InvalidInput(f"Invalid floor {metric}={floor:g}: expected a metric "
                                   "name and a value between 0 and 1.",
                                   hint="e.g. --floor roc_auc=0.8.")
        for value in (self.window, *self.wait.values()):
            if not _DURATION.match(value):
                raise InvalidInput(f"Invalid duration {value!r}: expected a number and a "
                                   "unit (s, m, h, d), such as 5m.")
        object.__setattr__(self, "floors", dict(sorted(self.floors.items())))
        object.__setattr__(self, "wait", {**_WAIT, **self.wait})


_WAIT = {"ForgelineServerDown": "2m", "ForgelineHighErrorRate": "5m",
         "ForgelineHighLatency": "10m", "ForgelinePredictionLogDropping": "5m",
         "ForgelineDatasetDrift": "15m", "ForgelineEstimatedMetricLow": "30m"}


@dataclass(frozen=True, slots=True)
class Observability:
    """What :func:`observability_files` made: the files' text by relative path.

    Attributes:
        name: the model's registered name (the ``model`` and ``name`` labels).
        version: its version (``latest`` for a bare package).
        job: the Prometheus scrape job its servers are found under.
        files: relative path -> text.
        source: what they were written for (``fraud/3 (fraud@champion)``).
    """

    name: str
    version: str
    job: str
    files: dict[str, str]
    source: str


def _pct(share: float) -> str:
    return f"{share * 100:.4g}%"


def _sel(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _alert(name: str, expr: str, wait: str, severity: str, labels: dict[str, str],
           summary: str, description: str) -> dict[str, Any]:
    return {"alert": name, "expr": expr, "for": wait,
            "labels": {"severity": severity, **labels},
            "annotations": {"summary": summary, "description": description}}


def alert_rules(model: str, version: str, job: str, thresholds: Thresholds
                ) -> dict[str, Any]:
    """The rule-groups document of ``alerts.yaml`` (see the module docstring)."""
    t, w = thresholds, thresholds.window
    job_sel, mon_sel = _sel(job=job), _sel(job=job, model=model)
    labels = {"model": model, "version": version}
    who = f"model {model} version {version}"
    errors = f'{{job="{job}",status=~"5.."}}'
    rules = [
        _alert("ForgelineServerDown", f"up{job_sel} == 0 or absent(up{job_sel})",
               t.wait["ForgelineServerDown"], "critical", labels,
               f"The server of {model} is down",
               f"Prometheus cannot scrape the server of {who} (job {job}): no predictions "
               "are answered there. Check the pods (kubectl get pods; kubectl logs), the "
               "readiness probe /v2/health/ready and the scrape target."),
        _alert("ForgelineHighErrorRate",
               f"sum by (job) (rate(forgeline_requests_total{errors}[{w}])) / sum by (job) "
               f"(rate(forgeline_requests_total{job_sel}[{w}])) > {t.error_rate:g}",
               t.wait["ForgelineHighErrorRate"], "critical", labels,
               f"{model}: more than {_pct(t.error_rate)} of requests fail",
               f"Over {_pct(t.error_rate)} of the requests to {who} answered a 5xx status "
               f"over {w}. Read the server's log for the errors; if a new version was "
               "deployed, roll back to the previous one."),
        _alert("ForgelineHighLatency",
               f"histogram_quantile(0.99, sum by (job, le) "
               f"(rate(forgeline_request_duration_seconds_bucket{job_sel}[{w}]))) "
               f"> {t.p99_latency_s:g}",
               t.wait["ForgelineHighLatency"], "warning", labels,
               f"{model}: p99 latency above {t.p99_latency_s:g}s",
               f"The 99th percentile of request latency of {who} is above "
               f"{t.p99_latency_s:g}s. Check CPU saturation and the batch sizes; add "
               "replicas or workers, or serve the ONNX runtime."),
        _alert("ForgelinePredictionLogDropping",
               f"sum by (job) (increase(forgeline_prediction_log_dropped_total{job_sel}"
               f"[{w}])) > 0",
               t.wait["ForgelinePredictionLogDropping"], "warning", labels,
               f"{model}: the prediction log drops records",
               f"The prediction log of {who} could not keep up and dropped records: "
               "monitoring and retraining will not see them. Give its disk more "
               "throughput or space, or lower the request rate per pod."),
        _alert("ForgelineDatasetDrift",
               f"max by (model) (forgeline_dataset_drift_share{mon_sel}) >= "
               f"{t.drift_share:g}",
               t.wait["ForgelineDatasetDrift"], "warning", labels,
               f"{model}: the inputs drifted",
               f"At least {_pct(t.drift_share)} of the features of {who} drifted from the "
               f"training data. See which ones (forgeline monitor {model}) and consider "
               f"retraining (forgeline retrain {model})."),
    ]
    for metric, floor in t.floors.items():
        rules.append(_alert(
            "ForgelineEstimatedMetricLow",
            f"min by (model, metric) (forgeline_estimated_metric"
            f"{_sel(job=job, model=model, metric=metric)}) < {floor:g}",
            t.wait["ForgelineEstimatedMetricLow"], "warning", {**labels, "metric": metric},
            f"{model}: estimated {metric} below {floor:g}",
            f"The {metric} of {who}, estimated from its confidence on recent predictions, "
            f"is below its floor {floor:g}. Check drift and data quality (forgeline "
            f"monitor {model}) and retrain when labels confirm it."))
    return {"groups": [{"name": f"forgeline-{model}", "rules": rules}]}


def _panel(title: str, targets: list[tuple[str, str]], *, unit: str = "short",
           kind: str = "timeseries", description: str = "") -> dict[str, Any]:
    return {"type": kind, "title": title, "description": description,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}}
            if kind == "timeseries" else {},
            "targets": [{"datasource": {"type": "prometheus", "uid": "${datasource}"},
                         "expr": expr, "legendFormat": legend, "refId": chr(ord("A") + i),
                         **({"instant": True, "format": "table"} if kind == "table" else {})}
                        for i, (expr, legend) in enumerate(targets)]}


def dashboard(model: str, version: str, job: str, source: str, thresholds: Thresholds
              ) -> dict[str, Any]:
    """The Grafana dashboard of ``dashboard.json`` (see the module docstring)."""
    w, s, m = thresholds.window, _sel(job=job), _sel(job=job, model=model)
    errors = f'{{job="{job}",status=~"[45].."}}'
    latency = [(f"histogram_quantile({q}, sum by (route, le) (rate("
                f"forgeline_request_duration_seconds_bucket{s}[{w}])))",
                f"p{q * 100:g} {{{{route}}}}")
               for q in _QUANTILES]
    serving = [
        _panel("Requests per second", [(f"sum by (route, status) (rate(forgeline_requests_"
                                        f"total{s}[{w}]))", "{{route}} {{status}}")],
               unit="reqps"),
        _panel("Latency p50 / p90 / p99 by route", latency, unit="s"),
        _panel("Errors per second (4xx, 5xx)",
               [(f"sum by (route, status) (rate(forgeline_requests_total{errors}[{w}]))",
                 "{{route}} {{status}}")], unit="reqps"),
        _panel("Batch size (rows per model call)",
               [(f"histogram_quantile({q}, sum by (le) (rate(forgeline_batch_size_rows_"
                 f"bucket{s}[{w}])))", f"p{q * 100:g}") for q in (0.5, 0.99)]),
        _panel("Model versions and runtimes served",
               [(f"max by (name, version, runtime) (forgeline_model_info{s})", "")],
               kind="table"),
        _panel("Requests by model version and role",
               [(f"sum by (name, version, role) (rate(forgeline_model_requests_total{s}"
                 f"[{w}]))", "{{name}}/{{version}} {{role}}")], unit="reqps"),
        _panel("Prediction log drops",
               [(f"sum(increase(forgeline_prediction_log_dropped_total{s}[{w}]))",
                 "dropped")], description="Records the prediction log could not keep."),
        _panel("Requests in flight", [(f"sum(forgeline_requests_in_flight{s})",
                                       "in flight")]),
    ]
    monitoring = [
        _panel("Drift score per feature",
               [(f"max by (feature, method) (forgeline_drift_score{m})",
                 "{{feature}} ({{method}})")]),
        _panel("Dataset drift (share of drifted features)",
               [(f"max(forgeline_dataset_drift_share{m})", "drifted share")],
               unit="percentunit",
               description=f"The alert fires at {_pct(thresholds.drift_share)}."),
        _panel("Estimated and realised metrics",
               [(f"max by (metric) (forgeline_estimated_metric{m})", "estimated {{metric}}"),
                (f"max by (metric) (forgeline_realized_metric{m})", "realised {{metric}}")]),
        _panel("Alerts firing",
               [(f'count by (alertname) (ALERTS{_sel(alertstate="firing", model=model)})',
                 "{{alertname}}"),
                (f"max(forgeline_alerts_fired{m})", "monitor rules fired")]),
    ]
    panels: list[dict[str, Any]] = []
    y = 0
    for i, (title, group) in enumerate((("Serving", serving), ("Monitoring", monitoring))):
        panels.append({"type": "row", "title": title, "collapsed": False, "panels": [],
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "id": 100 + i})
        y += 1
        for j, panel in enumerate(group):
            panel["gridPos"] = {"h": 8, "w": 12, "x": 12 * (j % 2), "y": y + 8 * (j // 2)}
            panel["id"] = len(panels) + 1
            panels.append(panel)
        y += 8 * ((len(group) + 1) // 2)
    return {"uid": f"forgeline-{model.lower()}"[:40], "title": f"Forgeline: {model}",
            "description": f"The server of {source} (job {job}); written by forgeline deploy "
                           "prometheus.",
            "tags": ["forgeline", model], "timezone": "browser", "editable": True,
            "schemaVersion": SCHEMA_VERSION, "version": 1, "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"},
            "templating": {"list": [{"name": "datasource", "label": "Data source",
                                     "type": "datasource", "query": "prometheus",
                                     "current": {}, "hide": 0, "refresh": 1,
                                     "options": [], "regex": ""}]},
            "annotations": {"list": []}, "panels": panels}


def provisioning(prometheus_url: str, dashboards_path: str) -> dict[str, Any]:
    """Grafana's provisioning files: a Prometheus data source, the dashboards folder."""
    return {"provisioning/datasources.yaml": {"apiVersion": 1, "datasources": [{
                "name": "Prometheus", "type": "prometheus", "uid": "prometheus",
                "access": "proxy", "url": prometheus_url, "isDefault": True}]},
            "provisioning/dashboards.yaml": {"apiVersion": 1, "providers": [{
                "name": "forgeline", "folder": "Forgeline", "type": "file",
                "disableDeletion": False, "allowUiUpdates": True,
                "options": {"path": dashboards_path}}]}}


def observability_files(ref_or_predictor: str | Path | Predictor, *,
                        client: Client | None = None, cache_dir: Path | None = None,
                        thresholds: Thresholds | None = None, job: str | None = None,
                        prometheus_url: str = "http://localhost:9090",
                        dashboards_path: str = "/var/lib/grafana/dashboards/forgeline",
                        reference: str | None = None) -> Observability:
    """Alert rules, a dashboard and provisioning files for one model version's server.

    Args:
        ref_or_predictor: a model reference (``fraud@champion``), a package directory or a
            loaded Predictor; resolved now, so the files name one version.
        client: the registry to resolve a reference in.
        cache_dir: where a downloaded version is kept.
        thresholds: when the alerts fire (defaults: :class:`Thresholds`).
        job: the scrape job of the model's servers (default: the model's name in
            lowercase, the Service ``forgeline deploy k8s`` writes).
        prometheus_url: the data source's URL in ``provisioning/datasources.yaml``.
        dashboards_path: where Grafana finds ``dashboard.json``.
        reference: the reference a given Predictor was loaded by, for the files' headers.

    Raises:
        NotFound: no such model, version or alias.
        InvalidInput: a bad job name.
    """
    from forgeline.serving.docker import identity

    predictor = ref_or_predictor if isinstance(ref_or_predictor, Predictor) else (
        load_model(ref_or_predictor, client, cache_dir, lazy=True))
    thresholds = thresholds or Thresholds()
    mv = predictor.model_version
    lower, version = identity(predictor)
    model = mv.name if mv is not None else lower
    job = job if job is not None else lower
    if not _JOB.match(job):
        raise InvalidInput(f"Invalid job {job!r}: use letters, digits and _ . : / -.")
    source = f"{mv.name}/{mv.version}" if mv is not None else str(predictor.path)
    if reference is None and isinstance(ref_or_predictor, str):
        reference = ref_or_predictor
    if mv is not None and reference is not None and reference != source:
        source += f" ({reference})"
    header = (f"# Written by forgeline deploy prometheus for {source}.\n"
              f"# Alerts on the scrape job {job!r}.\n")
    files = {"alerts.yaml": header + yaml.safe_dump(
                 alert_rules(model, version, job, thresholds), sort_keys=False,
                 width=1000),
             "dashboard.json": json.dumps(dashboard(model, version, job, source, thresholds),
                                          indent=2) + "\n"}
    for path, doc in provisioning(prometheus_url, dashboards_path).items():
        files[path] = header.splitlines()[0] + "\n" + yaml.safe_dump(doc, sort_keys=False)
    return Observability(model, version, job, files, source)


def write_observability(observability: Observability, directory: Path) -> list[Path]:
    """Write the files into ``directory`` at once, as ``forgeline deploy k8s`` does.

    Raises:
        AlreadyExists: ``directory`` holds something this command did not write.
    """
    return write_folder(observability.files, directory)
