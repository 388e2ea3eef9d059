"""The LLM labeller: one column of the label matrix from any OpenAI-compatible endpoint.

:class:`LLMLabeller` asks the model about each row (a few-shot completion scored by the
log-probability of each label, or a chat answer constrained by a JSON schema), through
:class:`~forgeline.llm.client.LLMClient` (rate limit, retries) and
:class:`~forgeline.llm.cache.AnswerCache` (every answer kept by the sha256 of
model, prompt and input the moment it arrives). Rows run concurrently on a thread pool.

What a run promises:

- Rows with the same text are asked once.
- Every row ends labelled, or abstaining (``-1``) with a :class:`RowError` saying why:
  ``unreachable`` (the endpoint failed after its retries), ``http`` (it refused the
  request), ``not_a_label`` (its answer names none of the classes), ``no_text`` (a
  missing or blank text: not asked). One bad row never stops the others; the counts are
  in :class:`LLMStats`. A cache that cannot be written stops the run (``StoreError``).
- Before the first request the endpoint is checked (``/v1/models``): an unreachable one or
  one that does not serve the model raises at once, with nothing asked. A run whose rows
  are all in the cache needs no endpoint at all.

Scoring in ``logprobs`` mode: the model's top first tokens after ``Label:`` are mapped to
the class each is a prefix of (case and spaces ignored; a token that fits several classes
counts for none); a class's log-probability is the log-sum-exp of its tokens'. A class no
top token fits gets the smallest top log-probability (the most it can have), then the
scores are normalised into probabilities. A small base model prefers some labels whatever
the row says (the last example's, the most frequent one's): with ``calibrate`` (the
default) the content-free inputs ``N/A``, ``""`` and ``[MASK]`` are asked once too (and
cached), and each row's probabilities are divided by their mean, then renormalised
(contextual calibration, Zhao et al. 2021, "Calibrate Before Use"). The row's label is the
most probable class. ``stats.questions`` and ``cache_hits`` count rows' texts only; the
calibration's requests and tokens are in ``requests`` and the token counts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forgeline.errors import NotFound, UpstreamError
from forgeline.labeling.prompt import PromptTemplate
from forgeline.llm.answers import class_probabilities, json_choice
from forgeline.llm.cache import AnswerCache, CachedAnswer, cache_key
from forgeline.llm.client import EndpointDown, LLMClient, LLMConfig

__all__ = ["ABSTAIN", "LLMClient", "LLMConfig", "LLMLabeller", "LLMLabels", "LLMStats",
           "RowError", "score_answer"]

ABSTAIN = -1
CONTENT_FREE = ("N/A", "", "[MASK]")  # Zhao et al. 2021, "Calibrate Before Use"
Progress = Callable[[int, int], None]  # (rows done, rows in all)


@dataclass(frozen=True, slots=True)
class RowError:
    """Why a row has no LLM label: ``kind`` is ``unreachable``, ``http``, ``not_a_label``
    or ``no_text`` (a missing or blank text is not asked about)."""

    row: int
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class LLMStats:
    """What a labelling run cost: rows, distinct texts (``questions``: each asked once),
    HTTP requests sent (retries included), questions answered from the cache, tokens of
    the answers that came live, wall time, and the rows left unlabelled by kind."""

    rows: int = 0
    questions: int = 0
    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    unreachable: int = 0
    http_errors: int = 0
    not_a_label: int = 0
    no_text: int = 0

    @property
    def failed(self) -> int:
        """Rows without an LLM label, whatever the reason."""
        return self.unreachable + self.http_errors + self.not_a_label + self.no_text

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else math.inf


@dataclass(frozen=True)
class LLMLabels:
    """The LLM's column of the label matrix.

    Attributes:
        name: the source's name (a column of the label matrix).
        version: ``<model>@<prompt digest[:12]>/<mode>``: a new model or prompt is a new
            source version.
        classes: the class names; ``labels`` holds indices into them.
        labels: one class index per row, ``-1`` where the LLM abstains or failed.
        proba: ``(rows, classes)`` probabilities; NaN on rows without an answer; one-hot in
            ``json`` mode (a chat answer carries no probabilities).
        errors: one entry per unlabelled row.
        stats: the run's counts, tokens and time.
        calibration: the mean class probabilities of the content-free inputs, which each
            row's probabilities were divided by (None: not calibrated).
    """

    name: str
    version: str
    classes: tuple[str, ...]
    labels: np.ndarray
    proba: np.ndarray
    errors: tuple[RowError, ...] = ()
    stats: LLMStats = field(default_factory=LLMStats)
    calibration: tuple[float, ...] | None = None

    @property
    def confidence(self) -> np.ndarray:
        """The probability of each row's label (NaN where there is none)."""
        return np.where(self.labels >= 0, np.nanmax(
            np.where(np.isnan(self.proba), -np.inf, self.proba), axis=1), np.nan)


def score_answer(answer: Any, template: PromptTemplate, mode: str) -> np.ndarray | str:
    """The class probabilities an answer gives, or a message saying why it names no class."""
    if mode == "json":
        return json_choice(answer, template.classes)
    return class_probabilities(answer, template.classes)


