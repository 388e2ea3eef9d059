"""Tuning studies live in Optuna's RDB storage beside each SQL store, in a namespace of
their own (both keep an ``alembic_version`` table), and the store is none the worse."""

from __future__ import annotations

import optuna
import sqlalchemy as sa

from forgeline.store import get_store
from forgeline.store.sql import SqlStore


def test_a_study_beside_the_store_round_trips_and_leaves_the_store_intact(
        sql_store_uri: str) -> None:
    store = get_store(sql_store_uri)
    experiment = store.create_experiment("tuned")
    url = store.study_storage()
    assert url is not None and url != sql_store_uri
    study = optuna.create_study(storage=url, study_name="run-1", direction="maximize")
    study.optimize(lambda t: -(t.suggest_float("x", -1, 1) ** 2), n_trials=3)
    again = optuna.load_study(study_name="run-1", storage=store.study_storage())
    assert [t.params for t in again.trials] == [t.params for t in study.trials]
    store.close()
    reopened = SqlStore(sql_store_uri)  # migrations still find their own alembic_version
    assert reopened.get_experiment(experiment.experiment_id).name == "tuned"
    with reopened.engine.connect() as conn:
        assert "trials" not in sa.inspect(conn).get_table_names()  # not in the store's tables
    reopened.close()


def test_an_in_memory_store_has_no_study_storage() -> None:
    assert SqlStore("sqlite://").study_storage() is None
