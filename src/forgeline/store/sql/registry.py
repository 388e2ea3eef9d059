"""Registered models, versions, tags and aliases in SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from forgeline.entities import AliasEvent, ModelVersion, RegisteredModel
from forgeline.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from forgeline.names import check_alias, check_key, check_model_name
from forgeline.store.sql import tables as t
from forgeline.store.sql.base import SqlBase
from forgeline.util.time import now_ms

_rm, _mv, _al, _mvt = (t.registered_models.c, t.model_versions.c, t.model_aliases.c,
                       t.model_version_tags.c)
_ae = t.model_alias_events.c


def _model_not_found(name: str) -> NotFound:
    return NotFound(f"Model {name!r} is not registered.",
                    hint="List models with `forgeline models list`.")


def _check_actor(actor: str | None) -> str | None:
    if actor is not None and (not isinstance(actor, str) or not 0 < len(actor) <= 256):
        shown = repr(actor) if len(repr(actor)) <= 60 else repr(actor)[:57] + "..."
        raise InvalidInput(f"Invalid actor {shown}: expected a name of 1 to 256 characters.",
                           hint="Name who changes the alias, or pass None.")
    return actor


def _record_alias_change(conn: Connection, name: str, alias: str, version: int | None,
                         previous: int | None, time: int, actor: str | None) -> None:
    """Append one change to the alias history, in the caller's transaction."""
    conn.execute(t.model_alias_events.insert().values(
        name=name, alias=alias, version=version, previous_version=previous, time=time,
        actor=actor))


