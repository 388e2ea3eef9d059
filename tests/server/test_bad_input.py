"""Bad input to the team server: each a 4xx with a message, nothing stored half-way, and
the server still answers afterwards."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forgeline.entities import Role
from forgeline.store import get_store
from tests.server.conftest import Team
from tests.teamserver import team_server

RUN = "/runs/{run}"


@pytest.fixture
def run_id(team: Team) -> str:
    exp = team.store.create_experiment("fraud").experiment_id
    return team.store.create_run(exp, "r", 1).run_id


# (method, path, body, status, fragment of the message)
BAD: list[tuple[str, str, Any, int, str]] = [
    ("GET", RUN.format(run="0" * 32), None, 404, f"Run '{'0' * 32}' not found"),
    ("GET", "/experiments/999", None, 404, "Experiment '999' not found"),
    ("GET", "/registered-models/ghost", None, 404, "Model 'ghost' is not registered"),
    ("GET", "/registered-models/ghost/versions/abc", None, 400,
     "Invalid path parameter 'version'"),
    ("POST", "/runs/search", {"experiment_ids": ["1"], "filter": "metrics.auc >"}, 400,
     "Invalid filter at position 14"),
    ("POST", "/runs/search", {"experiment_ids": "1"}, 400,
     "Invalid field 'experiment_ids': expected a list"),
    ("POST", "/runs/search", {"experiment_ids": ["1"], "max_results": "ten"}, 400,
     "Invalid field 'max_results': expected a 64-bit integer"),
    ("POST", "/runs", b'{"experiment_id": "1", "name": "r", "start_time": 1e400}', 400,
     "not valid JSON"),
    ("POST", "/runs", {"experiment_id": "1", "name": "r", "start_time": 2**64 - 1}, 400,
     "Invalid field 'start_time': expected a 64-bit integer"),
    ("GET", RUN + "/artifacts?prefix=../../etc", None, 400, "escapes its run"),
    ("GET", RUN + "/artifacts/..%2F..%2Fetc%2Fpasswd", None, 400, "escapes its run"),
    ("POST", RUN + "/artifacts", {"artifacts": [{"path": "../x", "digest": "a" * 64,
                                                 "size": 1}]}, 400, "escapes its run"),
    ("POST", RUN + "/artifacts", {"artifacts": [{"path": "x", "digest": "a" * 64}]}, 400,
     "Missing field 'artifacts[0].size'"),
    ("POST", RUN + "/batch", {"metrics": [["auc", "high", 0, 1]]}, 400,
     "Invalid field 'metrics[0][1]': expected a number, got 'high'"),
    ("POST", RUN + "/batch", {"metrics": [["auc", 0.5, 0]]}, 400,
     "Invalid field 'metrics[0]': expected [key, value, step, timestamp]"),
    ("POST", RUN + "/batch", {"metrics": [["auc", 0.5, 1.5, 1]]}, 400,
     "Invalid field 'metrics[0][2]': expected a 64-bit integer (the step)"),
    ("POST", RUN + "/batch", {"params": {"lr": 0.1}}, 400,
     "Invalid field 'params.lr': expected a string"),
    ("POST", RUN + "/batch", b'{"metrics": [', 400, "The request body is not valid JSON"),
    ("POST", RUN + "/batch", b"", 400, "The request body is empty"),
    ("POST", RUN + "/batch", [1, 2], 400, "must be a JSON object, not list"),
    ("PATCH", RUN, {"status": "DONE"}, 400, "'DONE' is not a run status"),
    ("POST", "/experiments", {"tags": {}}, 400, "Missing field 'name'"),
    ("POST", "/experiments", {"name": "x" * 300}, 400, "Invalid experiment name"),
    ("PUT", "/artifacts/abc", b"x", 400, "Invalid artifact digest 'abc'"),
    ("GET", "/artifacts/" + "0" * 64, None, 404, "is missing from"),
    ("POST", "/monitoring", {"model": "fraud"}, 400, "Missing field 'body.record_id'"),
    ("GET", "/monitoring?model=fraud&since=yesterday", None, 400,
     "Invalid query parameter 'since'"),
    ("GET", "/nowhere", None, 404, "No route GET /api/forgeline/v1/nowhere"),
    ("DELETE", "/experiments", None, 405, "Method DELETE is not allowed"),
]


def _send(http: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
    return http.request(method, path, content=content,
                        headers={"Content-Type": "application/json"})


def test_bad_input_is_a_4xx_with_a_message_and_stores_nothing(team: Team, run_id: str) -> None:
    with team.http() as http:
        for method, path, body, status, fragment in BAD:
            answer = _send(http, method, path.format(run=run_id), body)
            assert answer.status_code == status, (path, answer.text)
            error = answer.json()["error"]
            assert fragment in error["message"], (path, error)
        assert http.get("/health").status_code == 200
    run = team.store.get_run(run_id)
    assert run.metrics == {} and run.params == {} and run.tags == {}
    assert team.store.list_artifacts(run_id) == []
    assert team.store.get_monitoring_history("fraud") == []
    assert [e.name for e in team.store.list_experiments()] == ["fraud"]


def test_a_refused_batch_stores_none_of_its_points(team: Team, run_id: str) -> None:
    good = [["auc", 0.5, i, 1] for i in range(500)]
    with team.http() as http:
        answer = _send(http, "POST", f"/runs/{run_id}/batch",
                       {"metrics": [*good, ["auc", None, 501, 1]], "params": {"a": "1"}})
        assert answer.status_code == 400 and "metrics[500][1]" in answer.text
    assert team.store.get_metric_history(run_id, "auc") == []
    assert team.store.get_run(run_id).params == {}


def test_a_body_over_the_limit_is_413(tmp_path: Path) -> None:
    store = get_store(f"sqlite:///{tmp_path / 's.db'}")
    run = store.create_run(store.create_experiment("e").experiment_id, "r", 1).run_id
    big = {"metrics": [["auc", 0.5, i, 1] for i in range(200)]}
    with team_server(store, tmp_path / "a", max_body_bytes=2000) as server, httpx.Client(
            base_url=server.url + "/api/forgeline/v1") as http:
        for content in (orjson.dumps(big), iter([b'{"metrics": [', b" " * 3000, b"]}"])):
            answer = http.post(f"/runs/{run}/batch", content=content)
            assert answer.status_code == 413, answer.text
            assert "too large" in answer.json()["error"]["message"]
            assert "--max-body-bytes" in answer.json()["error"]["hint"]
        # an artifact upload is streamed and has no such limit
        data = b"x" * 10_000
        digest = hashlib.sha256(data).hexdigest()
        assert http.put(f"/artifacts/{digest}", content=data).status_code == 201
        assert http.post(f"/runs/{run}/batch", json={"metrics": [["a", 1, 0, 1]]}
                         ).status_code == 200
    assert store.get_run(run).metrics == {"a": 1.0}


def test_a_wrong_or_truncated_upload_stores_nothing(team: Team) -> None:
    data = b"model bytes " * 1000
    digest = hashlib.sha256(data).hexdigest()
    with team.http() as http:
        answer = http.put(f"/artifacts/{digest}", content=data[:-1])
        assert answer.status_code == 400
        assert "nothing was stored" in answer.json()["error"]["message"]
        assert http.head(f"/artifacts/{digest}").status_code == 404
        # announce the whole file, send half of it, and hang up
        host, port = team.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(f"PUT /api/forgeline/v1/artifacts/{digest} HTTP/1.1\r\nHost: x\r\n"
                         f"Content-Length: {len(data)}\r\n\r\n".encode() + data[:5000])
        assert http.head(f"/artifacts/{digest}").status_code == 404
        assert http.put(f"/artifacts/{digest}", content=data).status_code == 201
        assert http.head(f"/artifacts/{digest}").status_code == 200
        assert http.get(f"/artifacts/{digest}").content == data
    assert not [p for p in (team.artifacts / "tmp").iterdir()]  # no partial file left


def test_the_wrong_role_is_403_naming_the_role(secured: Team) -> None:
    with secured.http(secured.secret(Role.READER)) as http:
        answer = http.post("/experiments", json={"name": "x"})
        assert answer.status_code == 403
        assert "needs the role writer" in answer.json()["error"]["message"]
        assert http.get("/experiments").json() == {"experiments": []}


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(["/experiments", "/runs", "/runs/search", "/runs/{run}/batch",
                             "/runs/{run}/artifacts", "/runs/{run}/datasets",
                             "/registered-models", "/registered-models/m/versions",
                             "/monitoring", "/runs/heartbeat", "/runs/mark-stale"]),
       body=st.recursive(st.none() | st.booleans() | st.floats() | st.text()
                         | st.integers(min_value=-(2**63), max_value=2**64 - 1),
                         lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(st.sampled_from(
                             ["name", "metrics", "params", "tags", "experiment_ids", "filter",
                              "artifacts", "dataset", "context", "run_id", "artifact_path",
                              "record_id", "model", "run_ids", "now", "older_than",
                              "start_time", "experiment_id"]), inner, max_size=5),
                         max_leaves=12))
def test_fuzzed_bodies_never_break_the_server(team: Team, run_id: str, path: str,
                                              body: Any) -> None:
    with team.http() as http:
        answer = http.post(path.format(run=run_id), content=orjson.dumps(
            body, option=orjson.OPT_NON_STR_KEYS) if body is not None else b"null",
            headers={"Content-Type": "application/json"})
        assert answer.status_code < 500, answer.text
        if answer.status_code >= 400:
            assert answer.json()["error"]["message"]
