"""The page of one run, in a real browser: its record, a chart per metric (downsampled,
zoomable, live while the run runs) and its artifacts (listed, previewed, downloaded)."""

from __future__ import annotations

import base64
import math
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from forgeline.entities import GIT_COMMIT, GIT_DIRTY, Artifact, Dataset, Role, RunStatus
from forgeline.store import LocalArtifactStore
from forgeline.training.layout import REPORT_PATH
from tests.server.conftest import Team
from tests.server.ui.conftest import screenshot, seed_runs

T0 = 1_700_000_000_000
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGA"
                       "WjR9awAAAABJRU5ErkJggg==")
TEXT = "first line\n<script>window.pwned = 1</script> & <b>not bold</b>\n" + "".join(
    f"line {i}\n" for i in range(3, 400))


def _log_files(team: Team, run_id: str, files: dict[str, bytes], tmp: Path) -> None:
    """Put ``files`` (path in the run -> bytes) in the server's artifact store and record
    them on the run, as a client's log_artifact does."""
    artifacts = LocalArtifactStore(team.artifacts)
    recorded = []
    for i, (path, data) in enumerate(files.items()):
        local = tmp / f"file-{i}"
        local.write_bytes(data)
        recorded.append(Artifact(path, artifacts.put(local), len(data)))
    team.store.record_artifacts(run_id, recorded)


def _files(tmp: Path) -> dict[str, bytes]:
    frame = pd.DataFrame({"age": range(50), "city": [f"c{i % 7}" for i in range(50)],
                          "score": [i / 7 for i in range(50)]})
    frame.to_parquet(tmp / "sample.parquet")
    return {"notes/readme.txt": TEXT.encode(),
            "data/sample.csv": frame.to_csv(index=False).encode(),
            "data/sample.parquet": (tmp / "sample.parquet").read_bytes(),
            "plots/dot.png": PNG,
            "model/weights.bin": bytes(range(256)) * 4,
            REPORT_PATH: b"<!doctype html><html><body><h1 id='r'>Training report</h1>"
                         b"<script>document.getElementById('r').dataset.ran = '1'</script>"
                         b"</body></html>"}


def _rich_run(team: Team, tmp: Path) -> tuple[str, str]:
    """A finished run with params, metrics, tags, a dataset, a parent and a child, and
    artifacts of every kind the page previews; (its id, its child's id)."""
    store = team.store
    parent = seed_runs(store, runs=1)[0]
    eid = store.get_run(parent).experiment_id
    run_id = store.create_run(eid, "gbm-deep", T0, parent_run_id=parent).run_id
    store.log_batch(run_id, metrics=[(k, f(s), s, T0 + s) for s in range(300) for k, f in
                                     (("loss", lambda s: math.exp(-s / 60)),
                                      ("auc", lambda s: 0.95 - 0.2 * math.exp(-s / 40)))]
                    + [("test_auc", 0.9132456, 0, T0)],
                    params={"depth": "8", "lr": "0.1", "features": "age,city,score"},
                    tags={"team": "risk", GIT_COMMIT: "0123456789abcdef0123",
                          GIT_DIRTY: "true", "forgeline.command": "forgeline train spec.yaml",
                          "mlflow.note.content": "a note"})
    child = store.create_run(eid, "fold-1", T0 + 10_000, parent_run_id=run_id).run_id
    store.set_run_status(child, RunStatus.FINISHED, T0 + 20_000)
    store.log_dataset(run_id, Dataset("ab" * 32, "churn.csv", "/data/churn.csv", 5000, 12),
                      "training")
    _log_files(team, run_id, _files(tmp), tmp)
    store.set_run_status(run_id, RunStatus.FINISHED, T0 + 95_000)
    return run_id, child


def _charts_drawn(page: Any, count: int) -> None:
    for chart in page.locator(".chart").all()[:count]:
        chart.scroll_into_view_if_needed()
    page.wait_for_function(f"window.forgeline.charts >= {count}")


