"""The Store contract: everything the lifecycle records goes through this interface.

Contract for every backend:
- Thread and process safe: one Store object may be shared by threads; any number of
  processes may open the same store at once (writes are serialised by the database and
  retried on transient lock conflicts).
- Errors: an unknown id or name raises NotFound; a duplicate name AlreadyExists; a
  malformed value InvalidInput; a state that forbids the change Conflict; a driver or
  connection failure StoreError. A call that raises leaves the store as it was.
- Times are milliseconds since the epoch. Metric points are ``(key, value, step,
  timestamp)``; NaN and ±inf are stored and returned as such.
- Search returns a :class:`PagedList`; its ``token`` fetches the next page.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence

from forgeline.entities import (
    AliasEvent,
    ApiToken,
    Artifact,
    Dataset,
    Experiment,
    Metric,
    MetricSeries,
    ModelVersion,
    MonitoringRecord,
    PagedList,
    RegisteredModel,
    Role,
    Run,
    RunKeys,
    RunStatus,
)
from forgeline.errors import AlreadyExists, InvalidInput, NotFound
from forgeline.names import parse_model_ref
from forgeline.store.artifacts import safe_artifact_path
from forgeline.util.downsample import downsample

__all__ = ["MAX_SERIES_POINTS", "MetricPoint", "Store", "check_series_request"]

MetricPoint = tuple[str, float, int, int]  # key, value, step, timestamp (ms)
MAX_SERIES_POINTS = 100_000  # the most points get_metric_series returns at once


def check_series_request(max_points: int, min_step: int | None, max_step: int | None) -> None:
    """InvalidInput unless ``4 <= max_points <= MAX_SERIES_POINTS`` and the step range is
    not empty."""
    if not 4 <= max_points <= MAX_SERIES_POINTS:
        raise InvalidInput(f"max_points must be between 4 and {MAX_SERIES_POINTS}, got "
                           f"{max_points}.", hint="A chart needs about twice its width.")
    if min_step is not None and max_step is not None and min_step > max_step:
        raise InvalidInput(f"min_step ({min_step}) is after max_step ({max_step}).",
                           hint="Pass min_step <= max_step, or leave either out.")


class Store(abc.ABC):
    """Persistence of experiments, runs, datasets and the model registry."""

    uri: str
    # Writes wait on the network (a team server): a live run sends its metric batches from
    # a background thread, so the logging loop fills the next batch meanwhile.
    remote: bool = False

    # -- experiments --------------------------------------------------------------------
    @abc.abstractmethod
    def create_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> Experiment:
        """Create an experiment; AlreadyExists if the name is taken."""

    @abc.abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment: ...

    @abc.abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None: ...

    @abc.abstractmethod
    def list_experiments(self) -> list[Experiment]: ...

    # -- runs ---------------------------------------------------------------------------
    @abc.abstractmethod
    def create_run(self, experiment_id: str, name: str, start_time: int,
                   tags: Mapping[str, str] | None = None,
                   parent_run_id: str | None = None) -> Run:
        """Create a RUNNING run; NotFound for an unknown experiment or parent."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run: ...

    @abc.abstractmethod
    def set_run_status(self, run_id: str, status: RunStatus, end_time: int | None) -> Run: ...

    @abc.abstractmethod
    def heartbeat(self, run_ids: Sequence[str], now: int) -> None:
        """Record that these runs' processes are alive."""

    @abc.abstractmethod
    def mark_stale_runs(self, older_than: int) -> list[str]:
        """Mark RUNNING runs whose last heartbeat is before ``older_than`` KILLED."""

    @abc.abstractmethod
    def log_batch(self, run_id: str, metrics: Sequence[MetricPoint] = (),
                  params: Mapping[str, str] | None = None,
                  tags: Mapping[str, str] | None = None) -> None:
        """Append metric points, add params (immutable once logged) and set tags, atomically.

        Re-logging a param with the same value is a no-op; a different value is InvalidInput.
        """

    @abc.abstractmethod
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of one metric, ordered by step then timestamp."""

    @abc.abstractmethod
    def search_runs(self, experiment_ids: Sequence[str], filter: str | None = None,
                    order_by: Sequence[str] | None = None, max_results: int = 1000,
                    page_token: str | None = None) -> PagedList:
        """Runs matching the filter language of :mod:`forgeline.store.filter`.

        Pages are keyset pages: the token of a page names its last row, so a deep page
        costs what the first one does and runs created between pages repeat nothing. A
        token is valid with the same experiments, filter and order_by only; any other is
        InvalidInput, which says to restart from the first page.
        """

    # -- artifacts and datasets -----------------------------------------------------------
    @abc.abstractmethod
    def record_artifacts(self, run_id: str, artifacts: Sequence[Artifact]) -> None:
        """Record files logged by a run (path inside the run, digest, size)."""

    @abc.abstractmethod
    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]: ...

    def get_artifact(self, run_id: str, path: str) -> Artifact:
        """The artifact a run logged at ``path`` (checked: no ``..``, no absolute path);
        NotFound if there is none."""
        clean = safe_artifact_path(path)
        for artifact in self.list_artifacts(run_id, clean):
            if artifact.path == clean:
                return artifact
        raise NotFound(f"Run {run_id} has no artifact {clean!r}.",
                       hint=f"List the run's artifacts: `forgeline runs show {run_id}`.")

    @abc.abstractmethod
    def log_dataset(self, run_id: str, dataset: Dataset, context: str) -> None:
        """Record a dataset version (once per digest) and link it to the run."""

    @abc.abstractmethod
    def get_run_datasets(self, run_id: str) -> list[tuple[Dataset, str]]: ...

    # -- registry -------------------------------------------------------------------------
    @abc.abstractmethod
    def create_registered_model(self, name: str, description: str = "") -> RegisteredModel: ...

    @abc.abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel: ...

    @abc.abstractmethod
    def list_registered_models(self) -> list[RegisteredModel]: ...

    @abc.abstractmethod
    def create_model_version(self, name: str, run_id: str | None, artifact_path: str,
                             description: str = "", tags: Mapping[str, str] | None = None,
                             aliases: Sequence[str] = (), *,
                             actor: str | None = None) -> ModelVersion:
        """Add the next version (1, 2, ...) of a registered model, creating the model.

        ``aliases`` point at the new version in the same transaction: all or nothing; each
        is recorded in the alias history as set (or moved) by ``actor``.
        """

    @abc.abstractmethod
    def get_model_version(self, name: str, version: int) -> ModelVersion: ...

    @abc.abstractmethod
    def list_model_versions(self, name: str | None = None) -> list[ModelVersion]:
        """Versions of one model (or all models), newest first."""

    @abc.abstractmethod
    def delete_model_version(self, name: str, version: int) -> None:
        """Delete a version; Conflict while an alias points at it."""

    @abc.abstractmethod
    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None: ...

    @abc.abstractmethod
    def set_alias(self, name: str, alias: str, version: int, *,
                  actor: str | None = None) -> int | None:
        """Point ``alias`` at ``version`` atomically; return where it pointed before.

        The change is recorded in the alias history, by ``actor``, in the same
        transaction; pointing an alias where it already points records nothing.
        """

    @abc.abstractmethod
    def delete_alias(self, name: str, alias: str, *, actor: str | None = None) -> int:
        """Remove an alias; return the version it pointed at. NotFound if unset.

        The deletion is recorded in the alias history, by ``actor``, in the same transaction.
        """

    @abc.abstractmethod
    def get_alias_history(self, name: str, alias: str | None = None,
                          max_results: int = 100) -> list[AliasEvent]:
        """The changes of the aliases of model ``name`` (of ``alias`` only, when given),
        newest first, at most ``max_results``. NotFound for an unknown model; InvalidInput
        unless ``max_results`` is a positive integer. The history outlives the versions it
        names and is kept as long as the model."""

    @abc.abstractmethod
    def get_alias(self, name: str, alias: str) -> int:
        """The version an alias points at; NotFound if unset."""

    @abc.abstractmethod
    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        """Set a tag on a registered model (``forgeline.protected`` = ``true`` makes its
        aliases an admin's to move on a team server); NotFound for an unknown model."""

    # -- monitoring history -----------------------------------------------------------------
    @abc.abstractmethod
    def record_monitoring(self, record: MonitoringRecord) -> None:
        """Keep one monitoring run's results; recording the same ``record_id`` again is a
        no-op (a retried request stores it once)."""

    @abc.abstractmethod
    def get_monitoring_history(self, model: str, since: int | None = None,
                               until: int | None = None, limit: int = 10_000
                               ) -> list[MonitoringRecord]:
        """The records of one model whose window (else creation time) ends in
        [since, until], oldest first, at most ``limit`` (the newest ones)."""

    # -- team server tokens -------------------------------------------------------------------
    @abc.abstractmethod
    def create_token(self, name: str, role: Role, secret_sha256: str) -> ApiToken:
        """Keep a token by the sha256 of its secret; AlreadyExists if the name is taken."""

    @abc.abstractmethod
    def find_token(self, secret_sha256: str) -> ApiToken | None:
        """The token whose secret has this sha256, or None."""

    @abc.abstractmethod
    def list_tokens(self) -> list[ApiToken]: ...

    @abc.abstractmethod
    def delete_token(self, name: str) -> None:
        """Revoke a token; NotFound if there is none of that name."""

    # -- built from the primitives ----------------------------------------------------------
    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the store reconnects if used again."""

    def study_storage(self) -> str | None:
        """A database URL for Optuna's RDB storage beside this store (tuning studies), or
        None where there is none (a team server's client, an in-memory database)."""
        return None

    def get_or_create_experiment(self, name: str) -> Experiment:
        experiment = self.get_experiment_by_name(name)
        if experiment is not None:
            return experiment
        try:
            return self.create_experiment(name)
        except AlreadyExists:  # another process created it in between
            found = self.get_experiment_by_name(name)
            assert found is not None
            return found

    def log_metrics(self, run_id: str, points: Sequence[MetricPoint]) -> None:
        self.log_batch(run_id, metrics=points)

    def resolve_model_version(self, ref: str) -> ModelVersion:
        """Resolve ``name@alias``, ``name/3`` or ``name`` (its latest version)."""
        parsed = parse_model_ref(ref)
        if parsed.alias is not None:
            return self.get_model_version(parsed.name, self.get_alias(parsed.name, parsed.alias))
        if parsed.version is not None:
            return self.get_model_version(parsed.name, parsed.version)
        latest = self.get_registered_model(parsed.name).latest_version
        if latest is None:
            raise NotFound(f"Model {parsed.name!r} has no versions.",
                           hint="Register one with Client.register_model.")
        return self.get_model_version(parsed.name, latest)

    def iter_runs(self, experiment_ids: Sequence[str], filter: str | None = None,
                  order_by: Sequence[str] | None = None) -> Iterable[Run]:
        """Every matching run, page by page."""
        token = None
        while True:
            page = self.search_runs(experiment_ids, filter, order_by, 1000, token)
            yield from page
            token = page.token
            if token is None:
                return

    def get_metric_series(self, run_id: str, key: str, max_points: int = 2000,
                          min_step: int | None = None, max_step: int | None = None
                          ) -> MetricSeries:
        """One metric of one run, for a chart: its points with steps in [min_step,
        max_step] (None: unbounded), exactly when there are at most ``max_points`` of them,
        else at most ``max_points`` that keep the series' shape (:class:`MetricSeries`).
        Zooming is asking again for a narrower range. NotFound for an unknown run; an
        unknown key is an empty series; InvalidInput for a bad ``max_points`` or range.

        This default reads the whole history and downsamples it with
        :func:`forgeline.util.downsample.downsample`; a backend overrides it with a query
        that reads no more than the chart needs.
        """
        check_series_request(max_points, min_step, max_step)
        points = [m for m in self.get_metric_history(run_id, key)
                  if (min_step is None or m.step >= min_step)
                  and (max_step is None or m.step <= max_step)]
        keep = downsample([m.step for m in points], [m.value for m in points], max_points)
        return MetricSeries(tuple(points[i].step for i in keep),
                            tuple(points[i].value for i in keep), len(points),
                            len(keep) < len(points))

    def list_run_keys(self, experiment_ids: Sequence[str]) -> RunKeys:
        """The distinct metric, param and tag keys that the runs of these experiments
        use, each sorted (what a search or a chart can name).

        This default reads every run; a backend overrides it with one query.
        """
        metrics: set[str] = set()
        params: set[str] = set()
        tags: set[str] = set()
        for run in self.iter_runs(experiment_ids):
            metrics.update(run.metrics)
            params.update(run.params)
            tags.update(run.tags)
        return RunKeys(tuple(sorted(metrics)), tuple(sorted(params)), tuple(sorted(tags)))
