"""The web UI over the store `forgeline demo` leaves: what a new user sees first."""

from __future__ import annotations

from typing import Any

from forgeline.store import get_store
from tests.demorun import DemoRun
from tests.server.ui.conftest import screenshot
from tests.teamserver import LiveServer


def test_the_demo_models_monitoring_and_run_pages(live_server: LiveServer, demo_run: DemoRun,
                                                   page: Any) -> None:
    home, result = demo_run.home, demo_run.result  # the session's demo (tests/demorun.py)
    store = get_store(f"sqlite:///{home / 'forgeline.db'}")
    url = live_server.use(store, home / "artifacts")
    # the monitoring page of the demo's model: the check the demo ran, its alert, the decision
    page.goto(f"{url}/ui/monitoring")
    page.get_by_role("link", name="fraud", exact=True).first.click()
    page.wait_for_url("**/ui/monitoring/fraud**")
    body = page.locator("main").inner_text()
    assert "dataset_drift > 0.3" in body and "event time" in body
    assert result.decision.action in body
    screenshot(page, "monitoring-demo")
    # the model: its versions, where champion points, and who moved it
    page.goto(f"{url}/ui/models/fraud")
    champion = store.get_model_version("fraud", store.get_alias("fraud", "champion"))
    assert f"v{champion.version}" in page.locator("main").inner_text()
    # the training run of the champion, with its report and charts
    page.goto(f"{url}/ui/runs/{champion.run_id}")
    assert page.get_by_role("link", name="Training report").count() >= 1
