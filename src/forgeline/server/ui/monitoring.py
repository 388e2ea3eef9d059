"""Monitoring pages: the models with monitoring history, and one model's history — a heat
map of drift by day and feature, drift and metrics over time, the alerts fired, each
check's report, and the retraining cycles' decisions with their evidence.

Everything comes from :meth:`~forgeline.store.base.Store.get_monitoring_history` (what
``forgeline monitor`` and ``forgeline serve``'s periodic monitor recorded) and, for the
decisions, the ``retrain`` runs ``forgeline retrain`` logs in the model's experiment
(tags ``forgeline.retrain.*``, params ``champion``/``challenger``, metrics
``champion_score``/``challenger_score`` and the ``decision.json`` artifact).

A record's time is the end of its window (else when it was recorded), on the record's own
clock, so a page shows the ``days`` up to the model's last check, not up to now: a
history monitored on event times from last year is still a page of history. Days are UTC.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from forgeline.entities import MonitoringRecord, RegisteredModel, Role, Run
from forgeline.errors import ForgelineError, InvalidInput, NotFound
from forgeline.server.auth import require
from forgeline.server.ui.render import UI_PREFIX, fmt_number, page
from forgeline.store.base import Store

__all__ = ["Cell", "HeatMap", "heat_map", "router"]

router = APIRouter(dependencies=[Depends(require(Role.READER))])
DAY_MS = 86_400_000
RANGES = (7, 30, 90, 365)
MAX_FEATURES = 60
MAX_DECISIONS = 50
OVERVIEW_DAYS = 30
# the heat map's scale: the share of a day's checks that found the feature drifted
_STOPS = ((0.0, (220, 242, 228)), (0.5, (251, 191, 36)), (1.0, (185, 28, 28)))


def _store(request: Request) -> Store:
    return request.app.state.store


def when(record: MonitoringRecord) -> int:
    """A record's time (ms): the end of its window, else when it was recorded."""
    return record.window_end if record.window_end is not None else record.creation_time


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def _day_start(ms: int) -> int:
    return ms - ms % DAY_MS


def colour(share: float) -> str:
    """The heat map's colour of a share in [0, 1] (green, amber, red)."""
    share = min(1.0, max(0.0, share))
    for (a, ca), (b, cb) in itertools.pairwise(_STOPS):
        if share <= b:
            t = (share - a) / (b - a)
            return "rgb({},{},{})".format(*(round(x + (y - x) * t) for x, y in zip(ca, cb,
                                                                                 strict=True)))
    return "rgb({},{},{})".format(*_STOPS[-1][1])


@dataclass(frozen=True, slots=True)
class Cell:
    """One feature on one day: its checks, how many found it drifted, the scores."""

    feature: str
    day: str
    scores: tuple[float, ...]  # in the order of the checks; only checks that scored it
    flagged: int

    @property
    def checks(self) -> int:
        return len(self.scores)

    @property
    def share(self) -> float:
        return self.flagged / self.checks if self.checks else 0.0

    @property
    def score(self) -> float:
        return self.scores[-1]

    @property
    def text(self) -> str:
        """The score in at most four characters (``.49``, ``<.01``, ``1``, ``2.4``)."""
        s = self.score
        if s == 0 or not 0.01 <= abs(s) < 0.995:
            return "0" if s == 0 else "<.01" if abs(s) < 0.01 else f"{s:.2g}"
        return f"{s:.2f}".replace("0.", ".", 1)

    @property
    def colour(self) -> str:
        return colour(self.share)

    @property
    def dark(self) -> bool:
        return self.share > 0.6

    @property
    def tooltip(self) -> str:
        if self.checks == 1:
            verdict = "drifted" if self.flagged else "no drift"
            return f"{self.feature} · {self.day}: drift score {self.score:.6g} ({verdict})"
        return (f"{self.feature} · {self.day}: drift score {self.score:.6g} at the last of "
                f"{self.checks} checks (from {min(self.scores):.6g} to "
                f"{max(self.scores):.6g}); drifted in {self.flagged} of {self.checks}")


