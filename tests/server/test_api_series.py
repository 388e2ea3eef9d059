"""The chart routes of the REST API: metric series and run keys, their query parameters,
their wire form (NaN and infinities spelled out) and the role they need."""

from __future__ import annotations

import math

import pytest

from forgeline.entities import Role
from forgeline.errors import Unauthorized
from tests.server.conftest import Team


def _run(team: Team) -> tuple[str, str]:
    exp = team.store.create_experiment("charts").experiment_id
    run = team.store.create_run(exp, "r", 1, tags={"team": "risk"}).run_id
    team.store.log_batch(run, metrics=[("loss", v, s, s) for s, v in
                                       enumerate([0.5, math.nan, math.inf, -math.inf])],
                         params={"depth": "6"})
    return exp, run


def test_series_and_keys_over_the_wire(team: Team) -> None:
    exp, run = _run(team)
    with team.http() as http:
        found = http.get(f"/runs/{run}/metric-series", params={"key": "loss"}).json()
        assert found == {"steps": [0, 1, 2, 3], "values": [0.5, "NaN", "Infinity", "-Infinity"],
                         "total": 4, "downsampled": False}
        some = http.get(f"/runs/{run}/metric-series",
                        params={"key": "loss", "min_step": 1, "max_step": 2, "max_points": 4})
        assert some.json()["steps"] == [1, 2]
        keys = http.get("/run-keys", params={"experiment_ids": [exp, "999"]}).json()
        assert keys == {"metrics": ["loss"], "params": ["depth"], "tags": ["team"]}
        assert http.get("/run-keys").json() == {"metrics": [], "params": [], "tags": []}


def test_bad_query_parameters_are_400_naming_them(team: Team) -> None:
    _, run = _run(team)
    with team.http() as http:
        bad = http.get(f"/runs/{run}/metric-series", params={"key": "loss", "max_points": "x"})
        assert bad.status_code == 400 and "max_points" in bad.json()["error"]["message"]
        bad = http.get(f"/runs/{run}/metric-series", params={"key": "loss", "max_points": 2})
        assert bad.status_code == 400
        assert bad.json()["error"]["message"].startswith("max_points must be between 4 and 100000")
        missing = http.get(f"/runs/{run}/metric-series")
        assert missing.status_code == 400 and "key" in missing.json()["error"]["message"]
        assert http.get("/runs/nope/metric-series", params={"key": "x"}).status_code == 404


def test_a_reader_may_read_series_and_keys(secured: Team) -> None:
    exp, run = _run(secured)
    reader = secured.remote(secured.secret(Role.READER))
    assert reader.get_metric_series(run, "loss").total == 4
    assert reader.list_run_keys([exp]).params == ("depth",)
    anonymous = secured.remote()
    with pytest.raises(Unauthorized):
        anonymous.get_metric_series(run, "loss")
    with pytest.raises(Unauthorized):
        anonymous.list_run_keys([exp])
