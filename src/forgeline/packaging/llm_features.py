"""LLM features: an LLM answers a question about a text column per row, and the answers are
features (``features: {llm: [{column: memo, ask: "...", type: bool}]}`` in a spec).

:class:`LLMFeatures` is one step of the fitted pipeline, over one text column, asking every
question about that column. Per question it produces:

- ``bool``: the probability of "yes" (``logprobs`` mode: the log-probabilities of the
  first answer token, read by :func:`forgeline.llm.answers.class_probabilities`), or 1/0
  (``json`` mode: a chat answer constrained by a JSON schema);
- ``category``: one column per category, its probability (or one-hot in ``json`` mode);
- ``number``: the first number of a short greedy completion (or the JSON answer).

The prompts (few-shot ``examples`` first, if any: a small base model answers zero-shot
questions poorly) and how answers are read are in :mod:`forgeline.llm.questions`.

An answer that names none of the allowed answers, and a row without text, become missing
values (the pipeline's imputer fills them, as for any missing number) and are counted in
:func:`llm_stats`. A failing endpoint is an error, not a missing value: ``UpstreamError``
(HTTP 502 in serving) naming the URL and the model, or ``UpstreamTimeout`` (504).

Every answer goes through :class:`~forgeline.llm.cache.AnswerCache` (the SQLite file under
``FORGELINE_CACHE_DIR``), keyed by the model, the question's prompt digest and the text:
cross-validation, the refit, evaluation and batch scoring of the same texts ask once.

The step's state is plain data (question, type, categories, model, mode, URL, timeouts,
prompt digests), so the pipeline round-trips through skops and loading needs no network;
the first prediction connects. Where the LLM is reached: :meth:`LLMFeatures.connect` (the
server's ``--llm-url``), else ``FORGELINE_LLM_URL``, else the URL of the training spec.
With a ``deadline`` (set by ``connect``, as serving does) one ``transform`` waits at most
that long for all its answers; the calls still running go on and their answers are cached.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from forgeline.config import load_settings
from forgeline.errors import NotFound, UpstreamError, UpstreamTimeout
from forgeline.llm.cache import AnswerCache, CachedAnswer, cache_key
from forgeline.llm.client import EndpointTimeout, LLMClient, LLMConfig, api_key_from_env
from forgeline.llm.questions import chat_messages, completion_prompt, prompt_digest, read_answer
from forgeline.packaging.embeddings import as_texts
from forgeline.packaging.package import pipeline_parts

__all__ = ["LLMFeatures", "LLMStats", "llm_stats", "llm_steps", "probe_llm",
           "reset_llm_stats"]


# -- counters (Prometheus and tests read them) -------------------------------------------
@dataclass(slots=True)
class LLMStats:
    """Counts since the process started (or :func:`reset_llm_stats`)."""

    questions: int = 0  # (row, question) pairs with a text
    cache_hits: int = 0
    calls: int = 0  # answers asked of the endpoint
    invalid: int = 0  # answers that named no allowed answer: missing values
    no_text: int = 0  # (row, question) pairs without a text: missing values
    errors: int = 0  # calls that failed (unreachable, refused, timed out)
    seconds: float = 0.0  # time spent waiting for live answers, summed over transforms


_STATS = LLMStats()
_STATS_LOCK = threading.Lock()


def llm_stats() -> LLMStats:
    with _STATS_LOCK:
        return LLMStats(*(getattr(_STATS, f.name) for f in fields(LLMStats)))


def reset_llm_stats() -> None:
    with _STATS_LOCK:
        for f in fields(LLMStats):
            setattr(_STATS, f.name, f.default)


def _count(**deltas: float) -> None:
    with _STATS_LOCK:
        for name, delta in deltas.items():
            setattr(_STATS, name, getattr(_STATS, name) + delta)


# -- per-process clients and caches (never in the pickled state) ----------------------------
_SHARED: dict[tuple[Any, ...], Any] = {}
_CHECKED: set[int] = set()  # clients whose endpoint was seen serving the model
_SHARED_LOCK = threading.Lock()


def _shared(key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    key = (os.getpid(), *key)  # a forked worker opens its own connections
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = make()
        return _SHARED[key]


def _answer_cache() -> AnswerCache:
    folder = load_settings().resolved_cache_dir
    return _shared(("cache", str(folder)), lambda: AnswerCache.in_folder(folder))


# -- the step -------------------------------------------------------------------------------
class LLMFeatures(BaseEstimator, TransformerMixin):
    """One text column -> the LLM's answers to ``questions`` about each row.

    Args:
        questions: ``{"name", "ask", "type", "categories", "examples"}`` mappings (see the
            module's docstring; ``examples``: ``[text, answer]`` pairs).
        model: the model name the endpoint serves.
        url: the endpoint the model was trained with (``connect`` and
            ``FORGELINE_LLM_URL`` override it).
        mode: ``logprobs`` (completions; base models) or ``json`` (chat with a schema).
        timeout_s: one HTTP request's limit; in serving, one transform's.
        concurrency: requests in flight at once.
        requests_per_s: the rate limit (None: none).
        api_key_env: the environment variable that holds the endpoint's API key, read
            where the model predicts (the key itself is never in the package).
    """

    def __init__(self, questions: Sequence[Mapping[str, Any]] = (), model: str = "",
                 url: str = "", mode: str = "logprobs", timeout_s: float = 10.0,
                 concurrency: int = 4, requests_per_s: float | None = None,
                 api_key_env: str | None = None) -> None:
        self.questions = questions
        self.model = model
        self.url = url
        self.mode = mode
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        self.requests_per_s = requests_per_s
        self.api_key_env = api_key_env

    # -- fitting: nothing is learned ------------------------------------------------------
    def fit(self, X: Any, y: object = None) -> LLMFeatures:
        self.questions_ = [{"name": str(q["name"]), "ask": str(q["ask"]), "type": str(q["type"]),
                            "categories": [str(c) for c in q.get("categories") or ()],
                            "examples": [[str(t), str(a)] for t, a in q.get("examples") or ()]}
                           for q in self.questions]
        self.digests_ = [prompt_digest(q, self.mode) for q in self.questions_]
        self.column_ = str(X.columns[0] if hasattr(X, "columns") else getattr(
            X, "name", None) or "text")
        return self

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        names = []
        for q in self.questions_:
            names += ([f"{q['name']}={c}" for c in q["categories"]] if q["type"] == "category"
                      else [q["name"]])
        return np.asarray(names, dtype=object)

    def requirements(self) -> list[str]:
        """The distributions the machine that predicts with this step needs."""
        return ["httpx", "tenacity"]

    # -- where the endpoint is -------------------------------------------------------------
    def connect(self, url: str | None = None, timeout_s: float | None = None, *,
                deadline: bool = True, max_retries: int = 1) -> LLMFeatures:
        """Serve with ``url`` (None: ``FORGELINE_LLM_URL`` or the training URL) and
        ``timeout_s`` (None: the training spec's); with ``deadline`` one ``transform``
        fails with ``UpstreamTimeout`` once ``timeout_s`` has passed."""
        self._url_override = url
        self._timeout_override = timeout_s
        self._deadline = deadline
        self._retries = max_retries
        return self

    @property
    def endpoint(self) -> str:
        """The URL this process reaches the LLM at."""
        return (getattr(self, "_url_override", None) or load_settings().llm_url or self.url)

    @property
    def effective_timeout_s(self) -> float:
        return float(getattr(self, "_timeout_override", None) or self.timeout_s)

    def client(self) -> LLMClient:
        retries = getattr(self, "_retries", 3)
        config = LLMConfig(self.endpoint, self.model, mode="json" if self.mode == "json"
                           else "logprobs", concurrency=self.concurrency,
                           requests_per_s=self.requests_per_s, timeout_s=self.effective_timeout_s,
                           max_retries=retries, backoff_s=0.1 if retries <= 1 else 0.5,
                           api_key=api_key_from_env(getattr(self, "api_key_env", None)))
        return _shared(("client", config), lambda: LLMClient(config))

    def __getstate__(self) -> dict[str, Any]:  # skops and pickle: the fitted state only
        state = super().__getstate__()
        for name in ("_url_override", "_timeout_override", "_deadline", "_retries"):
            state.pop(name, None)
        return state

    # -- asking ----------------------------------------------------------------------------
    def _request(self, question: Mapping[str, Any]) -> dict[str, Any]:
        if self.mode == "json":
            return {"mode": "json"}
        return {"mode": "number" if question["type"] == "number" else "logprobs", "top": 5}

    def _ask(self, client: LLMClient, cache: AnswerCache | None, key: str,
             question: Mapping[str, Any], text: str) -> CachedAnswer:
        if self.mode == "json":
            messages, schema = chat_messages(question, text)
            answer, usage = client.chat_json(messages, schema)
        elif question["type"] == "number":
            answer, usage = client.complete(completion_prompt(question, text))
        else:
            answer, usage = client.first_token_logprobs(
                completion_prompt(question, text))
        cached = CachedAnswer(answer, usage["prompt_tokens"], usage["completion_tokens"])
        if cache is not None:
            cache.put(key, self.model, cached)
        return cached

    def probe(self) -> float:
        """Ask the first question once about a fixed text, bypassing the cache; the seconds
        it took. Raises what ``transform`` raises."""
        client = self.client()
        client.revive()
        start = time.perf_counter()
        self._fail_clearly(lambda: self._ask(client, None, "", self.questions_[0],
                                             "Forgeline start-up probe."))
        return time.perf_counter() - start

    def transform(self, X: Any) -> np.ndarray:
        return self.answer(as_texts(X))

    def answer(self, texts: Sequence[str], on_progress: Callable[[int], None] | None = None
               ) -> np.ndarray:
        """The feature matrix for ``texts`` (``on_progress(n)``: ``n`` more answers in)."""
        cache = _answer_cache()
        jobs: dict[str, tuple[int, str]] = {}  # cache key -> (question, text)
        keys: list[list[str]] = []
        for q, (question, digest) in enumerate(zip(self.questions_, self.digests_, strict=True)):
            request = self._request(question)
            row_keys = [cache_key(self.model, digest, t, request) if t.strip() else ""
                        for t in texts]
            jobs.update({k: (q, t) for k, t in zip(row_keys, texts, strict=True) if k})
            keys.append(row_keys)
        answers = {k: hit for k in jobs if (hit := cache.get(k)) is not None}
        missing = [k for k in jobs if k not in answers]
        _count(questions=sum(1 for row_keys in keys for k in row_keys if k),
               no_text=sum(1 for row_keys in keys for k in row_keys if not k),
               cache_hits=len(answers))
        if on_progress is not None and answers:
            on_progress(len(answers))
        if missing:
            answers.update(self._fail_clearly(lambda: self._live(cache, jobs, missing,
                                                                 on_progress)))
        return self._matrix(keys, answers)

    def _live(self, cache: AnswerCache, jobs: Mapping[str, tuple[int, str]],
              missing: list[str], on_progress: Callable[[int], None] | None
              ) -> dict[str, CachedAnswer]:
        client = self.client()
        client.revive()  # a new request tries an endpoint that was down again
        if id(client) not in _CHECKED:  # once per process: the endpoint serves the model
            client.check()
            _CHECKED.add(id(client))
        limit = self.effective_timeout_s if getattr(self, "_deadline", False) else None
        start = time.perf_counter()
        pool = ThreadPoolExecutor(max_workers=self.concurrency,
                                  thread_name_prefix="forgeline-llm")
        futures: dict[Future[CachedAnswer], str] = {
            pool.submit(self._ask, client, cache, k, self.questions_[jobs[k][0]], jobs[k][1]): k
            for k in missing}
        got: dict[str, CachedAnswer] = {}
        try:
            pending = set(futures)
            while pending:
                left = None if limit is None else limit - (time.perf_counter() - start)
                if left is not None and left <= 0:
                    _count(errors=len(pending))
                    raise UpstreamTimeout(self._where(f"did not answer {len(pending)} of "
                                                      f"{len(futures)} questions within "
                                                      f"{limit:g} s"),
                                          hint="Check the LLM server's load, or allow more "
                                               "time (forgeline serve --llm-timeout).")
                done, pending = wait(pending, timeout=left, return_when=FIRST_EXCEPTION)
                for future in done:
                    error = future.exception()
                    if error is not None:
                        _count(errors=1)
                        raise error
                    got[futures[future]] = future.result()
                if on_progress is not None and done:
                    on_progress(len(done))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            _count(calls=len(got), seconds=time.perf_counter() - start)
        return got

    def _fail_clearly(self, call: Callable[[], Any]) -> Any:
        """``call()``, its endpoint errors restated with the features' URL and model."""
        try:
            return call()
        except UpstreamTimeout as e:
            if isinstance(e, EndpointTimeout):
                raise UpstreamTimeout(self._where(f"timed out: {e.message}"),
                                      hint=e.hint) from None
            raise
        except NotFound as e:  # the endpoint lacks the model: not a missing resource here
            raise UpstreamError(self._where(f"failed: {e.message}"), hint=e.hint) from None
        except UpstreamError as e:
            raise UpstreamError(self._where(f"failed: {e.message}"), hint=e.hint) from None

    def _where(self, what: str) -> str:
        names = ", ".join(q["name"] for q in self.questions_)
        return (f"The LLM {self.model!r} at {self.endpoint} (features {names} of column "
                f"{self.column_}) {what}")

    def _matrix(self, keys: list[list[str]], answers: Mapping[str, CachedAnswer]
                ) -> np.ndarray:
        blocks = []
        invalid = 0
        for question, row_keys in zip(self.questions_, keys, strict=True):
            width = len(question["categories"]) if question["type"] == "category" else 1
            block = np.full((len(row_keys), width), np.nan)
            read: dict[str, np.ndarray | None] = {}
            for row, key in enumerate(row_keys):
                if not key:
                    continue
                if key not in read:
                    read[key] = read_answer(question, answers[key].answer, self.mode)
                value = read[key]
                if value is None:
                    invalid += 1
                else:
                    block[row] = value
            blocks.append(block)
        if invalid:
            _count(invalid=invalid)
        return np.hstack(blocks) if blocks else np.empty((len(keys), 0))


def llm_steps(model: Any) -> list[LLMFeatures]:
    """The LLM feature steps of a fitted pipeline (none: a model without LLM features)."""
    return [part for part in pipeline_parts(model) if isinstance(part, LLMFeatures)]


def probe_llm(steps: Sequence[LLMFeatures]) -> str:
    """One uncached question per step, timed: what a server says at start-up, e.g.
    ``tiny at http://127.0.0.1:8000/v1: 41 ms (llm_memo_refund, llm_memo_topic)``. A
    failing endpoint is reported, not raised: the server starts and its requests get 502
    until the LLM answers."""
    lines = []
    for step in steps:
        names = ", ".join(q["name"] for q in step.questions_)
        try:
            took = f"{step.probe() * 1000:.0f} ms"
        except UpstreamError as e:
            took = f"not answering ({e.message})"
        lines.append(f"{step.model} at {step.endpoint}: {took} ({names})")
    return "; ".join(lines)