def _text(value: Any) -> str:
    """A row's text; "" for a missing one (None, NaN) or a blank one."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value) if str(value).strip() else ""


class LLMLabeller:
    """Labels texts with an LLM; one instance per (endpoint, model, prompt).

    Args:
        config: the endpoint, model, mode, concurrency, rate limit and retries.
        template: the instruction, classes and few-shot examples.
        cache: where answers are kept (e.g. ``AnswerCache.in_folder(
            settings.resolved_cache_dir)``); None keeps them for this process only.
        name: the source's name in the label matrix.
        calibrate: in ``logprobs`` mode, divide each row's class probabilities by those of
            content-free inputs (contextual calibration); ignored in ``json`` mode.
    """

    def __init__(self, config: LLMConfig, template: PromptTemplate, *,
                 cache: AnswerCache | None = None, name: str = "llm",
                 calibrate: bool = True) -> None:
        self.config = config
        self.calibrates = calibrate and config.mode == "logprobs"
        self.template = template
        self.name = name
        self.cache = cache if cache is not None else AnswerCache(":memory:")
        self.client = LLMClient(config)
        self._checked = False

    @property
    def version(self) -> str:
        mode = self.config.mode + ("+calibrated" if self.calibrates else "")
        return f"{self.config.model}@{self.template.digest[:12]}/{mode}"

    def _request(self) -> dict[str, Any]:
        if self.config.mode == "json":
            return {"mode": "json", "format": self.config.json_format}
        return {"mode": "logprobs", "top": self.config.top_logprobs}

    def _ask(self, key: str, text: str) -> CachedAnswer:
        if self.config.mode == "json":
            answer, usage = self.client.chat_json(self.template.chat_messages(text),
                                                  self.template.json_schema())
        else:
            answer, usage = self.client.first_token_logprobs(
                self.template.completion_prompt(text))
        cached = CachedAnswer(answer, usage["prompt_tokens"], usage["completion_tokens"])
        self.cache.put(key, self.config.model, cached)
        return cached

    def label(self, texts: Sequence[str], *, progress: Progress | None = None) -> LLMLabels:
        """One label per text (``-1`` where none), with probabilities, errors and stats.

        Raises:
            UpstreamError: the endpoint cannot be reached (checked before the first request).
            NotFound: the endpoint does not serve the model.
        """
        start = time.perf_counter()
        self.client.revive()
        requests_before = self.client.requests
        texts = [_text(t) for t in texts]
        request = self._request()
        keys = [cache_key(self.config.model, self.template.digest, t, request) if t else ""
                for t in texts]
        unique = {k: t for k, t in zip(keys, texts, strict=True) if k}  # each asked once
        calibration = {cache_key(self.config.model, self.template.digest, t, request): t
                       for t in (CONTENT_FREE if self.calibrates else ())}
        unique.update(calibration)
        answers: dict[str, CachedAnswer] = {}
        failures: dict[str, tuple[str, str]] = {"": ("no_text", "the row has no text")}
        for key in unique:
            hit = self.cache.get(key)
            if hit is not None:
                answers[key] = hit
        hits = sum(1 for k in answers if k not in calibration)
        missing = [k for k in unique if k not in answers]
        if missing and not self._checked:
            self.client.check()  # raises on an unreachable endpoint or an unknown model
            self._checked = True
        done = hits
        if progress:
            progress(done, len(unique))
        with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool:
            futures = {pool.submit(self._ask, k, unique[k]): k for k in missing}
            for future in as_completed(futures):
                key = futures[future]
                try:
                    answers[key] = future.result()
                except NotFound:
                    for f in futures:
                        f.cancel()
                    raise
                except EndpointDown as e:
                    failures[key] = ("unreachable", e.message)
                except UpstreamError as e:
                    failures[key] = ("http", e.message)
                done += 1
                if progress:
                    progress(done, len(unique))
        return self._result(texts, keys, answers, failures, set(missing), hits,
                            list(calibration), self.client.requests - requests_before,
                            time.perf_counter() - start)

    def _result(self, texts: list[str], keys: list[str], answers: dict[str, CachedAnswer],
                failures: dict[str, tuple[str, str]], asked: set[str], hits: int,
                calibration_keys: list[str], requests: int, seconds: float) -> LLMLabels:
        k = len(self.template.classes)
        labels = np.full(len(texts), ABSTAIN, dtype=np.int64)
        proba = np.full((len(texts), k), np.nan)
        errors: list[RowError] = []
        scored: dict[str, np.ndarray | str] = {
            key: score_answer(a.answer, self.template, self.config.mode)
            for key, a in answers.items()}
        content_free = [p for key in calibration_keys
                        if isinstance(p := scored.get(key, ""), np.ndarray)]
        prior = np.mean(content_free, axis=0) if content_free else None
        if prior is not None:  # p(class | row) / p(class | no content), renormalised
            scored = {key: p if isinstance(p, str) else p / prior / (p / prior).sum()
                      for key, p in scored.items()}
        for row, key in enumerate(keys):
            if key in failures:
                errors.append(RowError(row, *failures[key]))
                continue
            score = scored[key]
            if isinstance(score, str):
                errors.append(RowError(row, "not_a_label", score))
                continue
            proba[row] = score
            labels[row] = int(np.argmax(score))
        live = [a for key, a in answers.items() if key in asked]
        kinds = [e.kind for e in errors]
        stats = LLMStats(
            rows=len(texts), questions=len(set(keys) - {""}), requests=requests, cache_hits=hits,
            prompt_tokens=sum(a.prompt_tokens for a in live),
            completion_tokens=sum(a.completion_tokens for a in live), seconds=seconds,
            unreachable=kinds.count("unreachable"), http_errors=kinds.count("http"),
            not_a_label=kinds.count("not_a_label"), no_text=kinds.count("no_text"))
        return LLMLabels(self.name, self.version, self.template.classes, labels, proba,
                         tuple(errors), stats,
                         None if prior is None else tuple(float(x) for x in prior))

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> LLMLabeller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
