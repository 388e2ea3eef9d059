"""``forgeline serve`` through the real console script: errors, SIGTERM, several workers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.serving.conftest import TrainedStore, metric

FORGELINE = Path(sys.executable).with_name("forgeline")
ROW = {"amount": 120.0, "items": 3, "country": "FR"}


def _command(store: TrainedStore, *args: str) -> list[str]:
    return [str(FORGELINE), "--store", store.uri, "serve", *args, "--runtime", "native"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FORGELINE_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    return {**env, "FORGELINE_HOME": str(tmp_path / "home"), "COLUMNS": "200"}


def test_an_unknown_model_is_one_error_line(trained: TrainedStore, tmp_path: Path) -> None:
    done = subprocess.run(_command(trained, "ghost@champion", "--port", "0"),
                          capture_output=True, text=True, cwd=tmp_path, env=_env(tmp_path),
                          timeout=120)
    assert done.returncode == 3, done.stderr  # NotFound's exit code
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "ghost" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""  # nothing was served


def test_other_start_up_mistakes_are_one_line_too(trained: TrainedStore) -> None:
    from typer.testing import CliRunner

    from forgeline.cli import app

    cases = [(("--canary", "fraud@challenger:x"), 2, "Invalid canary 'fraud@challenger:x'"),
             (("--canary", "fraud@challenger:0"), 2, "above 0 and at most 100"),
             (("--shadow", "fraud@nobody"), 3, "no alias 'nobody'"),
             (("--runtime", "gpu"), 2, "Unknown runtime 'gpu'"),
             (("--max-wait-ms", "-1"), 2, "--max-wait-ms"),
             (("--port", "99999"), 2, "--port")]
    for args, code, fragment in cases:
        done = CliRunner().invoke(app, ["--store", trained.uri, "serve", "fraud@champion",
                                        "--port", "0", *args])
        assert done.exit_code == code, (args, done.output)
        assert fragment in done.stderr, (args, done.stderr)
        assert done.stdout == ""


@contextmanager
def _server(store: TrainedStore, tmp_path: Path, *args: str) -> Iterator[
        tuple[subprocess.Popen[str], str, list[str]]]:
    """A ``forgeline serve`` process, its URL, and its stderr lines so far (read as they come)."""
    process = subprocess.Popen(_command(store, "fraud@champion", "--port", "0", *args),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=tmp_path, env=_env(tmp_path))
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(process.stderr or ()), daemon=True)
    reader.start()
    try:
        url = None
        for line in process.stdout or ():  # the start-up block names the URL
            found = re.search(r"url\s+\S?\s*(http://127\.0\.0\.1:\d+)", line)
            if found:
                url = found.group(1)
                break
        assert url, "".join(stderr)
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "".join(stderr)
            time.sleep(0.1)
        yield process, url, stderr
    finally:
        if process.poll() is None:  # as a user stops it, so its workers stop with it
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        process.wait(timeout=30)
        reader.join(timeout=10)


def _wait_for(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_workers_share_metrics_and_sigterm_drains_requests_in_flight(
        trained: TrainedStore, tmp_path: Path) -> None:
    with _server(trained, tmp_path, "--workers", "2") as (process, url, stderr):
        for _ in range(8):
            with httpx.Client(base_url=url) as fresh:  # new connections: both workers answer
                assert fresh.post("/predict", json={"records": [ROW]}).status_code == 200
        texts = [httpx.get(f"{url}/metrics").text for _ in range(3)]
        for text in texts:  # whichever worker answers the scrape, it reports all of them
            assert metric(text, "forgeline_requests_total", route="/predict",
                          status="200") == 8
            assert metric(text, "forgeline_model_info", name="fraud", version="1") == 1

        # Requests in flight when SIGTERM arrives: their bodies are still on the way.
        release = threading.Event()
        answers: list[Any] = []
        body = orjson.dumps({"records": [ROW]})

        def slow_body() -> Iterator[bytes]:
            yield body[:10]
            release.wait(30)
            yield body[10:]

        def post(http: httpx.Client) -> None:
            try:
                answers.append(http.post("/predict", content=slow_body()).status_code)
            except httpx.HTTPError as e:
                answers.append(repr(e))

        clients = [httpx.Client(base_url=url, timeout=30) for _ in range(6)]
        threads = [threading.Thread(target=post, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        _wait_for(lambda: metric(httpx.get(f"{url}/metrics").text,
                                 "forgeline_requests_in_flight") >= 7, "requests in flight")
        process.send_signal(signal.SIGTERM)
        _wait_for(lambda: sum("Shutting down" in line for line in stderr) == 2,
                  "both workers to begin shutting down")
        release.set()
        for thread in threads:
            thread.join(timeout=30)
        for client in clients:
            client.close()
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert answers == [200] * 6, "".join(stderr)
    log = "".join(stderr)
    assert log.count("Application shutdown complete") == 2 and "Traceback" not in log
