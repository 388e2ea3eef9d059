"""The Store contract, run against every backend (SQLite file and a real PostgreSQL)."""

from __future__ import annotations

import math

import pytest

from forgeline.entities import Artifact, Dataset, RunStatus
from forgeline.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from forgeline.store import Store, get_store


@pytest.fixture
def store(store_uri: str) -> Store:
    return get_store(store_uri)


@pytest.fixture
def run_id(store: Store) -> str:
    exp = store.create_experiment("fraud")
    return store.create_run(exp.experiment_id, "baseline", 1000).run_id


# -- experiments -------------------------------------------------------------------------
def test_experiments_round_trip(store: Store) -> None:
    exp = store.create_experiment("fraud", tags={"team": "risk"})
    assert store.get_experiment(exp.experiment_id) == exp
    assert store.get_experiment_by_name("fraud") == exp
    assert exp.tags == {"team": "risk"}
    assert store.get_experiment_by_name("nope") is None
    store.create_experiment("churn")
    assert [e.name for e in store.list_experiments()] == ["fraud", "churn"]


def test_duplicate_experiment_is_refused_and_changes_nothing(store: Store) -> None:
    exp = store.create_experiment("fraud", tags={"team": "risk"})
    with pytest.raises(AlreadyExists, match="Experiment 'fraud' already exists"):
        store.create_experiment("fraud", tags={"team": "other"})
    assert store.list_experiments() == [exp]


def test_get_or_create_experiment_is_idempotent(store: Store) -> None:
    first = store.get_or_create_experiment("fraud")
    assert store.get_or_create_experiment("fraud") == first


def test_unknown_experiment(store: Store) -> None:
    with pytest.raises(NotFound, match="Experiment '42' not found"):
        store.get_experiment("42")
    with pytest.raises(NotFound, match="Experiment 'abc' not found"):
        store.create_run("abc", "x", 1)


# -- runs --------------------------------------------------------------------------------
def test_run_lifecycle(store: Store) -> None:
    exp = store.create_experiment("fraud")
    run = store.create_run(exp.experiment_id, "baseline", 1000, tags={"team": "risk"})
    assert run.status is RunStatus.RUNNING and run.end_time is None
    assert run.tags == {"team": "risk"} and run.name == "baseline"
    child = store.create_run(exp.experiment_id, "trial-1", 1001, parent_run_id=run.run_id)
    assert child.parent_run_id == run.run_id
    done = store.set_run_status(run.run_id, RunStatus.FINISHED, 2000)
    assert done.status is RunStatus.FINISHED and done.end_time == 2000
    assert store.get_run(run.run_id) == done


def test_unknown_run(store: Store, run_id: str) -> None:
    for call in (lambda: store.get_run("0" * 32),
                 lambda: store.log_batch("0" * 32, metrics=[("a", 1.0, 0, 1)]),
                 lambda: store.get_metric_history("0" * 32, "a"),
                 lambda: store.create_run(store.get_run(run_id).experiment_id, "c", 1,
                                          parent_run_id="0" * 32)):
        with pytest.raises(NotFound, match=f"Run '{'0' * 32}' not found"):
            call()


def test_metrics_history_latest_and_special_values(store: Store, run_id: str) -> None:
    store.log_batch(run_id, metrics=[("auc", 0.5, 0, 10), ("auc", 0.7, 2, 12),
                                     ("auc", 0.6, 1, 11), ("loss", math.inf, 0, 10),
                                     ("gain", -math.inf, 0, 10), ("odd", math.nan, 0, 10)])
    history = store.get_metric_history(run_id, "auc")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.6), (2, 0.7)]
    metrics = store.get_run(run_id).metrics
    assert metrics["auc"] == 0.7  # the latest step wins, not the last write
    assert metrics["loss"] == math.inf and metrics["gain"] == -math.inf
    assert math.isnan(metrics["odd"])
    assert math.isnan(store.get_metric_history(run_id, "odd")[0].value)
    store.log_batch(run_id, metrics=[("auc", 0.1, 1, 99)])  # an older step logged later
    assert store.get_run(run_id).metrics["auc"] == 0.7
    store.log_batch(run_id, metrics=[("auc", 0.9, 2, 13)])  # same step, newer timestamp
    assert store.get_run(run_id).metrics["auc"] == 0.9
    assert store.get_metric_history(run_id, "never") == []


