"""The compare page, in a real browser: overlaid curves, the diff table, parallel
coordinates and a scatter; and its JSON route's point budget."""

from __future__ import annotations

import math
from typing import Any

import httpx

from forgeline.entities import RunStatus
from forgeline.server.ui.compare import CHART_POINTS, run_points
from forgeline.store import Store
from tests.server.conftest import Team
from tests.server.ui.conftest import screenshot, seed_runs

T0 = 1_700_000_000_000


def _runs(store: Store, params: list[dict[str, str]], steps: int = 200,
          experiment: str = "tuning") -> list[str]:
    """One finished run per params dict, each with a loss and an auc curve."""
    eid = store.get_or_create_experiment(experiment).experiment_id
    ids = []
    for i, p in enumerate(params):
        run_id = store.create_run(eid, f"trial-{i}", T0 + i * 1000).run_id
        depth = float(p.get("depth", 4))
        store.log_batch(run_id, params=p, metrics=[
            (k, f(s), s, T0 + s) for s in range(steps) for k, f in
            (("loss", lambda s, d=depth: math.exp(-s / (10 * d))),
             ("auc", lambda s, d=depth: 0.6 + d / 30 * (1 - math.exp(-s / 50))))])
        store.set_run_status(run_id, RunStatus.FINISHED, T0 + i * 1000 + 500)
        ids.append(run_id)
    return ids


def _axes(svg: Any) -> list[str]:
    return svg.locator("g.axis").evaluate_all("gs => gs.map(g => g.dataset.key)")


def test_compare_two_runs_from_the_runs_table(team: Team, page: Any) -> None:
    _runs(team.store, [{"depth": "3", "lr": "0.1", "loss_fn": "log"},
                       {"depth": "8", "lr": "0.1", "loss_fn": "focal"}])
    page.goto(f"{team.url}/ui/experiments/1")
    for box in page.locator("table.runs tbody input[type=checkbox]").all():
        box.check()
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url("**/ui/compare?runs=*&runs=*")
    assert "Compare 2 runs" in page.locator("h1").inner_text()
    # one chart per metric, each with one series per run (uPlot's legend: step + 2)
    assert page.locator(".chart").count() == 2
    page.wait_for_function("window.forgeline.charts >= 2")
    for chart in page.locator(".chart").all():
        assert chart.locator(".u-legend .u-series").count() == 3
    legend = page.locator(".chart").first.locator(".u-legend").inner_text()
    assert "trial-0" in legend and "trial-1" in legend
    # the diff table: the params that differ; the same ones only on demand
    depth = page.locator("#diff tr[data-key='params.depth']")
    lr = page.locator("#diff tr[data-key='params.lr']")
    assert depth.is_visible() and sorted(depth.locator("td").all_inner_texts()) == ["3", "8"]
    assert page.locator("#diff tr[data-key='params.loss_fn']").is_visible()
    assert not lr.is_visible()
    page.get_by_label("Show the rows that are the same").check()
    assert lr.is_visible() and lr.locator("td").all_inner_texts() == ["0.1", "0.1"]
    assert page.locator("#diff tr[data-key='metrics.auc']").is_visible()
    # parallel coordinates: by default the differing params and the first metric
    svg = page.locator("svg#parallel")
    assert svg.locator("polyline").count() == 2
    assert _axes(svg) == ["depth", "loss_fn", "auc"]
    assert page.locator("svg#scatter circle").count() == 2
    screenshot(page, "compare")
    # choosing the axes and the metric is a GET form: the choice is in the URL
    page.locator("fieldset.pick-params").get_by_label("loss_fn").uncheck()
    page.locator("fieldset.pick-params").get_by_label("lr").check()
    page.get_by_label("Metric").select_option("loss")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**metric=loss*")
    assert _axes(svg) == ["depth", "lr", "loss"]
    assert svg.locator("polyline").count() == 2
    assert "loss against depth" in page.locator(".plot h3").nth(1).inner_text()


def test_many_runs_share_a_chart_budget_and_zoom_is_exact(team: Team) -> None:
    ids = _runs(team.store, [{"depth": str(3 + i % 5)} for i in range(40)], steps=1000)
    budget = run_points(40)
    assert budget == CHART_POINTS // 40
    with httpx.Client(timeout=60, base_url=team.url) as http:
        got = http.get("/ui/compare/metrics/loss", params={"runs": ids}).json()["series"]
        zoom = http.get("/ui/compare/metrics/loss",
                        params={"runs": ids, "min_step": 10, "max_step": 59}).json()["series"]
        page = http.get("/ui/compare", params={"runs": ids})
    assert [s["run_id"] for s in got] == ids
    assert all(0 < len(s["steps"]) <= budget and s["total"] == 1000 for s in got)
    assert sum(len(s["steps"]) for s in got) <= CHART_POINTS
    assert all(s["steps"] == list(range(10, 60)) for s in zoom)
    assert zoom[0]["values"] == [math.exp(-s / 30) for s in range(10, 60)]
    assert page.status_code == 200 and page.text.count("<polyline") == 40
    assert run_points(2) == 2000 and run_points(200) >= 20


def test_compare_needs_two_to_two_hundred_known_runs(team: Team, page: Any) -> None:
    ids = seed_runs(team.store, runs=2)
    response = page.goto(f"{team.url}/ui/compare?runs={ids[0]}")
    assert response.status == 400
    assert "Choose at least 2 runs to compare (1 chosen)" in page.get_by_role(
        "alert").inner_text()
    page.goto(f"{team.url}/ui/compare?runs={ids[0]}&runs={ids[0]}")  # the same run twice
    assert "at least 2 runs" in page.get_by_role("alert").inner_text()
    many = "&".join(f"runs={i:032x}" for i in range(201))
    page.goto(f"{team.url}/ui/compare?{many}")
    assert "Compare at most 200 runs at once (201 chosen)" in page.get_by_role(
        "alert").inner_text()
    response = page.goto(f"{team.url}/ui/compare?runs={ids[0]}&runs=feedc0de")
    assert response.status == 404
    assert "Run 'feedc0de' not found" in page.locator(".message").inner_text()
    assert "Traceback" not in page.content()
    response = page.goto(f"{team.url}/ui/compare?runs={ids[0]}&runs=x')%20or%20('1")
    assert response.status == 404  # an id is a value, never a piece of the filter
    assert "Run \"x') or ('1\" not found" in page.locator(".message").inner_text()
