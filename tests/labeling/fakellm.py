"""A small OpenAI-compatible server on loopback with deterministic answers.

It speaks what the LLM labeller uses (``/v1/models``, ``/v1/completions`` with
``logprobs``, ``/v1/chat/completions`` with ``response_format``) for a spam/ham task:
a row that mentions ``free``, ``win``, ``prize`` or ``cash`` is spam, any other is ham.
Words in a row steer it to misbehave: ``GIBBERISH`` (an answer that names no label),
``NOTJSON`` (a chat answer that is not JSON), ``FLAKY`` (503 the first time that row is
asked), ``FAIL500`` (500 every time). It counts the calls per row and the requests in
flight, and keeps when each request arrived.

It answers LLM features' questions too (a prompt with a ``Question:`` line, as
``packaging/llm_features.py`` asks them): yes/no is yes when the row holds one of
``yes_words``; "one of: a, b, c" is the first category the row names (else the last); "a
number" is the first number in the row.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.serving.conftest import LiveServer

MODEL = "tiny-test"
SPAM_WORDS = ("free", "win", "prize", "cash")


@dataclass
class FakeLLMState:
    calls: Counter[str] = field(default_factory=Counter)
    arrivals: list[float] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    response_formats: list[Any] = field(default_factory=list)
    delay_s: float = 0.0
    json_object_only: bool = False  # refuse json_schema as llama-cpp-python's server does
    yes_words: tuple[str, ...] = ("refund", "money back")
    down: bool = False  # answer every completion with 503 (an LLM server in trouble)
    # another two-class task: (label for a row with one of `words`, label for any other)
    labels: tuple[str, str] = ("spam", "ham")
    words: tuple[str, ...] = SPAM_WORDS
    api_key: str | None = None  # when set, every route wants `Authorization: Bearer <it>`


def _row_of(prompt: str) -> str:
    """The row a completion prompt asks about: the text of its last ``Text:`` line."""
    rows = re.findall(r"^Text: (.*)$", prompt, flags=re.MULTILINE)
    return rows[-1] if rows else prompt


def _is_spam(row: str, words: tuple[str, ...] = SPAM_WORDS) -> bool:
    return any(w in row.lower() for w in words)


def _feature_answer(state: FakeLLMState, row: str, prompt: str) -> str | None:
    """The answer to an LLM feature's question (None: the prompt asks none)."""
    asked = re.search(r"^Question: .*\n?Answer \((.*)\):?$", prompt, flags=re.MULTILINE)
    kind = asked.group(1) if asked else None
    if kind is None:
        hint = re.search(r'\{"answer": (.*)\}', prompt)
        if hint is None or "Question:" not in prompt:
            return None
        kind = hint.group(1)
    text = row.lower()
    if kind == "yes or no":
        return "yes" if any(w in text for w in state.yes_words) else "no"
    if kind.startswith("one of: "):
        categories = [c.strip() for c in kind.removeprefix("one of: ").split(",")]
        return next((c for c in categories if c.lower() in text), categories[-1])
    number = re.search(r"\d+(?:\.\d+)?", row)
    return number.group(0) if number else "none"