def test_params_are_immutable_and_a_refused_batch_writes_nothing(store: Store,
                                                                 run_id: str) -> None:
    store.log_batch(run_id, params={"lr": "0.1", "depth": "6"})
    store.log_batch(run_id, params={"lr": "0.1"})  # the same value again is fine
    with pytest.raises(InvalidInput, match=r"Param 'lr' of run .* is already '0\.1'"):
        store.log_batch(run_id, metrics=[("auc", 0.9, 0, 1)],
                        params={"lr": "0.2", "new": "x"}, tags={"t": "1"})
    run = store.get_run(run_id)
    assert run.params == {"lr": "0.1", "depth": "6"}
    assert run.metrics == {} and run.tags == {}


def test_tags_are_overwritten(store: Store, run_id: str) -> None:
    store.log_batch(run_id, tags={"stage": "dev", "team": "risk"})
    store.log_batch(run_id, tags={"stage": "prod"})
    assert store.get_run(run_id).tags == {"stage": "prod", "team": "risk"}


def test_invalid_keys_and_long_params(store: Store, run_id: str) -> None:
    with pytest.raises(InvalidInput, match="Invalid param key ''"):
        store.log_batch(run_id, params={"": "x"})
    with pytest.raises(InvalidInput, match="Invalid tag key 'a\\\\nb'"):
        store.log_batch(run_id, tags={"a\nb": "x"})
    with pytest.raises(InvalidInput, match="Param 'big' is 6001 characters long"):
        store.log_batch(run_id, params={"big": "x" * 6001})


def test_heartbeat_and_stale_runs(store: Store) -> None:
    exp = store.create_experiment("fraud")
    alive = store.create_run(exp.experiment_id, "alive", 1).run_id
    dead = store.create_run(exp.experiment_id, "dead", 1).run_id
    finished = store.create_run(exp.experiment_id, "done", 1).run_id
    store.set_run_status(finished, RunStatus.FINISHED, 5)
    store.heartbeat([alive], now=10**15)
    assert store.mark_stale_runs(older_than=10**14) == [dead]
    assert store.get_run(dead).status is RunStatus.KILLED
    assert store.get_run(dead).end_time is not None
    assert store.get_run(alive).status is RunStatus.RUNNING
    assert store.get_run(finished).status is RunStatus.FINISHED


# -- artifacts and datasets ---------------------------------------------------------------
def test_artifact_records(store: Store, run_id: str) -> None:
    a = [Artifact("model/model.skops", "a" * 64, 10), Artifact("model/sig.json", "b" * 64, 2),
         Artifact("model_card.md", "c" * 64, 3)]
    store.record_artifacts(run_id, a)
    assert store.list_artifacts(run_id) == sorted(a, key=lambda x: x.path)
    assert [x.path for x in store.list_artifacts(run_id, "model")] == [
        "model/model.skops", "model/sig.json"]
    assert store.list_artifacts(run_id, "model_card.md") == [a[2]]
    assert store.list_artifacts(run_id, "mod") == []
    store.record_artifacts(run_id, [Artifact("model/sig.json", "d" * 64, 4)])
    assert store.list_artifacts(run_id, "model/sig.json")[0].digest == "d" * 64


def test_datasets_link_runs(store: Store, run_id: str) -> None:
    train = Dataset("e" * 64, "transactions", "data/tx.parquet", 1000, 12,
                    {"amount": "float64"})
    store.log_dataset(run_id, train, "train")
    store.log_dataset(run_id, train, "train")  # idempotent
    store.log_dataset(run_id, Dataset("f" * 64, "holdout", "data/h.parquet"), "test")
    found = store.get_run_datasets(run_id)
    assert [(d.name, c) for d, c in found] == [("holdout", "test"), ("transactions", "train")]
    assert found[1][0] == train


