"""Opening stores: bad locations, unreachable servers, migrations, concurrent first opens."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import forgeline as fl
from forgeline.errors import InvalidInput, StoreError
from forgeline.store import get_store
from forgeline.store.sql import SqlStore
from forgeline.store.sql.engine import _MIGRATIONS, HEAD_REVISION
from forgeline.store.sql.tables import metadata


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StoreError, match="is not a valid SQLite database"):
        fl.Client(f"sqlite:///{bogus}")
    assert bogus.read_text().startswith("these are my notes")  # untouched


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="is a directory, not a database file"):
        get_store(f"sqlite:///{tmp_path}")


@pytest.mark.parametrize(("uri", "message"), [
    ("mysql://u@h/db", "names backend 'mysql', which Forgeline does not support"),
    ("not a url", "is not a database URL"),
])
def test_unsupported_uris(uri: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        get_store(uri)


def test_an_unreachable_postgresql_server_fails_fast_with_a_hint() -> None:
    with socket_port() as port:
        uri = f"postgresql+psycopg://forgeline:secret@127.0.0.1:{port}/nowhere"
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            fl.Client(uri)
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert "Cannot use the PostgreSQL store" in message and "***" in message
    assert "secret" not in message
    assert "Check that the server is running" in message


class socket_port:
    """A loopback port with nothing listening on it."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        return None


def test_store_location_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    monkeypatch.setenv("FORGELINE_HOME", str(tmp_path / "home"))
    client = fl.Client()
    assert client.store.uri == f"sqlite:///{tmp_path / 'home' / 'forgeline.db'}"
    assert client.artifacts.root == tmp_path / "home" / "artifacts"
    monkeypatch.setenv("FORGELINE_STORE_URI", f"sqlite:///{tmp_path / 'other.db'}")
    assert fl.Client().store.uri.endswith("other.db")
    assert fl.Client().artifacts.root == tmp_path / "artifacts"  # beside the store file
    explicit = fl.Client(f"sqlite:///{tmp_path / 'third.db'}", artifact_root=tmp_path / "x")
    assert explicit.store.uri.endswith("third.db") and explicit.artifacts.root == tmp_path / "x"


def test_default_store_is_in_the_working_directory(tmp_path: Path) -> None:
    with fl.start_run(experiment="e"):
        pass
    assert (tmp_path / ".forgeline" / "forgeline.db").is_file()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    get_store(f"sqlite:///{tmp_path / 's.db'}")
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_head_revision_matches_the_migration_scripts() -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD_REVISION]


def test_migrations_create_exactly_the_declared_schema(sql_store_uri: str) -> None:
    store = get_store(sql_store_uri)
    assert isinstance(store, SqlStore)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_a_store_of_the_first_schema_upgrades_with_its_data(sql_store_uri: str) -> None:
    from alembic import command

    from forgeline.store import close_stores

    store = get_store(sql_store_uri)
    assert isinstance(store, SqlStore)
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with store.engine.begin() as conn:  # back to what Forgeline 0001 created
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
        assert not sa.inspect(conn).has_table("api_tokens")
    store.create_experiment("kept")
    store.create_model_version("fraud", None, "models/fraud/1")
    close_stores()

    upgraded = get_store(sql_store_uri)
    assert isinstance(upgraded, SqlStore) and upgraded is not store
    assert [e.name for e in upgraded.list_experiments()] == ["kept"]
    upgraded.set_registered_model_tag("fraud", "team", "risk")
    assert upgraded.get_registered_model("fraud").tags == {"team": "risk"}
    assert upgraded.list_tokens() == []
    with upgraded.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
            (HEAD_REVISION,)]


def test_a_store_of_revision_0002_gains_an_empty_alias_history(sql_store_uri: str) -> None:
    from alembic import command

    from forgeline.store import close_stores

    store = get_store(sql_store_uri)
    assert isinstance(store, SqlStore)
    store.create_model_version("fraud", None, "models/fraud/1")
    store.create_model_version("fraud", None, "models/fraud/2")
    store.set_alias("fraud", "champion", 1)
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with store.engine.begin() as conn:  # back to what Forgeline 0002 created
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")
        assert not sa.inspect(conn).has_table("model_alias_events")
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
            ("0002",)]
    close_stores()

    upgraded = get_store(sql_store_uri)
    assert isinstance(upgraded, SqlStore) and upgraded is not store
    assert upgraded.get_alias("fraud", "champion") == 1  # the alias itself is kept
    assert upgraded.get_alias_history("fraud") == []  # moves before 0003 were not recorded
    assert upgraded.set_alias("fraud", "champion", 2, actor="alice") == 1
    (event,) = upgraded.get_alias_history("fraud")
    assert (event.version, event.previous_version, event.actor) == (2, 1, "alice")
    with upgraded.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
            (HEAD_REVISION,)]


def _open(uri: str, errors: mp.Queue) -> None:
    try:
        store = get_store(uri)
        store.get_or_create_experiment("shared")
    except BaseException as e:
        errors.put(f"{type(e).__name__}: {e}")


def test_many_processes_opening_a_new_store_at_once(sql_store_uri: str) -> None:
    ctx = mp.get_context("spawn")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_open, args=(sql_store_uri, errors)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert errors.empty(), errors.get()
    assert [p.exitcode for p in procs] == [0] * 6
    store = get_store(sql_store_uri)
    assert [e.name for e in store.list_experiments()] == ["shared"]
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
            (HEAD_REVISION,)]


def test_a_store_from_a_newer_forgeline_is_refused_untouched(tmp_path: Path) -> None:
    from forgeline.store import close_stores

    uri = f"sqlite:///{tmp_path / 's.db'}"
    store = get_store(uri)
    store.create_experiment("kept")
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
    close_stores()
    with pytest.raises(StoreError, match=r"schema revision '9999_future'.*newer version"):
        get_store(uri)
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("SELECT name FROM experiments").fetchall() == [("kept",)]


def test_relative_sqlite_paths_are_pinned_when_opened(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store = get_store("sqlite:///rel/store.db")
    assert store.uri == f"sqlite:///{tmp_path / 'rel' / 'store.db'}"
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert get_store("sqlite:///rel/store.db").uri.endswith("elsewhere/rel/store.db")
    assert get_store(store.uri) is store
