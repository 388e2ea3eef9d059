"""The shared vocabulary: the values the lifecycle records (frozen, slotted dataclasses),
the task, split and policy enums every stage reads, and the tag names Forgeline sets.

ORM rows never leave ``store/sql``; they are converted to these at the boundary.
Times are milliseconds since the Unix epoch (int), as in the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from forgeline.util.json import jsonable

__all__ = [
    "GIT_COMMIT",
    "GIT_DIRTY",
    "MIN_SLICE_ROWS",
    "SYSTEM_TAG_PREFIX",
    "AliasEvent",
    "ApiToken",
    "Artifact",
    "Dataset",
    "Evaluation",
    "Experiment",
    "Lineage",
    "Metric",
    "MetricSeries",
    "ModelVersion",
    "MonitoringRecord",
    "PagedList",
    "Policy",
    "RegisteredModel",
    "Role",
    "Run",
    "RunKeys",
    "RunStatus",
    "SplitStrategy",
    "Task",
]

# Tags Forgeline sets on runs itself (tracking writes them; the registry reads the code
# version back for a model's lineage).
SYSTEM_TAG_PREFIX = "forgeline."
GIT_COMMIT = "forgeline.git.commit"
GIT_DIRTY = "forgeline.git.dirty"


class Task(StrEnum):
    """What a model predicts: the task training infers and every later stage reads."""

    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"


class SplitStrategy(StrEnum):
    """How rows are split into training and test (and into cross-validation folds)."""

    RANDOM = "random"
    STRATIFIED = "stratified"
    TIME = "time"
    GROUP = "group"


class Policy(StrEnum):
    """What a check does when it finds something: stop, report, or say nothing."""

    FAIL = "fail"
    WARN = "warn"
    IGNORE = "ignore"


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.RUNNING


class Role(StrEnum):
    """What a team server token may do; each role may do what the ones before it may."""

    READER = "reader"  # read anything
    WRITER = "writer"  # log runs, artifacts, datasets, monitoring; register versions
    ADMIN = "admin"  # move aliases of protected models, delete, manage tokens

    def allows(self, needed: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True, slots=True)
class Experiment:
    experiment_id: str
    name: str
    creation_time: int
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    value: float
    step: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class MetricSeries:
    """One metric of one run as a chart draws it: points ordered by step.

    ``total`` is how many points the requested step range holds. When it is at most the
    points asked for, ``steps`` and ``values`` are exactly those points and
    ``downsampled`` is False; otherwise they are a subset that keeps the series' shape
    (the first, last, lowest and highest point of each step bucket: the range's first and
    last point and its extremes are always in it) and ``downsampled`` is True. A value may
    be NaN (or infinite), as logged.
    """

    steps: tuple[int, ...]
    values: tuple[float, ...]
    total: int
    downsampled: bool


@dataclass(frozen=True, slots=True)
class RunKeys:
    """The distinct metric, param and tag keys that runs use, each sorted."""

    metrics: tuple[str, ...]
    params: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Run:
    """A run with its latest metric values, params and tags."""

    run_id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    parent_run_id: str | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Artifact:
    """A file logged by a run: its path inside the run and its content digest."""

    path: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset version, identified by the hash of its content."""

    digest: str
    name: str
    source: str
    num_rows: int | None = None
    num_columns: int | None = None
    schema: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: str
    description: str
    creation_time: int
    last_updated_time: int
    latest_version: int | None
    aliases: dict[str, int] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelVersion:
    name: str
    version: int
    run_id: str | None
    artifact_path: str
    creation_time: int
    description: str = ""
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"


@dataclass(frozen=True, slots=True)
class Lineage:
    """What produced a model version: its run, the run's ancestors, data and code."""

    model_version: ModelVersion
    run: Run | None
    parent_runs: tuple[Run, ...]
    datasets: tuple[tuple[Dataset, str], ...]  # (dataset, context such as "train")
    git_commit: str | None
    git_dirty: bool | None


