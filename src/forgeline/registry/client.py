"""The registry half of :class:`forgeline.Client`: versions, aliases, tags, lineage, and
each model's monitoring history."""

from __future__ import annotations

import getpass
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from forgeline.entities import (
    GIT_COMMIT,
    GIT_DIRTY,
    AliasEvent,
    Lineage,
    ModelVersion,
    MonitoringRecord,
    RegisteredModel,
    Run,
)
from forgeline.errors import InvalidInput, NotFound
from forgeline.names import check_alias, check_model_name
from forgeline.store.artifacts import safe_artifact_path
from forgeline.util.time import now_ms, parse_time

if TYPE_CHECKING:
    from forgeline.store import ArtifactStore, Store

__all__ = ["RegistryAPI", "local_user"]


def local_user() -> str:
    """The name of the OS user running this process, or ``"unknown"`` when it has none
    (a container's bare uid)."""
    try:
        return getpass.getuser() or "unknown"
    except (KeyError, OSError, ImportError):
        return "unknown"


class RegistryAPI:
    """Alias changes made through this API are recorded in the model's alias history as
    made by the local OS user (:func:`local_user`); a team server with auth on records its
    token's name instead."""

    store: Store
    artifacts: ArtifactStore

    def _actor(self) -> str:
        return local_user()

    def register_model(self, name: str, run_id: str, artifact_path: str = "model",
                       description: str = "", tags: Mapping[str, str] | None = None,
                       aliases: Sequence[str] = ()) -> ModelVersion:
        """Register what ``run_id`` logged under ``artifact_path`` as the next version of ``name``.

        The run must have logged at least one file there; the version records the run,
        and through it the datasets and code that produced it. ``aliases`` (such as
        ``["challenger"]``) point at the new version in the same transaction.
        """
        check_model_name(name)
        path = safe_artifact_path(artifact_path)
        if not self.store.list_artifacts(run_id, path):
            raise InvalidInput(
                f"Run {run_id} logged no artifacts under {path!r}; nothing to register.",
                hint="Log the model first, e.g. run.log_artifact('model_dir', 'model').")
        return self.store.create_model_version(name, run_id, path, description, tags,
                                               [check_alias(a) for a in aliases],
                                               actor=self._actor())

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self.store.get_registered_model(check_model_name(name))

    def list_registered_models(self) -> list[RegisteredModel]:
        return self.store.list_registered_models()

    def get_model_version(self, ref: str, version: int | None = None) -> ModelVersion:
        """``get_model_version("fraud@champion")``, ``("fraud/2")``, ``("fraud")`` (latest),
        or ``("fraud", 2)``.
        """
        if version is not None:
            return self.store.get_model_version(check_model_name(ref), int(version))
        return self.store.resolve_model_version(ref)

    def search_model_versions(self, name: str | None = None) -> list[ModelVersion]:
        """Versions of ``name`` (every model when None), newest first."""
        return self.store.list_model_versions(check_model_name(name) if name else None)

    def set_alias(self, name: str, alias: str, version: int) -> int | None:
        """Point ``name@alias`` at ``version`` atomically; returns the version it left."""
        return self.store.set_alias(check_model_name(name), check_alias(alias), int(version),
                                    actor=self._actor())

    def delete_alias(self, name: str, alias: str) -> int:
        """Remove ``name@alias``; returns the version it pointed at."""
        return self.store.delete_alias(check_model_name(name), check_alias(alias),
                                       actor=self._actor())

    def get_alias_history(self, name: str, alias: str | None = None,
                          max_results: int = 100) -> list[AliasEvent]:
        """Who pointed the aliases of ``name`` (``alias`` only, when given) where, and
        when: the newest ``max_results`` changes, newest first.

        Example: ``client.get_alias_history("fraud", "champion")[0].actor`` is who last
        moved ``fraud@champion``.
        """
        return self.store.get_alias_history(check_model_name(name),
                                            None if alias is None else check_alias(alias),
                                            max_results)

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        self.store.set_model_version_tag(check_model_name(name), int(version), key, value)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        """Tag a registered model (``forgeline.protected`` = ``true``: on a team server only
        an admin may move its aliases)."""
        self.store.set_registered_model_tag(check_model_name(name), key, value)

    def get_monitoring_history(self, model: str,
                               since: int | str | datetime | None = None,
                               until: int | str | datetime | None = None,
                               limit: int = 1000) -> list[MonitoringRecord]:
        """What ``forgeline monitor`` and the server's periodic monitor recorded for
        ``model``, oldest first: the newest ``limit`` records whose window ends (else
        that were recorded) between ``since`` and ``until``.

        ``since`` and ``until`` are epoch milliseconds, datetimes (naive ones are UTC),
        ISO strings, or durations back from now: ``get_monitoring_history("fraud",
        since="7d")``.
        """
        now = now_ms()
        return self.store.get_monitoring_history(
            check_model_name(model), parse_time(since, "since", now),
            parse_time(until, "until", now), limit)

    def delete_model_version(self, name: str, version: int) -> None:
        """Delete a version; refused while an alias points at it."""
        self.store.delete_model_version(check_model_name(name), int(version))

    def get_lineage(self, ref: str) -> Lineage:
        """The run, its ancestors, its datasets and its code version for a model version."""
        mv = self.store.resolve_model_version(ref)
        run = parents = None
        datasets: list = []
        if mv.run_id is not None:
            run = self.store.get_run(mv.run_id)
            parents = []
            parent_id = run.parent_run_id
            while parent_id is not None:
                parent: Run = self.store.get_run(parent_id)
                parents.append(parent)
                parent_id = parent.parent_run_id
            datasets = self.store.get_run_datasets(run.run_id)
        dirty = run.tags.get(GIT_DIRTY) if run else None
        return Lineage(mv, run, tuple(parents or ()), tuple(datasets),
                       run.tags.get(GIT_COMMIT) if run else None,
                       None if dirty is None else dirty == "true")

    def download_model(self, ref: str, dst: str | Path) -> Path:
        """Copy a model version's files into ``dst`` (hashes checked); returns the folder."""
        mv = self.store.resolve_model_version(ref)
        if mv.run_id is None:
            raise NotFound(f"Model version {mv.ref} has no source run to download from.")
        found = self.store.list_artifacts(mv.run_id, mv.artifact_path)
        dst = Path(dst)
        for artifact in found:
            relative = artifact.path[len(mv.artifact_path):].lstrip("/") or Path(
                artifact.path).name
            self.artifacts.copy_to(artifact.digest, dst / relative)
        return dst
