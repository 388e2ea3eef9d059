"""What every part of the SQL store shares: the engine, transactions, upserts, time."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from forgeline.errors import ForgelineError, NotFound
from forgeline.store.sql import tables as t
from forgeline.store.sql.engine import make_engine, migrate, translate, with_retry

T = TypeVar("T")
_STUDY_SCHEMA = "optuna"


@functools.lru_cache(maxsize=64)
def _upsert_statement(dialect: str, table: sa.Table, keys: tuple[str, ...],
                      update: tuple[str, ...]) -> Any:
    # Building the statement costs more than running it for a small batch: build it once.
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    if not update:
        return insert.on_conflict_do_nothing(index_elements=list(keys))
    return insert.on_conflict_do_update(
        index_elements=list(keys), set_={c: insert.excluded[c] for c in update})


class SqlBase:
    """Engine ownership and the two ways in: a read, or a write transaction with retries."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        with translate(uri):
            self.engine = make_engine(uri)
            migrate(self.engine)
        self._writer = self.engine.execution_options(forgeline_write=True)
        self._placeholder = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        self.engine.dispose()

    def study_storage(self) -> str | None:
        """Optuna's tables cannot share this database's namespace (both keep an
        ``alembic_version`` table): on PostgreSQL they go in the same database under the
        schema ``optuna``; SQLite has no schemas, so a file beside this one,
        ``<name>-optuna.db``."""
        url = self.engine.url
        if url.get_backend_name() == "sqlite":
            database = url.database or ""
            if not database or database == ":memory:" or database.startswith("file:"):
                return None
            path = Path(database)
            return f"sqlite:///{path.with_name(f'{path.stem}-optuna.db')}"
        self._write(lambda conn: conn.execute(sa.text(
            f"CREATE SCHEMA IF NOT EXISTS {_STUDY_SCHEMA}")))
        return url.update_query_dict({"options": f"-csearch_path={_STUDY_SCHEMA}"}
                                     ).render_as_string(hide_password=False)

    def _read(self, fn: Callable[[Connection], T]) -> T:
        with translate(self.uri), self.engine.connect() as conn:
            return fn(conn)

    def _write(self, fn: Callable[[Connection], T],
               on_duplicate: Callable[[], ForgelineError] | None = None) -> T:
        def transaction() -> T:
            with self._writer.begin() as conn:
                return fn(conn)

        with translate(self.uri):
            try:
                return with_retry(transaction)
            except exc.IntegrityError:
                if on_duplicate is None:
                    raise
                raise on_duplicate() from None

    @staticmethod
    def _upsert(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]],
                keys: tuple[str, ...], update: tuple[str, ...] = ()) -> None:
        """INSERT ... ON CONFLICT (keys) DO UPDATE SET update (DO NOTHING without)."""
        if rows:
            conn.execute(_upsert_statement(conn.dialect.name, table, keys, update), list(rows))

    @staticmethod
    def _require_run(conn: Connection, run_id: str) -> None:
        found = conn.execute(sa.select(t.runs.c.run_id).where(t.runs.c.run_id == run_id)).first()
        if found is None:
            raise NotFound(f"Run {run_id!r} not found.",
                           hint="List runs with `forgeline runs list`.")