@dataclass(frozen=True, slots=True)
class AliasEvent:
    """One change of a model's alias, as the registry remembers it.

    ``version`` is where the alias pointed after the change (None: it was deleted) and
    ``previous_version`` where it pointed before (None: it was new). ``actor`` is who made
    the change: on a team server with auth on, the name of the request's token; otherwise
    the user the client reported (None when nobody was named).
    """

    name: str
    alias: str
    version: int | None
    previous_version: int | None
    time: int
    actor: str | None = None

    @property
    def action(self) -> str:
        """``"set"`` (a new alias), ``"moved"`` or ``"deleted"``."""
        if self.version is None:
            return "deleted"
        return "set" if self.previous_version is None else "moved"


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A team server token as the store keeps it: its name and role; only the sha256 of
    the secret is stored, never the secret."""

    name: str
    role: Role
    creation_time: int


@dataclass(frozen=True, slots=True)
class MonitoringRecord:
    """What one monitoring run found, as kept in the store for history and charts.

    Attributes:
        record_id: 32 hex characters, chosen by the writer (so a retry stores it once).
        model: the registered model's name (or the package path when it has none);
            ``version`` the version monitored, when known.
        window_start, window_end: the period monitored (ms, on ``clock``), when known.
        creation_time: when the result was recorded (ms).
        source: ``monitor`` (the command) or ``serve`` (the periodic monitor).
        rows: current rows monitored.
        dataset_drift: the share of drifted features; ``dataset_drifted`` the verdict.
        prediction_drift: the predictions' drift score, without a reference None.
        features: drift score per feature; ``drifted`` the features flagged.
        quality: the data quality figures (missing, out-of-range and unseen shares...).
        metrics: realised metrics (with labels); ``estimated`` the estimated ones.
        alerts: the rules that fired.
        clock: which times cut the windows (``event time: ts``, ``logging time: ts``...).
        report: where the HTML report was written, if anywhere.
    """

    record_id: str
    model: str
    version: str | None
    window_start: int | None
    window_end: int | None
    creation_time: int
    source: str
    rows: int
    dataset_drift: float
    dataset_drifted: bool
    prediction_drift: float | None = None
    features: dict[str, float] = field(default_factory=dict)
    drifted: tuple[str, ...] = ()
    quality: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    estimated: dict[str, float] = field(default_factory=dict)
    alerts: tuple[str, ...] = ()
    clock: str = ""
    report: str | None = None


MIN_SLICE_ROWS = 10  # an evaluation lists smaller slices with their size but scores none


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The evaluation of one model on one test split (training makes it; reports, cards
    and the registry show it). ``to_dict()`` is its JSON form, ``from_dict`` reads it back.

    ``curves`` holds, for a binary task, ``roc`` {fpr, tpr, auc}, ``pr`` {precision, recall,
    average_precision} and ``calibration`` {mean_predicted, fraction_positive, counts,
    hist_edges, hist_counts}; for a multiclass task ``roc_ovr``, one {class, fpr, tpr, auc}
    per class. ``residuals`` (regression) holds a sample {y_true, y_pred, residual} and a
    histogram of every residual {hist_edges, hist_counts}. ``slices`` lists, per sensitive
    column, a row per group; groups under ``min_slice_rows`` rows are not scored.
    ``recent`` (with a time column) scores the newest share of the test rows on its own:
    {column, share, rows, from, to, metrics}. ``fairness`` holds, per sensitive column,
    :func:`forgeline.fairness.group_fairness` (per-group rates and calibration,
    differences and ratios, bootstrap intervals) and the largest metric gap.
    """

    task: str
    metric: str
    score: float
    metrics: dict[str, float]
    n_rows: int
    classes: list[Any] | None
    confusion: list[list[int]] | None
    curves: dict[str, Any]
    residuals: dict[str, Any] | None
    importance: list[dict[str, float | str]]
    slices: dict[str, list[dict[str, Any]]]
    fairness: dict[str, dict[str, Any]]
    min_slice_rows: int = MIN_SLICE_ROWS
    recent: dict[str, Any] | None = None
    importance_note: str | None = None  # how importance was cut to fit a time budget
    # the spec's fairness limits on the test split: {"limits": [{limit, column, metric,
    # value, ci, passed}], "passed", "mitigation": the candidate's figures or None}
    fairness_limits: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict: numpy scalars made plain, NaN and infinity made None."""
        return jsonable(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        """The evaluation a :meth:`to_dict` (e.g. a run's ``evaluation.json``) holds."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class PagedList(list):  # type: ignore[type-arg]
    """A page of results; ``token`` fetches the next page, None on the last one."""

    def __init__(self, items: list[Any], token: str | None = None) -> None:
        super().__init__(items)
        self.token = token