@dataclass(frozen=True, slots=True)
class HeatMap:
    days: tuple[str, ...]
    features: tuple[str, ...]
    cells: dict[str, tuple[Cell | None, ...]]
    hidden: int = 0  # features left out (the least drifted)


def heat_map(records: list[MonitoringRecord], max_features: int = MAX_FEATURES) -> HeatMap:
    """Days (from the first to the last record's) by features, most often drifted first."""
    if not records:
        return HeatMap((), (), {})
    first, last = _day_start(min(map(when, records))), _day_start(max(map(when, records)))
    days = tuple(_day(ms) for ms in range(first, last + 1, DAY_MS))
    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    flagged: dict[tuple[str, str], int] = defaultdict(int)
    for r in sorted(records, key=when):
        day, drifted = _day(when(r)), set(r.drifted)
        for feature, score in r.features.items():
            scores[feature, day].append(score)
            flagged[feature, day] += feature in drifted
    features = {f for f, _ in scores}
    times_flagged = {f: sum(flagged[f, d] for d in days) for f in features}
    ordered = sorted(features, key=lambda f: (-times_flagged[f], f))
    shown = ordered[:max_features]
    cells = {f: tuple(Cell(f, d, tuple(scores[f, d]), flagged[f, d]) if (f, d) in scores
                      else None for d in days) for f in shown}
    return HeatMap(days, tuple(shown), cells, len(ordered) - len(shown))


def _history(store: Store, model: str, days: int) -> list[MonitoringRecord]:
    """The records of the ``days`` (UTC) up to the model's last check, oldest first."""
    last = store.get_monitoring_history(model, limit=1)
    if not last:
        return []
    since = _day_start(when(last[0])) - (days - 1) * DAY_MS
    return store.get_monitoring_history(model, since=since)


@dataclass(frozen=True, slots=True)
class Summary:
    """A model on the overview: its last check and the alerts of its recent checks."""

    name: str
    last: MonitoringRecord
    checks: int
    alerts: int


@router.get("/monitoring")
def overview(request: Request) -> Response:
    store = _store(request)
    monitored, silent = [], []
    for m in sorted(store.list_registered_models(), key=lambda m: m.name):
        recent = _history(store, m.name, OVERVIEW_DAYS)
        if recent:
            monitored.append(Summary(m.name, recent[-1], len(recent),
                                     sum(len(r.alerts) for r in recent)))
        else:
            silent.append(m.name)
    return page(request, "monitoring.html", models=monitored, silent=silent,
                days=OVERVIEW_DAYS)


