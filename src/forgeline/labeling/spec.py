"""The labelling spec: what ``forgeline label`` reads, YAML validated by pydantic.

Only ``name``, ``data.path``, ``data.text`` and ``classes`` are required; a run needs at
least one source (``functions``, ``llm`` or ``labels``). Every path is taken relative to
the spec file's folder. ``--set key=value`` overrides any field (``label_model.threshold=0.9``).

    name: tweets-sentiment
    data: {path: tweets.csv, text: text, id: tweet_id}   # id: optional (else the row number)
    classes: [negative, positive]
    functions: [lfs.py]                                   # files of lf_* functions
    llm: {url: http://127.0.0.1:8080/v1, model: gemma, prompt: prompt.yaml}
    gold: {column: human_label, file: review.csv}         # human labels: a column, a review
    labels: {column: noisy_label}                         # existing labels: a source, checked
    label_model: {model: auto, threshold: 0.7}
    output: {path: labelled.parquet, column: label}
    review: {size: 50, path: review.csv}

The prompt file holds a :class:`~forgeline.labeling.prompt.PromptTemplate` mapping
(``instruction``, ``examples``; ``classes`` default to the spec's, and must name the
same classes when given).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forgeline.errors import ForgelineError, InvalidSpec
from forgeline.labeling.prompt import PromptTemplate
from forgeline.names import check_name
from forgeline.util.specfile import read_spec, spec_error

__all__ = ["LabelSpec", "load_label_spec", "load_prompt"]

_REQUIRED = "name, data.path, data.text and classes"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSpec(_Strict):
    path: Path
    text: str
    id: str | None = None  # None: the row number is the row id


class LLMSpec(_Strict):
    """An OpenAI-compatible endpoint; ``logprobs`` for base models (completions, the
    log-probability of each label), ``json`` for chat models (a JSON schema)."""

    url: str
    model: str
    prompt: Path
    mode: Literal["logprobs", "json"] = "logprobs"
    concurrency: int = Field(4, ge=1, le=256)
    rate_limit: float | None = Field(None, gt=0)  # requests a second, retries included
    max_retries: int = Field(3, ge=0, le=20)
    timeout_s: float = Field(60.0, gt=0)
    calibrate: bool = True  # contextual calibration in logprobs mode (labeling/llm.py)
    name: str = "llm"  # the source's name in the label matrix and the report
    api_key_env: str | None = None  # the environment variable holding the API key


class GoldSpec(_Strict):
    column: str | None = None
    file: Path | None = None  # a review CSV with its label column filled in


class ExistingLabels(_Strict):
    column: str


class LabelModelSpec(_Strict):
    # auto: with gold, the model more accurate on it; else Dawid-Skene with 3+ sources
    model: Literal["auto", "dawid_skene", "majority"] = "auto"
    threshold: float = Field(0.7, ge=0.0, le=1.0)


class OutputSpec(_Strict):
    path: Path | None = None  # None: <data stem>-labelled.parquet beside the data
    column: str = "label"


class ReviewSpec(_Strict):
    size: int = Field(50, ge=1, le=10_000)
    path: Path = Path("review.csv")


class LabelSpec(_Strict):
    name: str
    data: DataSpec
    classes: tuple[str, ...]
    functions: tuple[Path, ...] = ()
    llm: LLMSpec | None = None
    gold: GoldSpec = GoldSpec()
    labels: ExistingLabels | None = None
    label_model: LabelModelSpec = LabelModelSpec()
    output: OutputSpec = OutputSpec()
    review: ReviewSpec = ReviewSpec()
    seed: int = 0

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        try:
            return check_name(value, "name")
        except ForgelineError as e:
            raise ValueError(e.message) from None

    @field_validator("classes")
    @classmethod
    def _classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        classes = tuple(str(c) for c in value)
        if len(classes) < 2:
            raise ValueError(f"give at least two classes, got {list(classes)}")
        if len(set(classes)) != len(classes):
            raise ValueError(f"the classes {list(classes)} repeat a label")
        if any(not c.strip() or c != c.strip() for c in classes):
            raise ValueError(f"the classes {list(classes)} hold an empty label or one with "
                             "spaces around it")
        return classes

    @model_validator(mode="after")
    def _columns(self) -> LabelSpec:
        out = self.output.column
        taken = {"data.text": self.data.text, "data.id": self.data.id,
                 "gold.column": self.gold.column,
                 "labels.column": self.labels.column if self.labels else None}
        clash = [k for k, v in taken.items() if v == out]
        if clash:
            raise ValueError(f"output.column {out!r} is also {clash[0]}: name the output "
                             "column something new")
        if out.endswith("_confidence"):
            raise ValueError(f"output.column {out!r} ends in _confidence, which is the "
                             "name of the confidence column it comes with")
        return self

    @property
    def output_path(self) -> Path:
        return self.output.path or self.data.path.with_name(
            f"{self.data.path.name.split('.')[0]}-labelled.parquet")


def _resolve(spec: LabelSpec, base: Path) -> LabelSpec:
    """Every relative path taken from ``base`` (the spec file's folder)."""
    def at(path: Path) -> Path:
        return path if path.is_absolute() else (base / path).resolve()

    update: dict[str, Any] = {
        "data": spec.data.model_copy(update={"path": at(spec.data.path)}),
        "functions": tuple(at(p) for p in spec.functions),
        "gold": spec.gold.model_copy(update={"file": at(spec.gold.file)
                                             if spec.gold.file else None}),
        "output": spec.output.model_copy(update={"path": at(spec.output.path)
                                                 if spec.output.path else None}),
        "review": spec.review.model_copy(update={"path": at(spec.review.path)}),
    }
    if spec.llm is not None:
        update["llm"] = spec.llm.model_copy(update={"prompt": at(spec.llm.prompt)})
    return spec.model_copy(update=update)


def load_label_spec(source: str | Path | dict[str, Any] | LabelSpec,
                    overrides: list[str] | tuple[str, ...] = ()) -> LabelSpec:
    """Read a labelling spec from a YAML file (or a dict), apply ``--set`` overrides,
    validate it; relative paths are taken from the file's folder (or the working one)."""
    if isinstance(source, LabelSpec):
        if not overrides:
            return source
        source = source.model_dump(mode="json")
    raw, lines, base, label = read_spec(source, overrides, _REQUIRED)
    try:
        spec = LabelSpec.model_validate(raw)
    except ValidationError as e:
        raise spec_error(e, label, lines, f"Only {_REQUIRED} are required.") from None
    if not (spec.functions or spec.llm or spec.labels):
        raise InvalidSpec(f"Spec {label} names no labelling source.",
                          hint="Give labelling functions (functions: [lfs.py]), an LLM "
                               "(llm: {url, model, prompt}) or existing labels "
                               "(labels: {column: ...}).")
    spec = _resolve(spec, base)
    if spec.output_path == spec.data.path:
        raise InvalidSpec(f"Spec {label}: output.path is the data file {spec.data.path}.",
                          hint="Write the labelled table to a new file, e.g. "
                               "output.path: labelled.parquet.")
    if not spec.output_path.name.lower().endswith((".parquet", ".pq", ".csv")):
        raise InvalidSpec(f"Spec {label}: output.path {spec.output_path.name} is neither "
                          ".parquet nor .csv.", hint="Name a .parquet (or .csv) file.")
    return spec


def load_prompt(path: Path, classes: tuple[str, ...]) -> PromptTemplate:
    """The prompt file's template; its classes default to the spec's and must match them."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise InvalidSpec(f"Cannot read the prompt file {path}: {e.strerror or e}.",
                          hint="Check llm.prompt (relative to the spec's folder).") from None
    except yaml.YAMLError as e:
        raise InvalidSpec(f"Prompt file {path} is not valid YAML: {e}".replace("\n", " ")
                          ) from None
    if not isinstance(raw, dict):
        raise InvalidSpec(f"Prompt file {path} must be a mapping with an instruction.",
                          hint="instruction: ..., examples: [{text: ..., label: ...}]")
    given = tuple(str(c) for c in raw.get("classes") or classes)
    if set(given) != set(classes):
        raise InvalidSpec(f"Prompt file {path} names the classes {list(given)}, the spec "
                          f"{list(classes)}.", hint="Give the prompt the spec's classes, or "
                                                     "leave them out of the prompt.")
    return PromptTemplate.from_dict({**raw, "classes": list(classes)})
