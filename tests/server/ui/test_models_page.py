"""The models pages in a real browser: the registry list, a model's versions, aliases,
lineage and card, and moving an alias through its confirmation with the REST API's roles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forgeline.entities import GIT_COMMIT, GIT_DIRTY, Artifact, Dataset, Role, RunStatus
from forgeline.store import LocalArtifactStore, Store
from tests.server.conftest import Team
from tests.server.ui.conftest import screenshot

T0 = 1_790_000_000_000
CARD = """# Model card: fraud

| Field | Value |
|---|---|
| Task | binary |
| Primary metric | roc_auc = 0.91 |

<script>window.pwned = 1</script> and [a bad link](javascript:alert(1)) stay text.
"""


def seed_model(store: Store, artifacts: Path, tmp_path: Path, versions: int = 3) -> list[str]:
    """``fraud`` with ``versions`` versions, each from a training run (a child of a
    pipeline run) with a dataset, a commit, metrics and a card; champion -> v1."""
    eid = store.get_or_create_experiment("fraud").experiment_id
    pipeline = store.create_run(eid, "pipeline", T0, tags={"forgeline.kind": "pipeline"})
    card = tmp_path / "card.md"
    card.write_text(CARD)
    digest = LocalArtifactStore(artifacts).put(card)
    runs = []
    for v in range(1, versions + 1):
        run = store.create_run(eid, f"train-{v}", T0 + v * 60_000,
                               tags={GIT_COMMIT: f"{v}abc1234567890", GIT_DIRTY: "false"},
                               parent_run_id=pipeline.run_id)
        store.log_batch(run.run_id, metrics=[("test_roc_auc", 0.8 + v / 100, 0, T0),
                                             ("cv_roc_auc", 0.79 + v / 100, 0, T0)],
                        params={"metric": "roc_auc"})
        store.log_dataset(run.run_id, Dataset(f"{v}" * 64, f"transactions-{v}",
                                              "data/transactions.parquet", 20_000, 15),
                          "train")
        store.record_artifacts(run.run_id, [Artifact("model/card.md", digest,
                                                     card.stat().st_size)])
        store.set_run_status(run.run_id, RunStatus.FINISHED, T0 + v * 60_000 + 5_000)
        store.create_model_version("fraud", run.run_id, "model", f"version {v}",
                                   tags={"team": "risk"},
                                   aliases=["champion"] if v == 1 else [], actor="seed")
        runs.append(run.run_id)
    return runs


def sign_in(page: Any, team: Team, role: Role, name: str, path: str = "/ui/models/fraud"
            ) -> None:
    page.goto(f"{team.url}{path}")
    page.get_by_label("Token").fill(team.secret(role, name))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{path}")


def ask_to_move(page: Any, alias: str, version: int) -> None:
    page.get_by_label("Alias").fill(alias)
    page.get_by_label("to version").select_option(str(version))
    page.get_by_role("button", name="Move…").click()


def test_models_list_and_a_model_page(team: Team, page: Any, tmp_path: Path) -> None:
    runs = seed_model(team.store, team.artifacts, tmp_path)
    team.store.set_alias("fraud", "challenger", 3, actor="carol")
    team.store.create_registered_model("churn", "Who leaves next month; retrained weekly.")
    team.store.create_model_version("churn", None, "model", aliases=["champion"])
    team.store.set_registered_model_tag("churn", "forgeline.protected", "true")
    page.goto(f"{team.url}/ui/models")
    rows = page.locator("table.models tbody tr")
    assert rows.count() == 2
    text = rows.filter(has_text="fraud").inner_text()
    assert "v3" in text and "@challenger → v3" in text and "@champion → v1" in text, text
    churn = rows.filter(has_text="churn").inner_text()
    assert "protected" in churn and "Who leaves next month" in churn, churn
    screenshot(page, "models")
    page.get_by_role("link", name="fraud", exact=True).click()
    page.wait_for_url("**/ui/models/fraud")
    versions = page.locator("table.versions tbody tr")
    assert versions.count() == 3
    assert "0.83" in versions.first.inner_text()  # v3's test_roc_auc, newest first
    assert page.locator("table.versions th").all_inner_texts()[6:8] == ["test_roc_auc",
                                                                       "cv_roc_auc"]
    aliases = page.locator("table.aliases").inner_text()
    assert "@challenger" in aliases and "carol" in aliases, aliases
    assert "moved" not in page.locator("table.history").inner_text()
    # lineage of the champion (v1): run, dataset, code, parent run
    lineage = page.locator("svg.lineage")
    assert lineage.get_attribute("aria-label") == "Lineage of fraud/1"
    labels = lineage.locator("text.title").all_text_contents()
    assert labels == ["fraud v1", "run train-1", "transactions-1", "commit 1abc123456",
                      "run pipeline"], labels
    assert lineage.locator(f"a[href='/ui/runs/{runs[0]}']").count() == 1
    # the card: markdown rendered, raw HTML and a javascript: link shown as text
    card = page.locator("article.markdown")
    assert card.locator("h1").inner_text() == "Model card: fraud"
    assert card.locator("table td").all_inner_texts()[:2] == ["Task", "binary"]
    assert "<script>window.pwned = 1</script>" in card.inner_text()
    assert card.locator("script").count() == 0 and card.locator("a").count() == 0
    assert page.evaluate("window.pwned") is None
    screenshot(page, "model")
    # another version's lineage and card, by its link
    page.get_by_role("link", name="v3", exact=True).first.click()
    page.wait_for_url("**version=3*")
    assert page.locator("svg.lineage text.title").first.text_content() == "fraud v3"


def test_a_writer_moves_an_alias_after_confirming(secured: Team, page: Any,
                                                  tmp_path: Path) -> None:
    seed_model(secured.store, secured.artifacts, tmp_path)
    sign_in(page, secured, Role.WRITER, "wendy")
    ask_to_move(page, "champion", 2)
    assert page.get_by_role("heading").first.inner_text() == "Move champion from v1 to v2?"
    assert secured.store.get_alias("fraud", "champion") == 1  # nothing yet
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url("**/ui/models/fraud?moved=champion*")
    assert page.get_by_role("status").inner_text() == "@champion now points at v2."
    assert secured.store.get_alias("fraud", "champion") == 2
    event = secured.store.get_alias_history("fraud", "champion")[0]
    assert (event.previous_version, event.version, event.actor) == (1, 2, "wendy")
    assert "moved v1 → v2" in page.locator("table.history tbody tr").first.inner_text()
    assert "wendy" in page.locator("table.history tbody tr").first.inner_text()
    # Cancel changes nothing
    ask_to_move(page, "champion", 3)
    page.get_by_role("link", name="Cancel").click()
    page.wait_for_url("**/ui/models/fraud#aliases")
    assert secured.store.get_alias("fraud", "champion") == 2


def test_a_stale_confirmation_is_refused_not_applied(secured: Team, page: Any,
                                                     tmp_path: Path) -> None:
    seed_model(secured.store, secured.artifacts, tmp_path)
    sign_in(page, secured, Role.WRITER, "wendy")
    ask_to_move(page, "champion", 2)
    page.get_by_role("heading", name="Move champion from v1 to v2?").wait_for()
    secured.store.set_alias("fraud", "champion", 3, actor="bob")  # someone else, meanwhile
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Confirm").click()
    assert answer.value.status == 409
    alert = page.get_by_role("alert").inner_text()
    assert "was moved since you were asked" in alert and "Nothing was changed" in alert, alert
    assert secured.store.get_alias("fraud", "champion") == 3
    assert secured.store.get_alias_history("fraud", "champion")[0].actor == "bob"
    # asked again, with where it points now
    assert page.get_by_role("heading").first.inner_text() == "Move champion from v3 to v2?"
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url("**moved=champion*")
    assert secured.store.get_alias("fraud", "champion") == 2


def test_a_reader_is_refused_and_nothing_changes(secured: Team, page: Any,
                                                 tmp_path: Path) -> None:
    seed_model(secured.store, secured.artifacts, tmp_path)
    before = secured.store.get_alias_history("fraud")
    sign_in(page, secured, Role.READER, "rita")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        ask_to_move(page, "champion", 2)
    assert answer.value.status == 403
    assert page.get_by_role("heading").first.inner_text() == "Not allowed"
    message = page.get_by_role("alert").inner_text()
    assert message == ("Token 'rita' has the role reader; this request needs the role "
                       "writer."), message
    assert "Nothing was changed" in page.content()
    assert secured.store.get_alias("fraud", "champion") == 1
    assert secured.store.get_alias_history("fraud") == before
    # a confirmation forged by hand is refused the same way
    response = page.request.post(f"{secured.url}/ui/models/fraud/aliases",
                                 form={"alias": "champion", "version": "2", "current": "1",
                                       "step": "confirm"})
    assert response.status == 403
    assert secured.store.get_alias("fraud", "champion") == 1


def test_a_protected_model_refuses_a_writer_and_lets_an_admin(secured: Team, page: Any,
                                                              tmp_path: Path) -> None:
    seed_model(secured.store, secured.artifacts, tmp_path)
    secured.store.set_registered_model_tag("fraud", "forgeline.protected", "true")
    sign_in(page, secured, Role.WRITER, "wendy")
    assert "protected" in page.locator("h1").first.inner_text()
    ask_to_move(page, "champion", 2)
    message = page.get_by_role("alert").inner_text()
    assert "needs the role admin (model 'fraud' is protected" in message, message
    assert secured.store.get_alias("fraud", "champion") == 1
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, secured, Role.ADMIN, "ana")
    ask_to_move(page, "champion", 2)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url("**moved=champion*")
    assert secured.store.get_alias("fraud", "champion") == 2
    assert secured.store.get_alias_history("fraud", "champion")[0].actor == "ana"


def test_a_bad_alias_and_an_unknown_model_are_pages(team: Team, page: Any,
                                                    tmp_path: Path) -> None:
    seed_model(team.store, team.artifacts, tmp_path, versions=1)
    page.goto(f"{team.url}/ui/models/fraud")
    ask_to_move(page, "v2", 1)
    assert "Invalid alias 'v2'" in page.get_by_role("alert").inner_text()
    team.store.create_model_version("bare", None, "model")  # no run: no lineage, no card
    page.goto(f"{team.url}/ui/models/bare")
    assert page.locator("svg.lineage text.title").all_text_contents() == ["bare v1"]
    assert "registered without a run" in page.locator("main").inner_text()
    response = page.goto(f"{team.url}/ui/models/nope")
    assert response.status == 404
    assert page.get_by_role("heading").first.inner_text() == "Not found"
    assert "nope" in page.locator(".message").inner_text()
    assert "Traceback" not in page.content()
