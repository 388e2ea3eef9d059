"""Experiments, runs, metrics, params, tags, artifacts and datasets in SQL."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from forgeline.entities import (
    Artifact,
    Dataset,
    Experiment,
    Metric,
    MetricSeries,
    PagedList,
    Run,
    RunKeys,
    RunStatus,
)
from forgeline.errors import AlreadyExists, InvalidInput, NotFound
from forgeline.names import check_key, check_name
from forgeline.store.base import MetricPoint, check_series_request
from forgeline.store.sql import tables as t
from forgeline.store.sql.base import SqlBase
from forgeline.store.sql.blocks import BLOCK_COLUMNS, merged_blocks
from forgeline.store.sql.search import run_keys, search_run_ids
from forgeline.store.sql.series import metric_series
from forgeline.util.time import now_ms

_MAX_PARAM = 6000


def _as_number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


# One statement per batch for its series: the latest point of each key replaces the stored
# one when its step is later (or equal and it is newer), the key's points are counted for the
# rollup (NULL, a series from before it, stays NULL), and each key's series id and new count
# come back. Every right-hand side sees the row as it was, in SQLite and PostgreSQL alike; the
# row is locked until the transaction ends, so concurrent writers count in turn.
_NEWER = ("(excluded.step > latest_metrics.step OR (excluded.step = latest_metrics.step "
          "AND excluded.timestamp >= latest_metrics.timestamp))")
_LATEST_UPSERT = (
    "INSERT INTO latest_metrics (run_id, key, value, step, timestamp, n_points) VALUES {rows} "
    "ON CONFLICT (run_id, key) DO UPDATE SET "
    + ", ".join(f"{c} = CASE WHEN {_NEWER} THEN excluded.{c} ELSE latest_metrics.{c} END"
                for c in ("value", "step", "timestamp"))
    + ", n_points = latest_metrics.n_points + excluded.n_points "
    "RETURNING key, series_id, n_points")
_KEYS_A_STATEMENT = 4000  # 6 parameters a key: well under SQLite's 32,766
_BLOCKS_UPSERT = (
    f"INSERT INTO metric_blocks ({', '.join(BLOCK_COLUMNS)}) VALUES "
    f"({', '.join(['{p}'] * len(BLOCK_COLUMNS))}) ON CONFLICT (series_id, block) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in BLOCK_COLUMNS[2:]))


def _experiment_id(experiment_id: str | int) -> int:
    try:
        return int(experiment_id)
    except (TypeError, ValueError):
        raise NotFound(f"Experiment {experiment_id!r} not found.") from None


class RunsMixin(SqlBase):
    # -- experiments --------------------------------------------------------------------
    def create_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> Experiment:
        check_name(name, "experiment name")

        def tx(conn: Connection) -> int:
            eid = conn.execute(t.experiments.insert().values(
                name=name, creation_time=now_ms())).inserted_primary_key[0]
            rows = [{"experiment_id": eid, "key": check_key(k, "tag key"), "value": str(v)}
                    for k, v in (tags or {}).items()]
            if rows:
                conn.execute(t.experiment_tags.insert(), rows)
            return int(eid)

        dup = AlreadyExists(f"Experiment {name!r} already exists.",
                            hint="Choose another name, or use the existing experiment.")
        return self.get_experiment(str(self._write(tx, on_duplicate=lambda: dup)))

    def _experiments(self, where: sa.ColumnElement[bool] | None) -> list[Experiment]:
        def read(conn: Connection) -> list[Experiment]:
            query = sa.select(t.experiments).order_by(t.experiments.c.experiment_id)
            rows = conn.execute(query if where is None else query.where(where)).all()
            tags: dict[int, dict[str, str]] = {}
            if rows:
                ids = [r.experiment_id for r in rows]
                for eid, k, v in conn.execute(sa.select(t.experiment_tags).where(
                        t.experiment_tags.c.experiment_id.in_(ids))):
                    tags.setdefault(eid, {})[k] = v
            return [Experiment(str(r.experiment_id), r.name, r.creation_time,
                               tags.get(r.experiment_id, {})) for r in rows]
        return self._read(read)

    def get_experiment(self, experiment_id: str) -> Experiment:
        found = self._experiments(t.experiments.c.experiment_id == _experiment_id(experiment_id))
        if not found:
            raise NotFound(f"Experiment {experiment_id!r} not found.",
                           hint="List experiments with `forgeline experiments list`.")
        return found[0]

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        found = self._experiments(t.experiments.c.name == name)
        return found[0] if found else None

    def list_experiments(self) -> list[Experiment]:
        return self._experiments(None)

    # -- runs ---------------------------------------------------------------------------
    def create_run(self, experiment_id: str, name: str, start_time: int,
                   tags: Mapping[str, str] | None = None,
                   parent_run_id: str | None = None) -> Run:
        eid = _experiment_id(experiment_id)
        run_id = uuid.uuid4().hex

        def tx(conn: Connection) -> None:
            if conn.execute(sa.select(t.experiments.c.experiment_id).where(
                    t.experiments.c.experiment_id == eid)).first() is None:
                raise NotFound(f"Experiment {experiment_id!r} not found.")
            if parent_run_id is not None:
                self._require_run(conn, parent_run_id)
            conn.execute(t.runs.insert().values(
                run_id=run_id, experiment_id=eid, name=check_name(name, "run name"),
                status=RunStatus.RUNNING.value, start_time=start_time, end_time=None,
                heartbeat_time=now_ms(), parent_run_id=parent_run_id))
            self._set_tags(conn, run_id, tags or {})

        self._write(tx)
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> Run:
        found = self._read(lambda conn: _load_runs(conn, [run_id]))
        if not found:
            raise NotFound(f"Run {run_id!r} not found.",
                           hint="List runs with `forgeline runs list`.")
        return found[0]

    def set_run_status(self, run_id: str, status: RunStatus, end_time: int | None) -> Run:
        def tx(conn: Connection) -> None:
            self._require_run(conn, run_id)
            conn.execute(t.runs.update().where(t.runs.c.run_id == run_id).values(
                status=RunStatus(status).value, end_time=end_time))
        self._write(tx)
        return self.get_run(run_id)

    def heartbeat(self, run_ids: Sequence[str], now: int) -> None:
        if run_ids:
            self._write(lambda conn: conn.execute(t.runs.update().where(
                t.runs.c.run_id.in_(list(run_ids)),
                t.runs.c.status == RunStatus.RUNNING.value).values(heartbeat_time=now)))

    def mark_stale_runs(self, older_than: int) -> list[str]:
        def tx(conn: Connection) -> list[str]:
            stale = t.runs.c.status == RunStatus.RUNNING.value
            stale &= t.runs.c.heartbeat_time < older_than
            ids = list(conn.execute(sa.select(t.runs.c.run_id).where(stale)).scalars())
            if ids:
                conn.execute(t.runs.update().where(t.runs.c.run_id.in_(ids)).values(
                    status=RunStatus.KILLED.value, end_time=t.runs.c.heartbeat_time))
            return ids
        return self._write(tx)

    def log_batch(self, run_id: str, metrics: Sequence[MetricPoint] = (),
                  params: Mapping[str, str] | None = None,
                  tags: Mapping[str, str] | None = None) -> None:
        params = {check_key(k, "param key"): str(v) for k, v in (params or {}).items()}
        for key, value in params.items():
            if len(value) > _MAX_PARAM:
                raise InvalidInput(f"Param {key!r} is {len(value)} characters long; the limit "
                                   f"is {_MAX_PARAM}.", hint="Log long values as an artifact.")

        def tx(conn: Connection) -> None:
            self._require_run(conn, run_id)
            if metrics:
                self._insert_metrics(conn, run_id, metrics)
            if params:
                self._insert_params(conn, run_id, params)
            if tags:
                self._set_tags(conn, run_id, tags)

        self._write(tx)

    def _insert_metrics(self, conn: Connection, run_id: str,
                        points: Sequence[MetricPoint]) -> None:
        # The hot path of call-by-call logging: statements written out and sent straight to
        # the driver, three or four a batch whatever its size.
        latest: dict[str, tuple[float, int, int, int]] = {}  # value, step, timestamp, count
        for k, v, s, ts in points:
            best = latest.get(k)
            if best is None:
                latest[k] = (v, s, ts, 1)
            elif (s, ts) >= best[1:3]:
                latest[k] = (v, s, ts, best[3] + 1)
            else:
                latest[k] = (*best[:3], best[3] + 1)
        p = self._placeholder
        series: dict[str, tuple[int, int | None]] = {}  # key -> series id, points before
        keys = list(latest.items())
        for at in range(0, len(keys), _KEYS_A_STATEMENT):
            chunk = keys[at:at + _KEYS_A_STATEMENT]
            sql = _LATEST_UPSERT.format(rows=", ".join([f"({p}, {p}, {p}, {p}, {p}, {p})"]
                                                      * len(chunk)))
            found = conn.exec_driver_sql(sql, tuple(
                x for k, (v, s, ts, n) in chunk
                for x in (run_id, k, v if v == v else None, s, ts, n)))
            for key, series_id, count in found:
                series[key] = (series_id, None if count is None else count - latest[key][3])
        rows = [(series[k][0], v if v == v else None, s, ts) for k, v, s, ts in points]
        conn.exec_driver_sql(
            f"INSERT INTO metrics (series_id, value, step, timestamp) VALUES ({p}, {p}, {p}, {p})",
            rows)
        counted = {i: n for i, n in series.values() if n is not None}
        if counted:  # series logged before the rollup existed (no count) are left as they are
            conn.exec_driver_sql(_BLOCKS_UPSERT.format(p=p), merged_blocks(conn, counted, rows))

    def _insert_params(self, conn: Connection, run_id: str, params: dict[str, str]) -> None:
        existing = dict(conn.execute(sa.select(t.params.c.key, t.params.c.value).where(
            t.params.c.run_id == run_id, t.params.c.key.in_(list(params)))).all())
        for key, value in params.items():
            if key in existing and existing[key] != value:
                raise InvalidInput(
                    f"Param {key!r} of run {run_id} is already {existing[key]!r}; cannot "
                    f"change it to {value!r}.",
                    hint="Params are immutable: start a new run, or record it as a tag.")
        rows = [{"run_id": run_id, "key": k, "value": v, "num_value": _as_number(v)}
                for k, v in params.items() if k not in existing]
        if rows:
            conn.execute(t.params.insert(), rows)

    def _set_tags(self, conn: Connection, run_id: str, tags: Mapping[str, str]) -> None:
        self._upsert(conn, t.run_tags,
                     [{"run_id": run_id, "key": check_key(k, "tag key"), "value": str(v)}
                      for k, v in tags.items()],
                     keys=("run_id", "key"), update=("value",))

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        def read(conn: Connection) -> list[Metric]:
            self._require_run(conn, run_id)
            m, lm = t.metrics.c, t.latest_metrics.c
            rows = conn.execute(sa.select(m.value, m.step, m.timestamp)
                                .join(t.latest_metrics, lm.series_id == m.series_id)
                                .where(lm.run_id == run_id, lm.key == key)
                                .order_by(m.step, m.timestamp))
            return [Metric(key, math.nan if v is None else v, s, ts) for v, s, ts in rows]
        return self._read(read)

    def get_metric_series(self, run_id: str, key: str, max_points: int = 2000,
                          min_step: int | None = None, max_step: int | None = None
                          ) -> MetricSeries:
        check_series_request(max_points, min_step, max_step)

        def read(conn: Connection) -> MetricSeries:
            self._require_run(conn, run_id)
            lm = t.latest_metrics.c
            found = conn.execute(sa.select(lm.series_id, lm.n_points).where(
                lm.run_id == run_id, lm.key == key)).first()
            series_id, n_points = found if found is not None else (None, None)
            return metric_series(conn, series_id, max_points, min_step, max_step, n_points)
        return self._read(read)

    def search_runs(self, experiment_ids: Sequence[str], filter: str | None = None,
                    order_by: Sequence[str] | None = None, max_results: int = 1000,
                    page_token: str | None = None) -> PagedList:
        if not 1 <= max_results <= 10_000:
            raise InvalidInput(f"max_results must be between 1 and 10000, got {max_results}.")
        eids = [_experiment_id(e) for e in experiment_ids]

        def read(conn: Connection) -> PagedList:
            ids, token = search_run_ids(conn, eids, filter, order_by, max_results, page_token)
            return PagedList(_load_runs(conn, ids), token)
        return self._read(read)

    def list_run_keys(self, experiment_ids: Sequence[str]) -> RunKeys:
        eids = [_experiment_id(e) for e in experiment_ids]
        return self._read(lambda conn: run_keys(conn, eids))

    # -- artifacts and datasets -----------------------------------------------------------
    def record_artifacts(self, run_id: str, artifacts: Sequence[Artifact]) -> None:
        def tx(conn: Connection) -> None:
            self._require_run(conn, run_id)
            self._upsert(conn, t.run_artifacts,
                         [{"run_id": run_id, "path": a.path, "digest": a.digest, "size": a.size}
                          for a in artifacts],
                         keys=("run_id", "path"), update=("digest", "size"))
        self._write(tx)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        def read(conn: Connection) -> list[Artifact]:
            self._require_run(conn, run_id)
            a = t.run_artifacts.c
            query = sa.select(a.path, a.digest, a.size).where(a.run_id == run_id)
            if prefix:
                query = query.where((a.path == prefix)
                                    | a.path.startswith(prefix.rstrip("/") + "/", autoescape=True))
            return [Artifact(*row) for row in conn.execute(query.order_by(a.path))]
        return self._read(read)

    def log_dataset(self, run_id: str, dataset: Dataset, context: str) -> None:
        def tx(conn: Connection) -> None:
            self._require_run(conn, run_id)
            self._upsert(conn, t.datasets, [{
                "digest": dataset.digest, "name": dataset.name, "source": dataset.source,
                "num_rows": dataset.num_rows, "num_columns": dataset.num_columns,
                "schema": json.dumps(dataset.schema, sort_keys=True),
                "creation_time": now_ms()}], keys=("digest",))
            self._upsert(conn, t.run_datasets, [
                {"run_id": run_id, "digest": dataset.digest, "context": context}],
                keys=("run_id", "digest", "context"))
        self._write(tx)

    def get_run_datasets(self, run_id: str) -> list[tuple[Dataset, str]]:
        def read(conn: Connection) -> list[tuple[Dataset, str]]:
            self._require_run(conn, run_id)
            d, rd = t.datasets.c, t.run_datasets.c
            rows = conn.execute(sa.select(t.datasets, rd.context)
                                .join(t.run_datasets, rd.digest == d.digest)
                                .where(rd.run_id == run_id).order_by(rd.context, d.name))
            return [(Dataset(r.digest, r.name, r.source, r.num_rows, r.num_columns,
                             json.loads(r.schema)), r.context) for r in rows]
        return self._read(read)


def _load_runs(conn: Connection, run_ids: Sequence[str]) -> list[Run]:
    """Runs with their params, latest metrics and tags, in the order of ``run_ids``."""
    if not run_ids:
        return []
    ids = list(run_ids)
    rows = {r.run_id: r for r in conn.execute(sa.select(t.runs).where(t.runs.c.run_id.in_(ids)))}
    params: dict[str, dict[str, str]] = {i: {} for i in rows}
    metrics: dict[str, dict[str, float]] = {i: {} for i in rows}
    tags: dict[str, dict[str, str]] = {i: {} for i in rows}
    for rid, k, v in conn.execute(sa.select(t.params.c.run_id, t.params.c.key, t.params.c.value)
                                  .where(t.params.c.run_id.in_(ids))):
        params[rid][k] = v
    lm = t.latest_metrics.c
    for rid, k, v in conn.execute(sa.select(lm.run_id, lm.key, lm.value)
                                  .where(lm.run_id.in_(ids))):
        metrics[rid][k] = math.nan if v is None else v
    for rid, k, v in conn.execute(sa.select(t.run_tags).where(t.run_tags.c.run_id.in_(ids))):
        tags[rid][k] = v
    return [Run(r.run_id, str(r.experiment_id), r.name, RunStatus(r.status), r.start_time,
                r.end_time, r.parent_run_id, params[r.run_id], metrics[r.run_id], tags[r.run_id])
            for r in (rows[i] for i in ids if i in rows)]
