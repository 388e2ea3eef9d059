"""The training spec's LLM features: ``features.llm`` (the questions) and ``llm`` (where they
are asked). See :mod:`forgeline.packaging.llm_features` for what a question becomes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from forgeline.config import load_settings
from forgeline.errors import InvalidSpec

__all__ = ["LLMExample", "LLMFeatureSpec", "LLMSpec", "check_llm", "check_llm_columns",
           "llm_columns"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


_STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "by", "do", "does", "did", "for", "from", "has",
    "have", "how", "i", "in", "is", "it", "its", "of", "on", "or", "the", "this", "that", "to",
    "was", "what", "which", "who", "will", "with"))


_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


class LLMExample(_Strict):
    """A text and the answer the LLM should give about it (few-shot)."""

    text: str
    answer: str

    @field_validator("answer", mode="before")
    @classmethod
    def _as_text(cls, value: object) -> object:  # YAML reads yes as True, 3 as an int
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value) if isinstance(value, int | float) else value


class LLMFeatureSpec(_Strict):
    """One question an LLM answers about a text column, per row (packaging/llm_features.py):
    ``bool`` (the probability of yes), ``category`` (one of ``categories``: each one's
    probability) or ``number``."""

    column: str
    ask: str = Field(min_length=1)
    type: Literal["bool", "category", "number"] = "bool"
    categories: tuple[str, ...] = ()
    name: str | None = None  # None: llm_<column>_<the question's first words>
    # few-shot examples, {text, answer} each: a small base model needs a few
    examples: tuple[LLMExample, ...] = ()

    @model_validator(mode="after")
    def _categories(self) -> LLMFeatureSpec:
        if self.type == "category":
            if len(set(self.categories)) < 2 or len(set(self.categories)) != len(
                    self.categories):
                raise ValueError("a category question needs at least two distinct "
                                 "categories, e.g. categories: [billing, delivery, other]")
            if any(not c.strip() or c != c.strip() for c in self.categories):
                raise ValueError("categories must be non-empty words without spaces around")
        elif self.categories:
            raise ValueError(f"categories are for type category, not {self.type}")
        allowed = {"bool": ("yes", "no"), "category": self.categories}.get(self.type)
        for example in self.examples:
            if allowed is not None and example.answer not in allowed:
                raise ValueError(f"the example answer {example.answer!r} is not one of "
                                 f"{', '.join(allowed)}")
            if allowed is None and not _NUMBER.fullmatch(example.answer.strip()):
                raise ValueError(f"the example answer {example.answer!r} is not a number")
        return self

    @property
    def feature(self) -> str:
        """The feature's name (in the package, explanations and importances)."""
        if self.name:
            return self.name
        words = [w for w in re.findall(r"[a-z0-9]+", self.ask.lower()) if w not in _STOPWORDS]
        return "_".join(["llm", self.column, *words[:3]])


class LLMSpec(_Strict):
    """Where LLM features are asked: an OpenAI-compatible endpoint (``FORGELINE_LLM_URL``
    overrides ``url``; ``forgeline serve --llm-url`` overrides both when serving)."""

    url: str | None = None
    model: str | None = None
    mode: Literal["logprobs", "json"] = "logprobs"  # logprobs: base models (completions)
    timeout_s: float = Field(10.0, gt=0)  # one request; in serving, one prediction's wait
    concurrency: int = Field(4, ge=1)
    requests_per_s: float | None = Field(None, gt=0)
    # the environment variable holding the endpoint's API key (the key is never stored)
    api_key_env: str | None = None

    @property
    def resolved_url(self) -> str | None:
        """Where training asks and what the package records: ``url``, else
        ``FORGELINE_LLM_URL``."""
        return self.url or load_settings().llm_url


def check_llm(features: Sequence[LLMFeatureSpec], endpoint: LLMSpec, label: str) -> None:
    """LLM features need a model name and somewhere to ask it."""
    if not features:
        return
    if not endpoint.model:
        raise InvalidSpec(f"Invalid spec {label}: features.llm needs llm.model, the model "
                          "name the LLM endpoint serves.",
                          hint="Add llm: {url: http://127.0.0.1:8000/v1, model: NAME}.")
    if not endpoint.resolved_url:
        raise InvalidSpec(f"Invalid spec {label}: features.llm needs llm.url (or the "
                          "environment variable FORGELINE_LLM_URL).",
                          hint="Add llm: {url: http://127.0.0.1:8000/v1, model: NAME}.")


def llm_columns(features: Sequence[LLMFeatureSpec], endpoint: LLMSpec
                ) -> tuple[tuple[str, dict[str, Any]], ...]:
    """Per text column with questions, the keyword arguments of its
    :class:`~forgeline.packaging.llm_features.LLMFeatures` step (``ModelPlan.llm``)."""
    columns: dict[str, list[dict[str, Any]]] = {}
    for q in features:
        columns.setdefault(q.column, []).append(
            {"name": q.feature, "ask": q.ask, "type": q.type, "categories": list(q.categories),
             "examples": [[e.text, e.answer] for e in q.examples]})
    return tuple((column, {"questions": questions, "model": endpoint.model or "",
                           "url": endpoint.resolved_url or "",
                           "mode": endpoint.mode, "timeout_s": endpoint.timeout_s,
                           "concurrency": endpoint.concurrency,
                           "requests_per_s": endpoint.requests_per_s,
                           "api_key_env": endpoint.api_key_env})
                 for column, questions in columns.items())


def check_llm_columns(features: Sequence[LLMFeatureSpec], columns: Sequence[str], *,
                      target: str, drop: Sequence[str], source: str) -> None:
    """Each question's column must be a column of the data (not the target, not dropped)."""
    usable = [c for c in columns if c != target and c not in drop]
    for i, q in enumerate(features):
        if q.column not in usable:
            why = ("is the target" if q.column == target else "is dropped (data.drop)"
                   if q.column in drop else f"is not a column of {source}")
            raise InvalidSpec(f"Invalid spec: features.llm[{i}].column {q.column!r} {why}.",
                              hint="Name a text column: " + ", ".join(usable[:20]) + ".")