def test_a_run_page_shows_its_record_charts_and_artifacts(team: Team, page: Any,
                                                          tmp_path: Path) -> None:
    run_id, child = _rich_run(team, tmp_path)
    run = team.store.get_run(run_id)
    page.goto(f"{team.url}/ui/runs/{run_id}")
    assert run.name in page.locator("h1").inner_text()
    assert page.locator("h1 #head-status").inner_text() == "FINISHED"
    assert page.get_by_role("link", name="churn").is_visible()  # the experiment
    assert page.locator(".run-meta").get_by_role("link", name="run-00").is_visible()  # parent
    assert page.locator("#children").get_by_role("link", name="fold-1").get_attribute(
        "href") == f"/ui/runs/{child}"
    params = page.locator("#params").inner_text()
    assert "depth" in params and "age,city,score" in params
    assert "auc" in page.locator("#latest-metrics").inner_text()
    # own tags shown; system tags kept in a closed <details>
    assert "team" in page.locator("#tags").inner_text()
    system = page.locator("details.system-tags")
    assert system.get_attribute("open") is None
    assert not page.get_by_text("mlflow.note.content").is_visible()
    system.locator("summary").click()
    assert page.get_by_text("mlflow.note.content").is_visible()
    code = page.locator("#code-version").inner_text()
    assert "0123456789ab" in code and "dirty" in code and "forgeline train" in code
    datasets = page.locator("#datasets").inner_text()
    assert "churn.csv" in datasets and "training" in datasets and "5,000" in datasets
    # one chart per metric, drawn by uPlot; a metric logged once is shown as its value
    assert page.locator(".chart").count() == 3
    _charts_drawn(page, 2)
    assert page.locator(".chart .uplot canvas").count() == 2
    single = page.locator(".chart.single")
    single.scroll_into_view_if_needed()
    single.wait_for()
    assert single.inner_text() == "0.91325 at step 0"
    # the artifacts: folders, then a text file's head, escaped
    listing = page.locator("#artifact-list")
    for folder in ("data/", "model/", "notes/", "plots/", "report/"):
        assert folder in listing.inner_text()
    page.get_by_role("link", name="notes/").click()
    page.get_by_role("link", name="readme.txt").click()
    page.wait_for_url("**preview=notes*")
    text = page.locator("pre.text-preview")
    assert "<script>window.pwned = 1</script> & <b>not bold</b>" in text.inner_text()
    assert page.evaluate("window.pwned") is None
    assert "line 200\n" in text.inner_text() and "line 201" not in text.inner_text()
    assert "first 200 lines" in page.locator(".preview-head").inner_text()
    # a CSV and a Parquet file: their first 20 rows
    for name in ("sample.csv", "sample.parquet"):
        page.goto(f"{team.url}/ui/runs/{run_id}?dir=data&preview=data/{name}")
        table = page.locator("table.table-preview")
        assert table.locator("thead th").all_inner_texts() == ["age", "city", "score"]
        assert table.locator("tbody tr").count() == 20
        assert table.locator("tbody tr").first.inner_text().split("\t")[:2] == ["0", "c0"]
    assert "of 50 rows" in page.locator(".preview-head").inner_text()
    # an image, shown from the file's route
    page.goto(f"{team.url}/ui/runs/{run_id}?dir=plots&preview=plots/dot.png")
    page.wait_for_function("document.querySelector('img.image-preview').naturalWidth === 1")
    # the training report, linked at the top, in a sandboxed frame
    page.goto(f"{team.url}/ui/runs/{run_id}")
    page.locator("#report-link").click()
    page.wait_for_url("**preview=report*")
    frame = page.locator("iframe.html-preview")
    assert frame.get_attribute("sandbox") == "allow-scripts"
    report = page.frame_locator("iframe.html-preview").locator("#r")
    assert report.inner_text() == "Training report"
    assert report.get_attribute("data-ran") == "1"
    page.locator("#artifacts").scroll_into_view_if_needed()
    page.goto(f"{team.url}/ui/runs/{run_id}")
    _charts_drawn(page, 2)
    screenshot(page, "run")
    page.set_viewport_size({"width": 1400, "height": 1600})
    page.goto(f"{team.url}/ui/runs/{run_id}?dir=data&preview=data/sample.csv#artifacts")
    _charts_drawn(page, 2)
    page.locator("#artifacts").scroll_into_view_if_needed()
    screenshot(page, "run-artifacts")


