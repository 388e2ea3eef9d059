"""The explicit tracking API; the fluent API (``fl.start_run``) is a thin layer over it."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from forgeline.config import Settings, load_settings
from forgeline.entities import Artifact, Dataset, Experiment, Metric, PagedList, Run
from forgeline.errors import InvalidInput, NotFound
from forgeline.names import check_name
from forgeline.registry.client import RegistryAPI
from forgeline.store import ArtifactStore, LocalArtifactStore, Store, get_store, open_artifact_store
from forgeline.store.artifacts import safe_artifact_path
from forgeline.tracking.context import run_context_tags
from forgeline.tracking.run import ActiveRun, metric_step, metric_value, param_value
from forgeline.util.time import now_ms

__all__ = ["DEFAULT_EXPERIMENT", "Client"]

DEFAULT_EXPERIMENT = "Default"
_ADJECTIVES = ("amber", "bold", "brisk", "calm", "clever", "crisp", "eager", "fleet", "gentle",
               "keen", "lucid", "nimble", "quiet", "rapid", "steady", "swift", "vivid", "wise")
_NOUNS = ("badger", "crane", "falcon", "fox", "heron", "ibis", "lynx", "marten", "otter",
          "owl", "panda", "raven", "seal", "stoat", "swan", "tern", "wolf", "wren")


def _run_name() -> str:
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(1, 999)}"


class Client(RegistryAPI):
    """Experiments, runs and the model registry of one store.

    Args:
        store: a store URI (``sqlite:///...``, ``postgresql+psycopg://...``, or
            ``http://host:5000`` for a team server, with FORGELINE_TOKEN), a Store, or None
            for the configured default.
        artifact_root: where artifact bytes live; by default FORGELINE_ARTIFACT_ROOT, else
            ``artifacts/`` beside a SQLite store file, else ``<home>/artifacts``. With a
            team server (an ``http://`` store) the server keeps the bytes and this is where
            downloads are cached (by default ``<home>/cache/artifacts``).
    """

    def __init__(self, store: str | Store | None = None, *,
                 artifact_root: str | Path | None = None,
                 settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self.store = get_store(store if store is not None else self.settings.resolved_store_uri)
        self.artifacts = self._artifact_store(artifact_root)

    def _artifact_store(self, artifact_root: str | Path | None) -> ArtifactStore:
        if self.store.uri.startswith(("http://", "https://")):
            # A team server keeps the bytes; downloads are cached here. httpx is imported
            # only for a team server.
            from forgeline.store.http.artifacts import HttpArtifactStore
            from forgeline.store.http.store import HttpStore

            assert isinstance(self.store, HttpStore)
            return HttpArtifactStore(self.store, Path(artifact_root) if artifact_root else
                                     (self.settings.home / "cache" / "artifacts").absolute())
        root = artifact_root if artifact_root else self._default_artifact_root()
        if isinstance(root, str) and root.startswith("s3://"):
            return open_artifact_store(root)
        return LocalArtifactStore(Path(root))

    def _default_artifact_root(self) -> Path | str:
        if self.settings.artifact_root is not None:
            return self.settings.resolved_artifact_root
        uri = self.store.uri
        if uri.startswith("sqlite:///") and ":memory:" not in uri:
            return Path(uri.removeprefix("sqlite:///")).absolute().parent / "artifacts"
        return self.settings.resolved_artifact_root

    def __repr__(self) -> str:
        return f"Client(store={self.store!r}, artifacts={self.artifacts!r})"

    # -- experiments --------------------------------------------------------------------
    def create_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> Experiment:
        return self.store.create_experiment(name, tags)

    def get_experiment(self, id_or_name: str) -> Experiment:
        """An experiment by id or by name."""
        found = self.store.get_experiment_by_name(id_or_name)
        if found is not None:
            return found
        if str(id_or_name).isdigit():
            return self.store.get_experiment(str(id_or_name))
        raise NotFound(f"Experiment {id_or_name!r} not found.",
                       hint="List experiments with `forgeline experiments list`.")

    def list_experiments(self) -> list[Experiment]:
        return self.store.list_experiments()

    # -- runs ---------------------------------------------------------------------------
    def start_run(self, experiment: str | None = None, name: str | None = None,
                  tags: Mapping[str, Any] | None = None,
                  parent_run_id: str | None = None) -> ActiveRun:
        """Create a RUNNING run and return a handle that logs into it.

        The run records the git commit and dirty flag, Python and key package versions,
        and the command line, as ``forgeline.*`` tags.
        """
        self.mark_stale_runs()
        exp = self.store.get_or_create_experiment(check_name(experiment or DEFAULT_EXPERIMENT,
                                                             "experiment name"))
        all_tags = {**run_context_tags(), **{k: str(v) for k, v in (tags or {}).items()}}
        run = self.store.create_run(exp.experiment_id, name or _run_name(), now_ms(),
                                    all_tags, parent_run_id)
        s = self.settings
        return ActiveRun(self, run, s.metric_flush_size, s.metric_flush_interval_s,
                         s.heartbeat_s)

    def get_run(self, run_id: str) -> Run:
        """A run by its id or a unique prefix of it (at least 4 characters)."""
        return self.store.get_run(self.resolve_run_id(run_id))

    def resolve_run_id(self, prefix: str) -> str:
        """The full id of the one run whose id starts with ``prefix``."""
        if len(prefix) == 32 or not 4 <= len(prefix) < 32 or not all(
                c in "0123456789abcdef" for c in prefix):
            return prefix  # a full id, or not a prefix: get_run says NotFound if unknown
        found = self.search_runs(None, f"run_id LIKE '{prefix}%'", max_results=2)
        if not found:
            raise NotFound(f"No run id starts with {prefix!r}.",
                           hint="List runs with `forgeline runs list`.")
        if len(found) > 1:
            raise InvalidInput(f"Run id prefix {prefix!r} matches several runs.",
                               hint="Give more characters of the id.")
        return found[0].run_id

    def search_runs(self, experiment: str | Sequence[str] | None = None,
                    filter: str | None = None, order_by: Sequence[str] | None = None,
                    max_results: int = 100, page_token: str | None = None) -> PagedList:
        """Runs of the named experiments (names or ids; all when None) matching ``filter``.

        Example: ``search_runs("fraud", "metrics.auc > 0.9 and params.depth = '6'",
        ["metrics.auc DESC"])``. The result's ``token`` fetches the next page.
        """
        if experiment is None:
            ids = [e.experiment_id for e in self.store.list_experiments()]
        else:
            names = [experiment] if isinstance(experiment, str) else list(experiment)
            ids = [self.get_experiment(n).experiment_id for n in names]
        return self.store.search_runs(ids, filter, order_by, max_results, page_token)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self.store.get_metric_history(run_id, key)

    def log_metric(self, run_id: str, key: str, value: float, step: int = 0,
                   timestamp: int | None = None) -> None:
        """Write one point now (unbuffered); prefer :class:`ActiveRun` in a loop."""
        self.store.log_metrics(run_id, [(key, metric_value(key, value), metric_step(step),
                                         timestamp or now_ms())])

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self.store.log_batch(run_id, params={k: param_value(v) for k, v in params.items()})

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.store.log_batch(run_id, tags={k: str(v) for k, v in tags.items()})

    def mark_stale_runs(self, timeout_s: float | None = None) -> list[str]:
        """Mark KILLED the RUNNING runs whose process stopped beating ``timeout_s`` ago."""
        timeout = self.settings.heartbeat_timeout_s if timeout_s is None else timeout_s
        return self.store.mark_stale_runs(now_ms() - int(timeout * 1000))

    # -- artifacts and datasets -----------------------------------------------------------
    def list_artifacts(self, run_id: str, path: str = "") -> list[Artifact]:
        return self.store.list_artifacts(run_id, safe_artifact_path(path) if path else "")

    def download_artifacts(self, run_id: str, path: str = "", dst: str | Path = ".") -> Path:
        """Copy a run's artifacts under ``path`` into ``dst``, checking every hash."""
        found = self.list_artifacts(run_id, path)
        if not found:
            where = f" under {path!r}" if path else ""
            raise NotFound(f"Run {run_id} has no artifacts{where}.")
        dst = Path(dst)
        for artifact in found:
            self.artifacts.copy_to(artifact.digest, dst / artifact.path)
        return dst / path if path else dst

    def get_run_datasets(self, run_id: str) -> list[tuple[Dataset, str]]:
        return self.store.get_run_datasets(run_id)