class RegistryMixin(SqlBase):
    def create_registered_model(self, name: str, description: str = "") -> RegisteredModel:
        check_model_name(name)
        now = now_ms()
        self._write(lambda conn: conn.execute(t.registered_models.insert().values(
            name=name, description=description, creation_time=now, last_updated_time=now)),
            on_duplicate=lambda: AlreadyExists(f"Model {name!r} is already registered."))
        return self.get_registered_model(name)

    def _models(self, conn: Connection, names: list[str] | None) -> list[RegisteredModel]:
        query = sa.select(t.registered_models).order_by(_rm.name)
        if names is not None:
            query = query.where(_rm.name.in_(names))
        rows = conn.execute(query).all()
        picked = [r.name for r in rows]
        latest = dict(conn.execute(sa.select(_mv.name, sa.func.max(_mv.version))
                                   .where(_mv.name.in_(picked)).group_by(_mv.name)).all())
        aliases: dict[str, dict[str, int]] = {n: {} for n in picked}
        for n, alias, version in conn.execute(sa.select(t.model_aliases)
                                              .where(_al.name.in_(picked))):
            aliases[n][alias] = version
        tags: dict[str, dict[str, str]] = {n: {} for n in picked}
        for n, k, v in conn.execute(sa.select(t.registered_model_tags)
                                    .where(t.registered_model_tags.c.name.in_(picked))):
            tags[n][k] = v
        return [RegisteredModel(r.name, r.description, r.creation_time, r.last_updated_time,
                                latest.get(r.name), aliases[r.name], tags[r.name]) for r in rows]

    def get_registered_model(self, name: str) -> RegisteredModel:
        found = self._read(lambda conn: self._models(conn, [name]))
        if not found:
            raise _model_not_found(name)
        return found[0]

    def list_registered_models(self) -> list[RegisteredModel]:
        return self._read(lambda conn: self._models(conn, None))

    def create_model_version(self, name: str, run_id: str | None, artifact_path: str,
                             description: str = "", tags: Mapping[str, str] | None = None,
                             aliases: Sequence[str] = (), *,
                             actor: str | None = None) -> ModelVersion:
        check_model_name(name)
        for alias in aliases:
            check_alias(alias)
        _check_actor(actor)

        def tx(conn: Connection) -> int:
            if run_id is not None:
                self._require_run(conn, run_id)
            now = now_ms()
            self._upsert(conn, t.registered_models, [{
                "name": name, "description": "", "creation_time": now,
                "last_updated_time": now}], keys=("name",))
            # Lock the model's row (PostgreSQL) so concurrent registrations number in turn;
            # SQLite's BEGIN IMMEDIATE already serialises writers.
            conn.execute(sa.select(_rm.name).where(_rm.name == name).with_for_update())
            version = (conn.execute(sa.select(sa.func.max(_mv.version))
                                    .where(_mv.name == name)).scalar() or 0) + 1
            conn.execute(t.model_versions.insert().values(
                name=name, version=version, run_id=run_id, artifact_path=artifact_path,
                description=description, creation_time=now))
            conn.execute(t.registered_models.update().where(_rm.name == name)
                         .values(last_updated_time=now))
            rows = [{"name": name, "version": version, "key": check_key(k, "tag key"),
                     "value": str(v)} for k, v in (tags or {}).items()]
            if rows:
                conn.execute(t.model_version_tags.insert(), rows)
            moved = list(dict.fromkeys(aliases))
            before: dict[str, int] = {}
            if moved:
                before = dict(conn.execute(sa.select(_al.alias, _al.version).where(
                    _al.name == name, _al.alias.in_(moved)).with_for_update()).all())
            self._upsert(conn, t.model_aliases,
                         [{"name": name, "alias": a, "version": version} for a in moved],
                         keys=("name", "alias"), update=("version",))
            for a in moved:
                _record_alias_change(conn, name, a, version, before.get(a), now, actor)
            return version

        return self.get_model_version(name, self._write(tx))

    def _versions(self, conn: Connection, where: sa.ColumnElement[bool]) -> list[ModelVersion]:
        rows = conn.execute(sa.select(t.model_versions).where(where)
                            .order_by(_mv.name, _mv.version.desc())).all()
        names = list({r.name for r in rows})
        aliases: dict[tuple[str, int], list[str]] = {}
        for n, alias, version in conn.execute(sa.select(t.model_aliases)
                                              .where(_al.name.in_(names)).order_by(_al.alias)):
            aliases.setdefault((n, version), []).append(alias)
        tags: dict[tuple[str, int], dict[str, str]] = {}
        for n, version, k, v in conn.execute(sa.select(t.model_version_tags)
                                             .where(_mvt.name.in_(names))):
            tags.setdefault((n, version), {})[k] = v
        return [ModelVersion(r.name, r.version, r.run_id, r.artifact_path, r.creation_time,
                             r.description, tuple(aliases.get((r.name, r.version), ())),
                             tags.get((r.name, r.version), {})) for r in rows]

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        def read(conn: Connection) -> list[ModelVersion]:
            found = self._versions(conn, (_mv.name == name) & (_mv.version == int(version)))
            if not found and conn.execute(sa.select(_rm.name).where(_rm.name == name)).first():
                raise NotFound(f"Model {name!r} has no version {version}.",
                               hint=f"List versions with `forgeline models versions {name}`.")
            return found
        found = self._read(read)
        if not found:
            raise _model_not_found(name)
        return found[0]

    def list_model_versions(self, name: str | None = None) -> list[ModelVersion]:
        def read(conn: Connection) -> list[ModelVersion]:
            if name is None:
                return self._versions(conn, sa.true())
            if conn.execute(sa.select(_rm.name).where(_rm.name == name)).first() is None:
                raise _model_not_found(name)
            return self._versions(conn, _mv.name == name)
        return self._read(read)

    def _require_version(self, conn: Connection, name: str, version: int) -> None:
        if conn.execute(sa.select(_mv.version).where(_mv.name == name,
                                                     _mv.version == version)).first() is None:
            raise NotFound(f"Model {name!r} has no version {version}.",
                           hint=f"List versions with `forgeline models versions {name}`.")

    def delete_model_version(self, name: str, version: int) -> None:
        def tx(conn: Connection) -> None:
            self._require_version(conn, name, version)
            aliases = list(conn.execute(sa.select(_al.alias).where(
                _al.name == name, _al.version == version)).scalars())
            if aliases:
                shown = ", ".join(f"{name}@{a}" for a in sorted(aliases))
                raise Conflict(f"Cannot delete {name}/{version}: {shown} points at it.",
                               hint="Move or delete the alias first "
                                    "(`forgeline models alias ...`).")
            conn.execute(t.model_version_tags.delete().where(_mvt.name == name,
                                                             _mvt.version == version))
            conn.execute(t.model_versions.delete().where(_mv.name == name,
                                                         _mv.version == version))
        self._write(tx)

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        def tx(conn: Connection) -> None:
            self._require_version(conn, name, version)
            self._upsert(conn, t.model_version_tags, [{
                "name": name, "version": version, "key": check_key(key, "tag key"),
                "value": str(value)}], keys=("name", "version", "key"), update=("value",))
        self._write(tx)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        check_key(key, "tag key")

        def tx(conn: Connection) -> None:
            if conn.execute(sa.select(_rm.name).where(_rm.name == name)).first() is None:
                raise _model_not_found(name)
            self._upsert(conn, t.registered_model_tags, [{"name": name, "key": key,
                                                          "value": str(value)}],
                         keys=("name", "key"), update=("value",))
        self._write(tx)

    def set_alias(self, name: str, alias: str, version: int, *,
                  actor: str | None = None) -> int | None:
        check_alias(alias)
        _check_actor(actor)

        def tx(conn: Connection) -> int | None:
            self._require_version(conn, name, version)
            before = conn.execute(sa.select(_al.version).where(
                _al.name == name, _al.alias == alias).with_for_update()).scalar()
            self._upsert(conn, t.model_aliases, [{"name": name, "alias": alias,
                                                  "version": version}],
                         keys=("name", "alias"), update=("version",))
            now = now_ms()
            conn.execute(t.registered_models.update().where(_rm.name == name)
                         .values(last_updated_time=now))
            if before != version:  # pointing it where it points is not a move
                _record_alias_change(conn, name, alias, version, before, now, actor)
            return before
        return self._write(tx)

    def delete_alias(self, name: str, alias: str, *, actor: str | None = None) -> int:
        _check_actor(actor)

        def tx(conn: Connection) -> int:
            before = conn.execute(sa.select(_al.version).where(
                _al.name == name, _al.alias == alias).with_for_update()).scalar()
            if before is None:
                raise NotFound(f"Model {name!r} has no alias {alias!r}.")
            conn.execute(t.model_aliases.delete().where(_al.name == name, _al.alias == alias))
            _record_alias_change(conn, name, alias, None, before, now_ms(), actor)
            return before
        return self._write(tx)

    def get_alias_history(self, name: str, alias: str | None = None,
                          max_results: int = 100) -> list[AliasEvent]:
        if (isinstance(max_results, bool) or not isinstance(max_results, int)
                or max_results < 1):
            raise InvalidInput(f"Invalid max_results {max_results!r} for the alias history.",
                               hint="Pass a positive number of events.")
        query = sa.select(t.model_alias_events).where(_ae.name == name)
        if alias is not None:
            query = query.where(_ae.alias == alias)
        query = query.order_by(_ae.id.desc()).limit(max_results)  # ids grow with each change

        def read(conn: Connection) -> list[AliasEvent]:
            if conn.execute(sa.select(_rm.name).where(_rm.name == name)).first() is None:
                raise _model_not_found(name)
            return [AliasEvent(r.name, r.alias, r.version, r.previous_version, r.time, r.actor)
                    for r in conn.execute(query)]
        return self._read(read)

    def get_alias(self, name: str, alias: str) -> int:
        def read(conn: Connection) -> int | None:
            return conn.execute(sa.select(_al.version).where(_al.name == name,
                                                             _al.alias == alias)).scalar()
        version = self._read(read)
        if version is None:
            known = self.get_registered_model(name).aliases  # NotFound if no such model
            listed = ", ".join(sorted(known)) or "none yet"
            raise NotFound(f"Model {name!r} has no alias {alias!r} (aliases: {listed}).",
                           hint=f"Set one with `forgeline models alias {name} {alias} VERSION`.")
        return version