def test_a_file_downloads_checked_with_its_bytes_and_type(team: Team, tmp_path: Path
                                                          ) -> None:
    run_id, _ = _rich_run(team, tmp_path)
    files = _files(tmp_path)
    base = f"{team.url}/ui/runs/{run_id}/artifacts"
    with httpx.Client(timeout=30) as http:
        got = http.get(f"{base}/model/weights.bin?download=1")
        assert got.status_code == 200 and got.content == files["model/weights.bin"]
        assert got.headers["content-type"] == "application/octet-stream"
        assert got.headers["content-disposition"].startswith("attachment")
        assert got.headers["x-forgeline-sha256"]
        html = http.get(f"{base}/{REPORT_PATH}")
        assert html.headers["content-type"].startswith("text/html")
        # someone's HTML runs in an origin of its own, never as the signed-in user
        assert html.headers["content-security-policy"] == "sandbox allow-scripts"
        assert html.headers["content-disposition"].startswith("inline")
        assert http.get(f"{base}/plots/dot.png").headers["content-type"] == "image/png"
        missing = http.get(f"{base}/nothing/here.txt")
        assert missing.status_code == 404
        assert "no artifact &#39;nothing/here.txt&#39;" in missing.text
        assert http.get(f"{base}/../../etc/passwd").status_code in (400, 404)
    # a file whose bytes changed on disk is refused, not served
    digest = next(a.digest for a in team.store.list_artifacts(run_id, "notes/readme.txt"))
    stored = LocalArtifactStore(team.artifacts)._object(digest)
    stored.chmod(0o644)
    stored.write_bytes(b"tampered")
    with httpx.Client(timeout=30) as http:
        bad = http.get(f"{base}/notes/readme.txt")
    assert bad.status_code >= 500 and "corrupt" in bad.text and "tampered" not in bad.text


def test_a_long_metric_is_downsampled_and_a_zoom_gives_exact_points(team: Team, page: Any
                                                                     ) -> None:
    store = team.store
    eid = store.get_or_create_experiment("long").experiment_id
    run_id = store.create_run(eid, "long-run", T0).run_id
    steps = 50_000
    for start in range(0, steps, 10_000):
        store.log_batch(run_id, metrics=[("loss", math.sin(s / 500) + s / steps, s, T0 + s)
                                         for s in range(start, start + 10_000)])
    store.set_run_status(run_id, RunStatus.FINISHED, T0 + 60_000)
    src = f"{team.url}/ui/runs/{run_id}/metrics/loss"
    with httpx.Client(timeout=30) as http:
        whole = http.get(src).json()["series"]
        zoom = http.get(src, params={"min_step": 1000, "max_step": 1999}).json()["series"]
        none = http.get(f"{team.url}/ui/runs/{run_id}/metrics/nope").json()["series"]
    assert len(whole) == 1 and whole[0]["total"] == steps
    assert 0 < len(whole[0]["steps"]) <= 2000 and len(whole[0]["values"]) == len(
        whole[0]["steps"])
    assert 0 <= whole[0]["steps"][0] < 100 and steps - 100 < whole[0]["steps"][-1] < steps
    assert zoom[0]["steps"] == list(range(1000, 2000)) and zoom[0]["total"] == 1000
    assert zoom[0]["values"] == [math.sin(s / 500) + s / steps for s in range(1000, 2000)]
    assert none[0]["steps"] == [] and none[0]["total"] == 0
    # in the browser: drawn with at most 2000 points; a drag zooms to the exact points
    page.goto(f"{team.url}/ui/runs/{run_id}")
    _charts_drawn(page, 1)
    note = page.locator(".chart .note")
    assert "of 50,000 points shown" in note.inner_text()
    shown = int(note.inner_text().split(" ")[0].replace(",", ""))
    assert shown <= 2000
    over = page.locator(".chart .u-over").bounding_box()
    y = over["y"] + over["height"] / 2
    page.mouse.move(over["x"] + over["width"] * 0.40, y)
    page.mouse.down()
    page.mouse.move(over["x"] + over["width"] * 0.42, y, steps=5)
    page.mouse.up()
    page.wait_for_function("!document.querySelector('.chart .note').textContent"
                           ".includes('shown')")
    exact = int(note.inner_text().split(" ")[0].replace(",", ""))
    assert 0 < exact <= 2000, note.inner_text()
    page.locator(".chart .u-over").dblclick()
    page.wait_for_function("document.querySelector('.chart .note').textContent"
                           ".includes('of 50,000')")


