"""The REST API's own routes, beyond what the Store contract exercises."""

from __future__ import annotations

import math

import forgeline as fl
from forgeline.entities import Dataset
from tests.server.conftest import Team


def test_lineage_and_special_values_over_the_wire(team: Team) -> None:
    store = team.store
    exp = store.create_experiment("fraud").experiment_id
    parent = store.create_run(exp, "tuning", 1).run_id
    run = store.create_run(exp, "best", 2, tags={"forgeline.git.commit": "abc",
                                                 "forgeline.git.dirty": "false"},
                           parent_run_id=parent).run_id
    store.log_dataset(run, Dataset("d" * 64, "tx", "tx.csv", 10, 2, {"a": "int64"}), "train")
    store.log_batch(run, metrics=[("nan", math.nan, 0, 1), ("inf", math.inf, 0, 1),
                                  ("ninf", -math.inf, 0, 1)])
    store.create_model_version("fraud", run, "model", aliases=["champion"])
    with team.http() as http:
        lineage = http.get("/registered-models/fraud/versions/1/lineage").json()
        assert lineage["run"]["run_id"] == run
        assert [r["run_id"] for r in lineage["parent_runs"]] == [parent]
        assert lineage["datasets"][0]["context"] == "train"
        assert lineage["git_commit"] == "abc" and lineage["git_dirty"] is False
        assert lineage["model_version"]["aliases"] == ["champion"]
        assert lineage["run"]["metrics"] == {"nan": "NaN", "inf": "Infinity",
                                             "ninf": "-Infinity"}
        assert http.get("/model-versions").json()["model_versions"][0]["name"] == "fraud"
        docs = http.get(team.url + "/openapi.json").json()
        assert "/api/forgeline/v1/runs/search" in docs["paths"]
    remote = fl.Client(team.url)
    got = remote.get_lineage("fraud@champion")
    assert got.run is not None and got.run.run_id == run and got.git_commit == "abc"
    metrics = remote.get_run(run).metrics
    assert math.isnan(metrics["nan"]) and metrics["inf"] == math.inf
    assert metrics["ninf"] == -math.inf
