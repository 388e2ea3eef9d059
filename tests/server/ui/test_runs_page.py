"""The experiments page and the runs table, in a real browser."""

from __future__ import annotations

from typing import Any

from forgeline.entities import Role
from tests.server.conftest import Team
from tests.server.ui.conftest import screenshot, seed_runs


def test_filter_sort_columns_and_pages(team: Team, page: Any) -> None:
    seed_runs(team.store, runs=12)
    page.goto(f"{team.url}/ui/")
    page.get_by_role("link", name="churn").click()
    page.wait_for_url("**/ui/experiments/*")
    rows = page.locator("table.runs tbody tr")
    assert rows.count() == 12
    # filter: only the deep trees
    page.get_by_label("Filter runs").fill("params.depth = '8'")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**q=params.depth*")
    depths = page.locator("table.runs tbody tr td:nth-child(9)").all_inner_texts()
    assert depths and set(depths) == {"8"}, depths
    # sort by the auc column: descending first
    page.get_by_label("Filter runs").fill("")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_function("new URLSearchParams(location.search).get('q') === ''")
    page.wait_for_function("document.querySelectorAll('table.runs tbody tr').length == 12")
    page.locator("th.metrics a[title='sort by metrics.auc']").click()
    page.wait_for_url("**sort=metrics.auc*DESC*")
    auc_cells = page.locator("table.runs tbody tr td:nth-child(7)")
    aucs = [float(x) for x in auc_cells.all_inner_texts()]
    assert aucs == sorted(aucs, reverse=True) and len(aucs) == 12
    # the view is in the URL: reloading it gives the same table
    page.reload()
    again = [float(x) for x in auc_cells.all_inner_texts()]
    assert again == aucs
    screenshot(page, "runs")
    # pages of 25 over 30 runs: a next page, then the first again
    seed_runs(team.store, runs=18, seed=1)
    page.goto(f"{team.url}/ui/experiments/1?size=25")
    assert rows.count() == 25
    page.get_by_role("link", name="Next page →").click()
    page.wait_for_url("**page_token=*")
    assert rows.count() == 5
    assert page.get_by_role("link", name="Next page →").count() == 0


def test_a_chosen_column_is_added_and_removed(team: Team, page: Any) -> None:
    seed_runs(team.store, runs=3)
    page.goto(f"{team.url}/ui/experiments/1?cols=metrics.auc")
    headers = page.locator("table.runs thead th")
    assert "lr" not in headers.all_inner_texts()[-1]
    page.get_by_label("Add a column").fill("params.lr")
    page.get_by_role("button", name="Add").click()
    page.wait_for_url("**params.lr*")
    assert "lr" in page.locator("table.runs thead th").last.inner_text()
    # the picker suggests every key of the experiment once it is used, not only the page's
    seed_runs(team.store, runs=1, seed=3)
    team.store.log_batch(team.store.search_runs(["1"], max_results=1)[0].run_id,
                         params={"rare": "x"})
    page.get_by_label("Add a column").focus()
    page.wait_for_selector("datalist#keys option[value='params.rare']", state="attached")
    page.locator("th.params a.remove").click()
    page.wait_for_url("**cols=metrics.auc&*")
    assert "lr" not in " ".join(page.locator("table.runs thead th").all_inner_texts())


def test_a_bad_filter_is_shown_inline_with_its_position(team: Team, page: Any) -> None:
    seed_runs(team.store, runs=2)
    page.goto(f"{team.url}/ui/experiments/1")
    page.get_by_label("Filter runs").fill("metrics.auc >> 0.5")
    page.get_by_role("button", name="Filter").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    text = alert.inner_text()
    assert "position 14" in text and "^" in text, text
    assert "Traceback" not in page.content()
    screenshot(page, "bad-filter")


def test_unknown_ids_and_a_missing_token_are_pages_not_traces(secured: Team, page: Any
                                                               ) -> None:
    page.goto(f"{secured.url}/ui/")
    assert page.get_by_role("heading", name="Sign in").is_visible()
    page.get_by_label("Token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    assert "unknown or revoked" in page.get_by_role("alert").inner_text()
    page.get_by_label("Token").fill(secured.secret(Role.READER, "alice"))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/")
    assert "alice" in page.locator("header .who").inner_text()
    response = page.goto(f"{secured.url}/ui/experiments/999")
    assert response.status == 404
    assert "Not found" in page.get_by_role("heading").first.inner_text()
    assert "Traceback" not in page.content()


def test_child_runs_fold_under_their_parent(team: Team, page: Any) -> None:
    """A training run's trials are its child runs: the table lists the parents, and a
    parent's button unfolds its children; the flat view lists every run."""
    store = team.store
    eid = store.get_or_create_experiment("tuning").experiment_id
    parent = store.create_run(eid, "train", 1_700_000_000_000)
    for i in range(3):
        store.create_run(eid, f"trial-{i}", 1_700_000_001_000 + i, parent_run_id=parent.run_id)
    store.create_run(eid, "alone", 1_700_000_002_000)
    page.goto(f"{team.url}/ui/experiments/{eid}")
    visible = page.locator("table.runs tbody tr:visible td:nth-child(2) a")
    assert sorted(visible.all_inner_texts()) == ["alone", "train"]
    page.get_by_role("button", name="▸ 3").click()
    assert sorted(visible.all_inner_texts()) == ["alone", "train", "trial-0", "trial-1",
                                                 "trial-2"]
    page.get_by_role("button", name="▾ 3").click()
    assert visible.count() == 2
    # a filter applies to the parents; the flat view lists every run that matches
    page.get_by_role("link", name="Show child runs as rows").click()
    page.wait_for_url("**nested=0**")
    assert page.locator("table.runs tbody tr").count() == 5
    page.get_by_label("Filter runs").fill("name LIKE 'trial%'")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**q=name*")
    assert sorted(visible.all_inner_texts()) == ["trial-0", "trial-1", "trial-2"]
