"""Engines, error translation, retries and automatic migration, in one place.

SQLite: WAL journal, a busy timeout, ``BEGIN IMMEDIATE`` for write transactions (a
deferred transaction that later writes can fail at once with SQLITE_BUSY, which no
timeout cures), and case-sensitive LIKE so that both backends agree.
PostgreSQL: psycopg 3, a short connect timeout, pre-ping.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine, make_url

from forgeline.errors import InvalidInput, StoreError

__all__ = ["HEAD_REVISION", "make_engine", "migrate", "redacted", "translate", "with_retry"]

# The newest migration; a test checks it against the scripts in migrations/versions.
HEAD_REVISION = "0004"
_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK_ID = 0x466F7267  # "Forg": advisory lock held while migrating
T = TypeVar("T")


def redacted(uri: str) -> str:
    """The URI with its password hidden, for messages."""
    try:
        return make_url(uri).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return uri


def make_engine(uri: str) -> Engine:
    try:
        url = make_url(uri)
    except exc.ArgumentError:
        raise InvalidInput(
            f"Store URI {uri!r} is not a database URL.",
            hint="Use sqlite:///path/to/forgeline.db or postgresql+psycopg://user@host/db.",
        ) from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend in ("postgresql", "postgres"):
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        return sa.create_engine(
            url, pool_pre_ping=True, connect_args={"connect_timeout": 5}, pool_size=4,
        )
    raise InvalidInput(
        f"Store URI {redacted(uri)!r} names backend {backend!r}, which Forgeline does not support.",
        hint="Use sqlite:///... or postgresql+psycopg://...",
    )


def _sqlite_engine(url: sa.URL) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database)
        if path.is_dir():
            raise InvalidInput(f"Store path {path} is a directory, not a database file.",
                               hint="Point the URI at a file such as .forgeline/forgeline.db.")
        path.parent.mkdir(parents=True, exist_ok=True)
    memory = not database or database == ":memory:"
    engine = sa.create_engine(
        url,
        connect_args={"timeout": 30, "check_same_thread": False},
        poolclass=sa.StaticPool if memory else None,
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 30000")
        if not memory:
            _retry_locked(lambda: cur.execute("PRAGMA journal_mode = WAL"))
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA case_sensitive_like = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get("forgeline_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _retry_locked(fn: Callable[[], T], attempts: int = 50) -> T:
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as e:  # sqlite3.OperationalError before SQLAlchemy wraps it
            if "locked" not in str(e) or attempt == attempts - 1:
                raise
            time.sleep(min(0.5, 0.01 * 2**attempt) * random.random())
    raise AssertionError("unreachable")


def _transient(e: exc.DBAPIError) -> bool:
    text = str(e.orig).lower()
    return any(s in text for s in ("database is locked", "database table is locked",
                                   "could not serialize", "deadlock detected"))


def with_retry(fn: Callable[[], T], attempts: int = 12) -> T:
    """Run a whole transaction again when the database reports a transient lock conflict."""
    for attempt in range(attempts):
        try:
            return fn()
        except exc.DBAPIError as e:
            if not _transient(e) or attempt == attempts - 1:
                raise
            time.sleep(min(1.0, 0.02 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


@contextmanager
def translate(uri: str) -> Iterator[None]:
    """Turn driver errors into StoreError with a message that says what to do."""
    try:
        yield
    except exc.DBAPIError as e:
        raise _store_error(uri, e) from e
    except exc.SQLAlchemyError as e:
        raise StoreError(f"Store {redacted(uri)} failed: {e}") from e


def _store_error(uri: str, e: exc.DBAPIError) -> StoreError:
    detail = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
    where = redacted(uri)
    if "file is not a database" in detail or "malformed" in detail:
        return StoreError(f"Store {where} is not a valid SQLite database ({detail}).",
                          hint="Point the store URI (FORGELINE_STORE_URI) at a Forgeline "
                          "store file.")
    if isinstance(e, exc.OperationalError) and make_url(uri).get_backend_name() != "sqlite":
        return StoreError(f"Cannot use the PostgreSQL store {where}: {detail}.",
                          hint="Check that the server is running and the URI is right.")
    if "unable to open database file" in detail or "readonly" in detail:
        return StoreError(f"Cannot open the SQLite store {where}: {detail}.",
                          hint="Check that the folder exists and is writable.")
    return StoreError(f"Store {where} failed: {detail}.")


def migrate(engine: Engine) -> None:
    """Bring the schema to HEAD_REVISION; safe when many processes open a new store at once.

    SQLite serialises migrators with BEGIN IMMEDIATE (DDL is transactional there);
    PostgreSQL with an advisory lock. Each migrator re-reads the version once it holds
    the lock, so only the first one does any work.
    """
    current = _current_revision(engine)
    if current == HEAD_REVISION:
        return
    from alembic import command  # imported only when a store needs migrating
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    known = {s.revision for s in ScriptDirectory.from_config(config).walk_revisions()}
    if current is not None and current not in known:
        raise StoreError(
            f"Store {redacted(str(engine.url))} has schema revision {current!r}, which this "
            "Forgeline does not know: it was created by a newer version.",
            hint="Upgrade Forgeline (pip install -U forgeline) to use this store.")
    postgres = engine.dialect.name == "postgresql"
    with engine.execution_options(forgeline_write=True).begin() as conn:
        if postgres:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
        config.attributes["connection"] = conn
        command.upgrade(config, HEAD_REVISION)


def _current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
