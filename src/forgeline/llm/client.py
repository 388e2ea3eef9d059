"""HTTP to an OpenAI-compatible endpoint: models, completions with log-probabilities, chat
with a JSON schema; a rate limit and retries with backoff.

Invariants:

- One ``httpx.Client`` (thread-safe, pooled) serves every worker thread of a labelling run.
- Every HTTP attempt, first or retried, waits for the rate limiter: the limit holds for
  what reaches the endpoint, retries included.
- Retried: a transport failure (refused, reset, timed out), 429 and 5xx, with exponential
  backoff and jitter (tenacity), waiting at least a ``Retry-After`` the endpoint sends.
  Not retried: other 4xx (a bad request stays bad).
- An endpoint that stays unreachable after the retries is marked down: later requests of
  the run fail at once instead of each waiting out its own backoff (until :meth:`revive`;
  the labeller revives it at the start of each run). When the last attempt timed out the
  error is :class:`EndpointTimeout` (an ``UpstreamTimeout``: HTTP 504 where a server
  answers it), otherwise :class:`EndpointDown` (``UpstreamError``: 502).
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt

from forgeline.errors import InvalidInput, InvalidSpec, NotFound, UpstreamError, UpstreamTimeout

__all__ = ["EndpointDown", "EndpointTimeout", "LLMClient", "LLMConfig", "RateLimiter",
           "api_key_from_env"]

Mode = Literal["logprobs", "json"]
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class LLMConfig:
    """Where and how to ask.

    Attributes:
        base_url: the endpoint, e.g. ``http://127.0.0.1:8000/v1`` (``/v1`` is added to a
            URL without a path).
        model: the model name the endpoint serves (checked against ``/v1/models``).
        mode: ``logprobs`` (completions; the log-probability of each label's first token,
            for base models) or ``json`` (chat with a JSON schema, for instruction models).
        json_format: how ``json`` mode sends its schema: ``json_schema`` (OpenAI, vLLM,
            llama.cpp's server), ``json_object`` (``{"type": "json_object", "schema":
            ...}``: llama-cpp-python's server), or ``auto``: ``json_schema`` until the
            endpoint refuses it naming ``response_format``, then ``json_object``.
        concurrency: requests in flight at once.
        requests_per_s: at most this many HTTP requests a second (None: no limit).
        max_retries: retries of one request after its first attempt.
        backoff_s: the first retry's wait; each next one doubles (plus jitter).
        timeout_s: one HTTP request's limit.
        top_logprobs: how many top first tokens ``logprobs`` mode asks for (OpenAI allows 5).
        api_key: sent as a bearer token when set.
    """

    base_url: str
    model: str
    mode: Mode = "logprobs"
    json_format: Literal["auto", "json_schema", "json_object"] = "auto"
    concurrency: int = 4
    requests_per_s: float | None = None
    max_retries: int = 3
    backoff_s: float = 0.5
    timeout_s: float = 60.0
    top_logprobs: int = 5
    api_key: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInput(f"The LLM URL {self.base_url!r} is not an http(s) URL.",
                               hint="Give one such as http://127.0.0.1:8000/v1.")
        url = self.base_url.rstrip("/")
        object.__setattr__(self, "base_url", url if parts.path.strip("/") else url + "/v1")
        if self.mode not in ("logprobs", "json"):
            raise InvalidInput(f"Unknown LLM mode {self.mode!r}.",
                               hint="Use 'logprobs' (base models) or 'json' (chat models).")
        if self.concurrency < 1 or self.max_retries < 0 or self.top_logprobs < 1:
            raise InvalidInput("LLM concurrency and top_logprobs must be at least 1, "
                               "max_retries at least 0.")
        if self.requests_per_s is not None and self.requests_per_s <= 0:
            raise InvalidInput(f"requests_per_s must be positive, got {self.requests_per_s}.",
                               hint="Leave it unset for no limit.")


class RateLimiter:
    """At most ``rate`` acquisitions a second, spaced evenly, across threads."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if not self._interval:
            return
        with self._lock:  # book the next free slot, then sleep outside the lock
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            time.sleep(slot - now)


class EndpointDown(UpstreamError):
    """The endpoint stayed unreachable after the retries (later rows fail at once)."""

    code = "UPSTREAM_ERROR"


class EndpointTimeout(EndpointDown, UpstreamTimeout):
    """The endpoint's last attempt timed out (an EndpointDown, answered as a timeout)."""

    code = "UPSTREAM_TIMEOUT"