def test_a_running_run_updates_without_a_reload_until_it_ends(team: Team, page: Any) -> None:
    store = team.store
    eid = store.get_or_create_experiment("live").experiment_id
    run_id = store.create_run(eid, "live-run", T0).run_id
    store.log_batch(run_id, metrics=[("loss", 1 / (s + 1), s, T0 + s) for s in range(10)])
    page.goto(f"{team.url}/ui/runs/{run_id}")
    assert page.locator("#run-status").inner_text() == "RUNNING"
    assert page.locator("#live").get_attribute("hx-trigger") == "every 5s"
    _charts_drawn(page, 1)
    assert page.locator(".chart .note").inner_text() == "10 points"
    store.log_batch(run_id, metrics=[("loss", 1 / (s + 1), s, T0 + s) for s in range(10, 30)]
                    + [("acc", s / 30, s, T0 + s) for s in range(30)])
    store.set_run_status(run_id, RunStatus.FINISHED, T0 + 5_000)
    page.wait_for_function("document.querySelector('#run-status').textContent === "
                           "'FINISHED'", timeout=15_000)
    page.wait_for_function("document.querySelector('.chart .note').textContent === "
                           "'30 points'", timeout=10_000)
    assert page.locator("#head-status").inner_text() == "FINISHED"
    # the metric it began logging since has a chart of its own now
    assert page.locator(".chart-card h3").all_inner_texts() == ["loss", "acc"]
    _charts_drawn(page, 2)
    # and the page stopped asking once the run ended
    assert page.locator("#live").get_attribute("hx-trigger") is None
    time.sleep(0.2)


def test_an_unknown_run_is_a_404_page_with_a_readable_message(team: Team, page: Any) -> None:
    seed_runs(team.store, runs=1)
    response = page.goto(f"{team.url}/ui/runs/0123456789abcdef")
    assert response.status == 404
    assert "Not found" in page.get_by_role("heading").first.inner_text()
    assert "Run '0123456789abcdef' not found" in page.locator(".message").inner_text()
    assert "Traceback" not in page.content()
    with httpx.Client(timeout=30) as http:
        assert http.get(f"{team.url}/ui/runs/0123456789abcdef/metrics/loss").status_code == 404


def test_behind_tokens_the_page_its_charts_and_files_need_a_sign_in(secured: Team, page: Any,
                                                                    tmp_path: Path) -> None:
    run_id, _ = _rich_run(secured, tmp_path)
    file = f"{secured.url}/ui/runs/{run_id}/artifacts/notes/readme.txt"
    with httpx.Client(timeout=30) as http:
        assert http.get(file).status_code == 401
        assert http.get(f"{secured.url}/ui/runs/{run_id}/metrics/loss").status_code == 401
    page.goto(f"{secured.url}/ui/runs/{run_id}?dir=plots&preview=plots/dot.png")
    page.get_by_label("Token").fill(secured.secret(Role.READER, "bob"))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("img.image-preview")  # back where the sign-in was asked
    _charts_drawn(page, 2)
    page.wait_for_function("document.querySelector('img.image-preview').naturalWidth === 1")
    got = page.request.get(file)  # the browser's cookie, as a download link sends it
    assert got.status == 200 and got.body() == TEXT.encode()


def test_a_chart_asking_for_json_gets_its_error_as_json(team: Team) -> None:
    """What forgeline.js shows under a chart that failed: the message, not a page."""
    answer = httpx.get(f"{team.url}/ui/runs/no-such-run/metrics/loss",
                       headers={"Accept": "application/json"})
    assert answer.status_code == 404
    assert "no-such-run" in answer.json()["error"]["message"]
    page = httpx.get(f"{team.url}/ui/runs/no-such-run")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")


def test_a_run_trained_on_labelled_data_links_its_labelling_run(team: Team) -> None:
    import forgeline as fl

    client = fl.Client(team.store)
    with client.start_run("tweets", name="label") as labelled:
        pass
    with client.start_run("model", name="train", tags={
            "forgeline.labels.run": labelled.run_id,
            "forgeline.labels.sources": '{"lf_<b>": "' + "0f" * 32 + '"}',
            "forgeline.labels.llm": "gemma@http://127.0.0.1:8080/v1"}) as trained:
        pass
    html = httpx.get(f"{team.url}/ui/runs/{trained.run_id}").text
    assert f'href="/ui/runs/{labelled.run_id}"' in html
    assert "gemma@http://127.0.0.1:8080/v1" in html
    assert "lf_&lt;b&gt;" in html and "0f" * 6 in html and "lf_<b>" not in html
    assert 'id="labels-lineage"' not in httpx.get(f"{team.url}/ui/runs/{labelled.run_id}").text