@dataclass(frozen=True, slots=True)
class Decision:
    """One retraining cycle's decision and its evidence, from its ``retrain`` run."""

    run: Run
    action: str
    reason: str
    champion: int | None
    challenger: int | None
    metric: str | None
    champion_score: float | None
    challenger_score: float | None
    triggers: tuple[str, ...] = ()
    rows: dict[str, int] = field(default_factory=dict)
    challenger_run_id: str | None = None

    @property
    def gain(self) -> float | None:
        if self.champion_score is None or self.challenger_score is None:
            return None
        return self.challenger_score - self.champion_score


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def _decision_file(request: Request, store: Store, run_id: str) -> dict[str, Any]:
    """The run's ``decision.json`` (metric, triggers, rows), or {} when unreadable."""
    try:
        found = [a for a in store.list_artifacts(run_id) if a.path == "decision.json"]
        if not found or found[0].size > 1_000_000:
            return {}
        body = json.loads(request.app.state.artifacts.get(found[0].digest).read_bytes())
    except (ForgelineError, OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _decisions(request: Request, store: Store, model: str) -> list[Decision]:
    experiment = store.get_experiment_by_name(model)
    if experiment is None:
        return []
    runs = store.search_runs([experiment.experiment_id],
                             filter="tags.`forgeline.kind` = 'retrain'",
                             order_by=["attributes.start_time DESC"],
                             max_results=MAX_DECISIONS)
    out = []
    for run in runs:
        body = _decision_file(request, store, run.run_id)
        challenger = _int(run.params.get("challenger"))
        challenger_run = None
        if challenger is not None:
            with contextlib.suppress(NotFound):
                challenger_run = store.get_model_version(model, challenger).run_id
        rows = body.get("rows")
        out.append(Decision(
            run, run.tags.get("forgeline.retrain.action", "running"),
            run.tags.get("forgeline.retrain.reason", ""), _int(run.params.get("champion")),
            challenger, body.get("metric") if isinstance(body.get("metric"), str) else None,
            run.metrics.get("champion_score"), run.metrics.get("challenger_score"),
            tuple(str(t) for t in body.get("triggers_fired") or ()),
            rows if isinstance(rows, dict) else {}, challenger_run))
    return out


def _registered(store: Store, model: str) -> RegisteredModel | None:
    try:
        return store.get_registered_model(model)
    except NotFound:
        return None


def _days(days: int) -> int:
    if days not in RANGES:
        raise InvalidInput(f"Show 7, 30, 90 or 365 days of history, not {days}.")
    return days


@router.get("/monitoring/{model}")
def model_history(request: Request, model: str, days: int = 30) -> Response:
    store = _store(request)
    registered = _registered(store, model)
    records = _history(store, model, _days(days))
    if registered is None and not records:
        raise NotFound(f"No model {model!r}: it is not registered and has no monitoring "
                       "history.", hint="See the models with history on the Monitoring page.")
    realised = {k for r in records for k in r.metrics}
    estimated = {k for r in records for k in r.estimated}
    # both kinds first (the comparison that tells whether the estimate can be trusted)
    metric_keys = {k: " and ".join(n for n, kind in (("realised", realised),
                                                     ("estimated", estimated)) if k in kind)
                   for k in sorted(realised | estimated,
                                   key=lambda k: (k not in realised or k not in estimated, k))}
    return page(request, "monitoring_model.html", model=model, registered=registered,
                records=records, last=records[-1] if records else None, days=days,
                ranges=RANGES, heat=heat_map(records), metric_keys=metric_keys,
                alerts=[r for r in reversed(records) if r.alerts],
                decisions=_decisions(request, store, model),
                series_url=f"{UI_PREFIX}/monitoring/{quote(model)}/series?days={days}",
                number=fmt_number)


def _points(records: list[MonitoringRecord], label: str, value: Any) -> dict[str, Any]:
    steps, values = [], []
    for r in records:
        v = value(r)
        if v is not None:
            steps.append(when(r) // 1000)
            values.append(v)
    return {"label": label, "steps": steps, "values": values, "total": len(steps)}


@router.get("/monitoring/{model}/series")
def series(request: Request, model: str, what: str = "drift", key: str = "",
           days: int = 30, min_step: int | None = None, max_step: int | None = None
           ) -> Response:
    """Chart data (forgeline.js): steps are the records' times in epoch seconds."""
    records = [r for r in _history(_store(request), model, _days(days))
               if (min_step is None or when(r) // 1000 >= min_step)
               and (max_step is None or when(r) // 1000 <= max_step)]
    if what == "drift":
        found = [_points(records, "dataset drift (share of features)",
                         lambda r: r.dataset_drift),
                 _points(records, "prediction drift", lambda r: r.prediction_drift)]
    elif what == "metric" and key:
        found = [_points(records, f"realised {key}", lambda r: r.metrics.get(key)),
                 _points(records, f"estimated {key}", lambda r: r.estimated.get(key))]
    else:
        raise InvalidInput(f"Unknown series {what!r}: use what=drift or what=metric&key=K.")
    return JSONResponse({"series": [s for s in found if s["steps"]]})