# -- registry ---------------------------------------------------------------------------
def test_versions_number_in_order_and_resolve(store: Store, run_id: str) -> None:
    v1 = store.create_model_version("fraud", run_id, "model", tags={"framework": "sklearn"})
    v2 = store.create_model_version("fraud", run_id, "model")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.tags == {"framework": "sklearn"} and v1.run_id == run_id
    assert store.resolve_model_version("fraud").version == 2
    assert store.resolve_model_version("fraud/1") == v1
    store.set_alias("fraud", "champion", 1)
    assert store.resolve_model_version("fraud@champion").version == 1
    assert store.get_model_version("fraud", 1).aliases == ("champion",)
    assert [v.version for v in store.list_model_versions("fraud")] == [2, 1]
    model = store.get_registered_model("fraud")
    assert model.latest_version == 2 and model.aliases == {"champion": 1}


def test_a_version_registered_with_aliases(store: Store, run_id: str) -> None:
    store.create_model_version("fraud", run_id, "model", aliases=["champion"])
    v2 = store.create_model_version("fraud", run_id, "model", aliases=["champion", "latest_good"])
    assert v2.aliases == ("champion", "latest_good")
    assert store.get_registered_model("fraud").aliases == {"champion": 2, "latest_good": 2}
    with pytest.raises(InvalidInput, match="Invalid alias 'v9'"):
        store.create_model_version("fraud", run_id, "model", aliases=["ok", "v9"])
    assert store.get_registered_model("fraud").latest_version == 2  # nothing half-made


def test_alias_moves_atomically_and_stays_unique(store: Store, run_id: str) -> None:
    for _ in range(3):
        store.create_model_version("fraud", run_id, "model")
    assert store.set_alias("fraud", "champion", 1) is None
    assert store.set_alias("fraud", "champion", 3) == 1
    assert store.get_alias("fraud", "champion") == 3
    assert store.get_model_version("fraud", 1).aliases == ()
    assert store.get_registered_model("fraud").aliases == {"champion": 3}


def test_deleting_an_aliased_version_is_refused(store: Store, run_id: str) -> None:
    store.create_model_version("fraud", run_id, "model")
    store.create_model_version("fraud", run_id, "model")
    store.set_alias("fraud", "champion", 2)
    with pytest.raises(Conflict, match="Cannot delete fraud/2: fraud@champion points at it"):
        store.delete_model_version("fraud", 2)
    assert store.resolve_model_version("fraud@champion").version == 2
    store.delete_model_version("fraud", 1)
    with pytest.raises(NotFound, match="Model 'fraud' has no version 1"):
        store.get_model_version("fraud", 1)
    assert store.delete_alias("fraud", "champion") == 2
    with pytest.raises(NotFound, match="Model 'fraud' has no alias 'champion'"):
        store.delete_alias("fraud", "champion")
    store.delete_model_version("fraud", 2)
    with pytest.raises(NotFound, match="Model 'fraud' has no versions"):
        store.resolve_model_version("fraud")


def test_registry_errors(store: Store, run_id: str) -> None:
    with pytest.raises(NotFound, match="Model 'ghost' is not registered"):
        store.resolve_model_version("ghost@champion")
    store.create_model_version("fraud", run_id, "model")
    with pytest.raises(NotFound, match=r"Model 'fraud' has no alias 'champion' \(aliases: none"):
        store.resolve_model_version("fraud@champion")
    with pytest.raises(NotFound, match="Model 'fraud' has no version 7"):
        store.set_alias("fraud", "champion", 7)
    with pytest.raises(InvalidInput, match="Invalid alias 'latest'"):
        store.set_alias("fraud", "latest", 1)
    with pytest.raises(InvalidInput, match="Invalid alias 'v2'"):
        store.set_alias("fraud", "v2", 1)
    with pytest.raises(InvalidInput, match="Invalid model name 'a@b'"):
        store.create_model_version("a@b", run_id, "model")
    with pytest.raises(NotFound, match=r"Run '.*' not found"):
        store.create_model_version("fraud", "f" * 32, "model")
    with pytest.raises(AlreadyExists, match="Model 'fraud' is already registered"):
        store.create_registered_model("fraud")
    assert store.get_registered_model("fraud").latest_version == 1


def test_model_version_tags(store: Store, run_id: str) -> None:
    store.create_model_version("fraud", run_id, "model")
    store.set_model_version_tag("fraud", 1, "validated", "yes")
    store.set_model_version_tag("fraud", 1, "validated", "no")
    assert store.get_model_version("fraud", 1).tags == {"validated": "no"}
    with pytest.raises(NotFound):
        store.set_model_version_tag("fraud", 2, "validated", "yes")