class _Retryable(Exception):
    """An HTTP status worth another try; ``retry_after`` from the header, in seconds."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        try:
            self.retry_after = float(response.headers.get("retry-after", 0))
        except ValueError:
            self.retry_after = 0.0
        super().__init__(f"HTTP {response.status_code}")


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        detail = body.get("error", body.get("detail", body)) if isinstance(body, dict) else body
        if isinstance(detail, dict):
            detail = detail.get("message", detail)
    except ValueError:
        detail = response.text
    return f"HTTP {response.status_code}: {str(detail)[:300]}"


def api_key_from_env(name: str | None) -> str | None:
    """The API key in the environment variable ``name`` (None: no key). A spec names the
    variable, never the key: specs are logged with their runs and kept in packages.

    Raises:
        InvalidSpec: ``name`` is given and the variable is not set or empty.
    """
    if not name:
        return None
    key = os.environ.get(name, "").strip()
    if not key:
        raise InvalidSpec(f"llm.api_key_env names the environment variable {name}, which is "
                          "not set.", hint=f"Export {name} with the endpoint's API key, or "
                                           "leave api_key_env out for an endpoint without one.")
    return key


class LLMClient:
    """The HTTP side of the LLM labeller; thread-safe. Close it (or use ``with``)."""

    def __init__(self, config: LLMConfig, *, transport: httpx.BaseTransport | None = None
                 ) -> None:
        self.config = config
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._http = httpx.Client(
            base_url=config.base_url, headers=headers, transport=transport,
            timeout=httpx.Timeout(config.timeout_s, connect=min(config.timeout_s, 10.0)),
            limits=httpx.Limits(max_connections=config.concurrency + 2))
        self._limiter = RateLimiter(config.requests_per_s)
        self._down: str | None = None
        self._json_format = config.json_format
        self.requests = 0  # HTTP attempts sent, retries included
        self._count_lock = threading.Lock()

    def revive(self) -> None:
        """Forget that the endpoint was down (a new run tries it again)."""
        self._down = None

    # -- endpoint checks ---------------------------------------------------------------
    def models(self) -> list[str]:
        """The model names ``/models`` lists."""
        body = self._send("GET", "/models", None)
        return [str(m.get("id")) for m in body.get("data", []) if isinstance(m, dict)]

    def check(self) -> None:
        """Raise a clear error unless the endpoint answers and serves ``config.model``."""
        served = self.models()
        if self.config.model not in served:
            raise NotFound(
                f"The LLM endpoint {self.config.base_url} does not serve the model "
                f"{self.config.model!r}; it serves {served or 'no model'}.",
                hint="Give one of those names as the model, or start the server with the "
                     "model you meant (llama_cpp.server: --model_alias NAME).")

    # -- the two kinds of question -----------------------------------------------------
    def first_token_logprobs(self, prompt: str) -> tuple[dict[str, float], dict[str, int]]:
        """The top log-probabilities of the token that follows ``prompt``, and the usage."""
        body = self._send("POST", "/completions", {
            "model": self.config.model, "prompt": prompt, "max_tokens": 1,
            "temperature": 0.0, "logprobs": self.config.top_logprobs})
        try:
            top = body["choices"][0]["logprobs"]["top_logprobs"][0]
            top = {str(k): float(v) for k, v in top.items()}
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise UpstreamError(
                f"The LLM endpoint {self.config.base_url} answered a completion without "
                "top log-probabilities.",
                hint="Use an endpoint whose completions support `logprobs`, or mode 'json' "
                     "for a chat model.") from None
        return top, _usage(body)

    def complete(self, prompt: str, max_tokens: int = 8, stop: tuple[str, ...] = ("\n",)
                 ) -> tuple[str, dict[str, int]]:
        """The text of a greedy completion of ``prompt`` (at most ``max_tokens``, ending
        before ``stop``) and the usage."""
        body = self._send("POST", "/completions", {
            "model": self.config.model, "prompt": prompt, "max_tokens": max_tokens,
            "temperature": 0.0, "stop": list(stop)})
        try:
            text = body["choices"][0]["text"]
        except (KeyError, IndexError, TypeError):
            raise UpstreamError(f"The LLM endpoint {self.config.base_url} answered a "
                                "completion without its text.") from None
        return str(text or ""), _usage(body)

    def chat_json(self, messages: list[dict[str, str]], schema: dict[str, Any],
                  ) -> tuple[str, dict[str, int]]:
        """The text of a chat answer constrained to ``schema``, and the usage."""
        fmt = self._json_format
        payload = {"model": self.config.model, "messages": messages, "temperature": 0.0,
                   "max_tokens": 64, "response_format": _response_format(fmt, schema)}
        try:
            body = self._send("POST", "/chat/completions", payload)
            if fmt == "auto":
                self._json_format = "json_schema"
        except UpstreamError as e:
            if fmt != "auto" or "response_format" not in e.message:
                raise
            self._json_format = "json_object"  # llama-cpp-python's server: no json_schema
            payload["response_format"] = _response_format("json_object", schema)
            body = self._send("POST", "/chat/completions", payload)
        try:
            content = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise UpstreamError(f"The LLM endpoint {self.config.base_url} answered a chat "
                                "completion without a message.") from None
        return str(content or ""), _usage(body)

    # -- transport ---------------------------------------------------------------------
    def _send(self, method: str, path: str, payload: dict[str, Any] | None) -> dict[str, Any]:
        if self._down:
            raise EndpointDown(self._down)
        cfg = self.config
        attempts = cfg.max_retries + 1
        retrying = Retrying(stop=stop_after_attempt(attempts), wait=self._wait,
                            retry=retry_if_exception(_retryable), reraise=True)
        try:
            response = retrying(self._attempt, method, path, payload)
        except _Retryable as e:
            raise UpstreamError(
                f"The LLM endpoint {cfg.base_url} failed {attempts} times: "
                f"{_error_text(e.response)}.",
                hint="Check the server's log; lower the concurrency or the rate.") from None
        except httpx.TimeoutException as e:
            self._down = (f"The LLM endpoint {cfg.base_url} did not answer within "
                          f"{cfg.timeout_s:g} s ({type(e).__name__}, {attempts} attempts).")
            raise EndpointTimeout(self._down, hint="Check the server's load, or allow more "
                                  "time (the LLM timeout).") from None
        except httpx.TransportError as e:
            self._down = (f"Cannot reach the LLM endpoint {cfg.base_url} "
                          f"({type(e).__name__}: {e or 'no answer'}).")
            raise EndpointDown(self._down, hint="Start the server (e.g. `python -m "
                               "llama_cpp.server --model FILE`) or fix the URL.") from None
        if response.status_code == 404 and "model" in response.text.lower():
            raise NotFound(f"The LLM endpoint {cfg.base_url} does not serve the model "
                           f"{cfg.model!r} ({_error_text(response)}).",
                           hint="Give a model name its /v1/models lists.")
        if response.status_code in (401, 403):
            raise UpstreamError(f"The LLM endpoint {cfg.base_url} refused {path}: "
                                f"{_error_text(response)}.",
                                hint="Give its API key: name the environment variable that "
                                     "holds it in llm.api_key_env (e.g. OPENAI_API_KEY).")
        if response.status_code >= 400:
            raise UpstreamError(f"The LLM endpoint {cfg.base_url} refused {path}: "
                                f"{_error_text(response)}.",
                                hint="Check the model and mode suit this endpoint.")
        try:
            body = response.json()
        except ValueError:
            raise UpstreamError(f"The LLM endpoint {cfg.base_url} answered {path} with "
                                "something other than JSON.") from None
        return body if isinstance(body, dict) else {}

    def _attempt(self, method: str, path: str, payload: dict[str, Any] | None
                 ) -> httpx.Response:
        self._limiter.acquire()
        with self._count_lock:
            self.requests += 1
        response = self._http.request(method, path, json=payload)
        if response.status_code in _RETRY_STATUS:
            raise _Retryable(response)
        return response

    def _wait(self, state: Any) -> float:
        exp = self.config.backoff_s * 2 ** (state.attempt_number - 1)
        exc = state.outcome.exception() if state.outcome else None
        floor = exc.retry_after if isinstance(exc, _Retryable) else 0.0
        return min(max(exp * (0.5 + random.random()), floor), 60.0)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _response_format(fmt: str, schema: dict[str, Any]) -> dict[str, Any]:
    if fmt == "json_object":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": "label", "schema": schema,
                                                   "strict": True}}


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, _Retryable | httpx.TransportError)


def _usage(body: dict[str, Any]) -> dict[str, int]:
    usage = body.get("usage") or {}
    return {"prompt_tokens": int(usage.get("prompt_tokens") or 0),
            "completion_tokens": int(usage.get("completion_tokens") or 0)}