def create_app(state: FakeLLMState) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def authorize(request: Request, call_next: Any) -> Any:
        if state.api_key and request.headers.get("authorization") != f"Bearer {state.api_key}":
            return JSONResponse({"error": {"message": "Incorrect API key provided"}},
                                status_code=401)
        return await call_next(request)

    async def enter(row: str) -> JSONResponse | None:
        state.calls[row] += 1
        state.arrivals.append(time.monotonic())
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            if state.delay_s:
                await asyncio.sleep(state.delay_s)
        finally:
            state.in_flight -= 1
        if "FAIL500" in row or state.down:
            return JSONResponse({"error": {"message": "boom"}}, status_code=500)
        if "FLAKY" in row and state.calls[row] == 1:
            return JSONResponse({"error": {"message": "busy"}}, status_code=503,
                                headers={"Retry-After": "0"})
        return None

    def unknown_model(model: str) -> JSONResponse | None:
        if model == MODEL:
            return None
        return JSONResponse({"error": {"message": f"The model `{model}` does not exist"}},
                            status_code=404)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": MODEL, "object": "model"}]}

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        body = await request.json()
        if (bad := unknown_model(body.get("model"))) is not None:
            return bad
        prompt = body["prompt"]
        row = _row_of(prompt)
        if (error := await enter(row)) is not None:
            return error
        answer = _feature_answer(state, row, prompt)
        if answer is not None and not body.get("logprobs"):  # a number: the text
            text = " banana" if "GIBBERISH" in row else f" {answer}"
            return {"id": "cmpl-1", "object": "text_completion", "model": MODEL,
                    "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": 2}}
        if "GIBBERISH" in row:
            top = {" banana": -0.4, " the": -1.6, "\n": -2.2, " a": -3.0, " I": -3.5}
        elif answer is not None:
            top = {f" {answer}": -0.1, " maybe": -2.5, "\n": -4.0}
        elif _is_spam(row, state.words):
            hit, miss = state.labels
            top = {f" {hit}": -0.2, f" {miss}": -2.1, f" {hit.title()}": -2.6, " the": -4.0,
                   "\n": -5.0}
        else:
            hit, miss = state.labels
            top = {f" {miss}": -0.1, f" {hit}": -2.6, f" {miss.title()}": -3.1, " h": -4.2,
                   "\n": -5.0}
        top = dict(list(top.items())[: int(body.get("logprobs") or 0)])
        token = max(top, key=top.__getitem__) if top else " ham"
        return {"id": "cmpl-1", "object": "text_completion", "model": MODEL,
                "choices": [{"index": 0, "text": token, "finish_reason": "length",
                             "logprobs": {"tokens": [token], "token_logprobs": [top.get(token)],
                                          "top_logprobs": [top], "text_offset": [len(prompt)]}}],
                "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": 1,
                          "total_tokens": len(prompt.split()) + 1}}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
        if (bad := unknown_model(body.get("model"))) is not None:
            return bad
        state.response_formats.append(body.get("response_format"))
        if state.json_object_only and body["response_format"]["type"] != "json_object":
            return JSONResponse({"error": {"message": "1 validation error: ('body', "
                                "'response_format', 'type'): Input should be 'text' or "
                                "'json_object'"}}, status_code=500)
        row = body["messages"][-1]["content"]
        prompt = "\n".join(m["content"] for m in body["messages"])
        row = _row_of(row) if "Question:" in row else row
        if (error := await enter(row)) is not None:
            return error
        answer = _feature_answer(state, row, prompt)
        if answer is not None and "NOTJSON" not in row and "GIBBERISH" not in row:
            value: Any = float(answer) if "number" in prompt and answer != "none" else answer
            content = json.dumps({"answer": value})
        elif "NOTJSON" in row:
            content = "spam, I think"
        elif "GIBBERISH" in row:
            content = json.dumps({"label": "maybe"})
        else:
            hit, miss = state.labels
            content = json.dumps({"label": hit if _is_spam(row, state.words) else miss})
        return {"id": "chat-1", "object": "chat.completion", "model": MODEL,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": sum(len(m["content"].split())
                                               for m in body["messages"]),
                          "completion_tokens": 5, "total_tokens": 0}}

    return app


class FakeLLMServer(LiveServer):
    """The app above under uvicorn on a free loopback port, in a daemon thread; ``url`` ends
    in ``/v1`` as an OpenAI-compatible endpoint's base URL does."""

    def __init__(self) -> None:
        self.fake = FakeLLMState()
        super().__init__(create_app(self.fake))

    def __enter__(self) -> FakeLLMServer:
        super().__enter__()
        self.url += "/v1"
        return self

    def reset(self) -> None:
        """Back to a fresh state: no counts, no delay, no failures, the default task."""
        fresh = FakeLLMState()
        for f in fields(FakeLLMState):
            setattr(self.fake, f.name, getattr(fresh, f.name))
