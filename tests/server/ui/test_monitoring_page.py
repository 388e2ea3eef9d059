"""The monitoring pages in a real browser: the models with history, and a model's heat map,
charts, alerts, reports and retraining decisions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forgeline.entities import Artifact, MonitoringRecord, RunStatus
from forgeline.store import LocalArtifactStore, Store
from tests.server.conftest import Team
from tests.server.ui.conftest import screenshot

DAY = 86_400_000
END = 1_790_000_000_000 - 1_790_000_000_000 % DAY + 23 * 3_600_000  # 23:00 UTC on a day
FEATURES = ("amount", "channel", "country", "hour")


def record(day: int, *, drifted: tuple[str, ...] = (), alerts: tuple[str, ...] = (),
           report: str | None = None) -> MonitoringRecord:
    """A check of ``fraud`` ending ``day`` days before END."""
    scores = {f: (0.0123 if f in drifted else 0.5 + i / 10) for i, f in enumerate(FEATURES)}
    share = len(drifted) / len(FEATURES)
    return MonitoringRecord(
        record_id=f"{day:032x}", model="fraud", version="1",
        window_start=END - day * DAY - DAY + 1, window_end=END - day * DAY,
        creation_time=END - day * DAY + 60_000, source="monitor", rows=1000 + day,
        dataset_drift=share, dataset_drifted=share >= 0.5, prediction_drift=0.1 + day / 100,
        features=scores, drifted=drifted, metrics={"roc_auc": 0.9 - (9 - day) / 100},
        estimated={"roc_auc": 0.88}, alerts=alerts, clock="event time: ts", report=report)


def seed_history(store: Store, artifacts: Path, tmp_path: Path) -> str:
    """Ten daily checks (drift from day 3 back, alerts on two days), a registered model
    and one retraining decision; returns the retrain run's id."""
    eid = store.get_or_create_experiment("fraud").experiment_id
    train = store.create_run(eid, "train", END)
    store.create_model_version("fraud", train.run_id, "model", aliases=["champion"])
    challenger = store.create_run(eid, "train", END + 1000)
    store.create_model_version("fraud", challenger.run_id, "model")
    for day in range(9, -1, -1):
        drifted = ("amount", "channel") if day <= 3 else ("amount",) if day == 6 else ()
        alerts = ("dataset_drift > 0.3",) if day in (0, 2) else ()
        store.record_monitoring(record(day, drifted=drifted, alerts=alerts,
                                       report="/srv/reports/fraud-0.html" if day == 0
                                       else None))
    retrain = store.create_run(eid, "retrain", END + 2000, tags={
        "forgeline.kind": "retrain", "forgeline.retrain.action": "promoted",
        "forgeline.retrain.reason": "challenger roc_auc 0.8100 beats champion 0.7000 by "
                                    "more than 0.01"})
    store.log_batch(retrain.run_id, metrics=[("champion_score", 0.7, 0, END),
                                             ("challenger_score", 0.81, 0, END)],
                    params={"champion": "1", "challenger": "2"})
    decision = tmp_path / "decision.json"
    decision.write_text(json.dumps({"metric": "roc_auc",
                                    "triggers_fired": ["dataset_drift > 0.3"],
                                    "rows": {"gate": 1000, "labelled": 3000}}))
    digest = LocalArtifactStore(artifacts).put(decision)
    store.record_artifacts(retrain.run_id, [Artifact("decision.json", digest,
                                                     decision.stat().st_size)])
    store.set_run_status(retrain.run_id, RunStatus.FINISHED, END + 3000)
    return retrain.run_id


def test_a_models_monitoring_history(team: Team, page: Any, tmp_path: Path) -> None:
    retrain = seed_history(team.store, team.artifacts, tmp_path)
    team.store.create_model_version("quiet", None, "model")
    page.goto(f"{team.url}/ui/monitoring")
    rows = page.locator("table.monitored tbody tr")
    assert rows.count() == 1
    text = rows.first.inner_text()
    assert "fraud" in text and "10 · 2 alerts" in text and "drifted" in text, text
    assert "Registered without monitoring history: quiet." in page.content()
    page.get_by_role("link", name="fraud").click()
    page.wait_for_url("**/ui/monitoring/fraud")
    # the heat map: days x features, most drifted first, the exact score in the tooltip
    heat = page.locator("table.heatmap")
    assert heat.locator("thead th.day").count() == 10
    assert heat.locator("tbody th.feature").all_inner_texts() == ["amount", "channel",
                                                                  "country", "hour"]
    last = heat.locator("tbody tr").first.locator("td").last
    assert last.get_attribute("title") == ("amount · " + _day(END)
                                           + ": drift score 0.0123 (drifted)")
    assert "flagged" in last.get_attribute("class")
    assert heat.locator("td.flagged").count() == 9  # amount on 5 days, channel on 4
    assert page.get_by_text("Share of the day's checks that found the feature drifted").count()
    # alerts, newest first, with the report where the check wrote it
    alerts = page.locator("table.alerts tbody tr")
    assert alerts.count() == 2
    assert "dataset_drift > 0.3" in alerts.first.inner_text()
    assert "/srv/reports/fraud-0.html" in alerts.first.inner_text()
    # the retraining decision and its evidence
    decision = page.locator("table.decisions tbody tr")
    assert decision.count() == 1
    text = decision.inner_text()
    assert "promoted" in text and "0.7" in text and "0.81" in text and "+0.1100" in text, text
    assert "roc_auc" in text and "gate 1,000" in text
    assert decision.locator(f"a[href='/ui/runs/{retrain}']").count() == 1
    # the charts: drift and roc_auc over time, drawn once scrolled into view
    charts = page.locator(".chart[data-time='1']")
    assert charts.count() == 2
    for i in range(2):
        charts.nth(i).scroll_into_view_if_needed()
    page.wait_for_function("window.forgeline.charts >= 2")
    assert charts.first.locator(".note").inner_text() == "20 points"
    legend = charts.nth(1).locator(".u-legend").inner_text()
    assert "realised roc_auc" in legend and "estimated roc_auc" in legend
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "monitoring")
    # a zoom asks for a time range (epoch seconds)
    src = charts.first.get_attribute("data-src")
    body = page.request.get(f"{team.url}{src}&min_step={(END - 2 * DAY) // 1000}").json()
    assert [len(s["steps"]) for s in body["series"]] == [3, 3]


def _day(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def test_no_history_and_unknown_models(team: Team, page: Any) -> None:
    page.goto(f"{team.url}/ui/monitoring")
    assert "No model has monitoring history yet" in page.locator("main").inner_text()
    team.store.create_model_version("quiet", None, "model")
    page.goto(f"{team.url}/ui/monitoring/quiet")
    assert "No monitoring history for quiet yet" in page.locator("main").inner_text()
    response = page.goto(f"{team.url}/ui/monitoring/nope")
    assert response.status == 404
    assert page.get_by_role("heading").first.inner_text() == "Not found"
    assert "No model 'nope'" in page.locator(".message").inner_text()
    response = page.goto(f"{team.url}/ui/monitoring/quiet?days=3")
    assert response.status == 400
    assert "Show 7, 30, 90 or 365 days" in page.locator(".message").inner_text()
