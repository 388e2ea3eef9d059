"""A question about a text, asked of an LLM: its prompts and how its answer is read.

A question is a plain mapping, ``{"name", "ask", "type", "categories", "examples"}``
(``type``: ``bool``, ``category`` or ``number``; ``examples``: ``[text, answer]`` pairs),
as LLM features keep it in a model package (packaging/llm_features.py). Asked as a base
model's completion::

    Text: <an example's text>
    Question: <ask>
    Answer (yes or no): yes

    Text: <the row, on one line>
    Question: <ask>
    Answer (yes or no):

or as chat messages with a JSON schema ``{"answer": ...}``. :func:`prompt_digest` covers
everything that shapes the prompt: it is part of every cache key.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from forgeline.llm.answers import class_probabilities, json_choice, one_line, parse_number

__all__ = ["FORMAT", "TYPES", "chat_messages", "completion_prompt", "prompt_digest",
           "read_answer"]

log = logging.getLogger("forgeline.llm")

TYPES = ("bool", "category", "number")
FORMAT = 1  # bump when the prompts below change: digests (and cache keys) follow
_YES_NO = ("yes", "no")
_MAX_CHARS = 1000


def _choices(question: Mapping[str, Any]) -> tuple[str, ...]:
    return _YES_NO if question["type"] == "bool" else tuple(question.get("categories") or ())


def _answer_hint(question: Mapping[str, Any]) -> str:
    if question["type"] == "number":
        return "a number"
    if question["type"] == "bool":
        return "yes or no"
    return "one of: " + ", ".join(_choices(question))


def _block(question: Mapping[str, Any], text: str) -> str:
    return (f"Text: {one_line(text, _MAX_CHARS)}\nQuestion: {question['ask'].strip()}\n"
            f"Answer ({_answer_hint(question)}):")


def completion_prompt(question: Mapping[str, Any], text: str) -> str:
    """The few-shot completion prompt; the answer is what follows it."""
    shots = [f"{_block(question, t)} {answer}" for t, answer in question.get("examples") or ()]
    return "\n\n".join([*shots, _block(question, text)])


def chat_messages(question: Mapping[str, Any], text: str
                  ) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """The chat messages (examples as earlier turns) and the answer's JSON schema."""
    answer: dict[str, Any] = ({"type": "number"} if question["type"] == "number"
                              else {"type": "string", "enum": list(_choices(question))})
    schema = {"type": "object", "properties": {"answer": answer}, "required": ["answer"],
              "additionalProperties": False}
    system = (f"Answer the question about the user's text with JSON: "
              f'{{"answer": {_answer_hint(question)}}}.')
    messages = [{"role": "system", "content": system}]
    for t, answer in [*(question.get("examples") or ()), (text, None)]:
        messages.append({"role": "user", "content": f"Text: {one_line(t, _MAX_CHARS)}\n"
                                                    f"Question: {question['ask'].strip()}"})
        if answer is not None:
            value = float(answer) if question["type"] == "number" else answer
            messages.append({"role": "assistant", "content": json.dumps({"answer": value})})
    return messages, schema


def prompt_digest(question: Mapping[str, Any], mode: str) -> str:
    """sha256 of everything that shapes a question's prompt (part of every cache key)."""
    payload = json.dumps({"format": FORMAT, "ask": question["ask"], "type": question["type"],
                          "categories": list(_choices(question)), "mode": mode,
                          "examples": [list(e) for e in question.get("examples") or ()],
                          "max_chars": _MAX_CHARS}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def read_answer(question: Mapping[str, Any], answer: Any, mode: str) -> np.ndarray | None:
    """An answer's feature values (``bool``: the probability of yes; ``category``: each
    category's; ``number``: the value), or None (logged) when it names no allowed answer."""
    kind = question["type"]
    if kind == "number":
        if mode == "json":
            try:
                answer = json.loads(answer).get("answer")
            except (TypeError, ValueError, AttributeError):
                answer = None
        read: Any = parse_number(answer) if answer is not None else "no answer"
        if isinstance(read, str):
            log.debug("%s: %s", question["name"], read)
            return None
        return np.array([read])
    choices = _choices(question)
    proba = (json_choice(answer, choices, key="answer") if mode == "json"
             else class_probabilities(answer, choices))
    if isinstance(proba, str):
        log.debug("%s: %s", question["name"], proba)
        return None
    return proba[:1] if kind == "bool" else proba
