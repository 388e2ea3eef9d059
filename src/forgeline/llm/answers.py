"""Reading an LLM's answer: which of a fixed set of answers it gives, and how sure it is.

Shared by the LLM labeller (labeling/llm.py: one class per row) and the LLM features
(packaging/llm_features.py: yes/no, one of some categories, or a number per row).

- :func:`class_probabilities`: from a completion's top first tokens and their
  log-probabilities. Each token is mapped to the answer it is a prefix of (case and
  spaces ignored; a token that fits several answers counts for none); an answer's
  log-probability is the log-sum-exp of its tokens'. An answer no top token fits gets the
  smallest top log-probability (the most it can have), then the scores are normalised.
- :func:`json_choice`: from a chat answer constrained by a JSON schema (one-hot).
- :func:`parse_number`: the first number in a completion's text.

Each returns the result, or a message (a ``str``) saying why the answer names none.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["class_probabilities", "json_choice", "label_of", "one_line", "parse_number"]

_SPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:[.,]\d+)*(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")


def one_line(text: str, max_chars: int) -> str:
    """``text`` on one line, at most ``max_chars`` characters (a newline inside a row would
    let it end its own block in a prompt and forge an answer)."""
    flat = _SPACE.sub(" ", str(text)).strip()
    return flat if len(flat) <= max_chars else flat[: max_chars - 1].rstrip() + "…"


def label_of(token: str, classes: Sequence[str]) -> int | None:
    """The class a first answer token stands for: the only class it is a prefix of
    (case and surrounding spaces ignored); None when it matches none or several."""
    piece = token.strip().lower()
    if not piece:
        return None
    hits = [i for i, c in enumerate(classes) if c.lower().startswith(piece)]
    return hits[0] if len(hits) == 1 else None


def class_probabilities(top: Mapping[str, float], classes: Sequence[str]
                        ) -> np.ndarray | str:
    """Each class's probability from the top first tokens (see the module docstring)."""
    per_class: list[list[float]] = [[] for _ in classes]
    for token, logprob in top.items():
        index = label_of(token, classes)
        if index is not None:
            per_class[index].append(logprob)
    if not any(per_class):
        shown = ", ".join(repr(t) for t in sorted(top, key=top.__getitem__, reverse=True)[:5])
        return f"none of the top tokens ({shown}) begins one of {list(classes)}"
    floor = min(top.values())
    scores = np.array([np.logaddexp.reduce(lp) if lp else floor for lp in per_class])
    proba = np.exp(scores - scores.max())
    return proba / proba.sum()


def json_choice(answer: Any, classes: Sequence[str], key: str = "label") -> np.ndarray | str:
    """One-hot over ``classes`` from a chat answer ``{"<key>": <one of classes>}``."""
    try:
        value = json.loads(answer).get(key)
    except (TypeError, ValueError, AttributeError):
        return f"the answer {str(answer)[:80]!r} is not JSON with a {key!r}"
    if value not in classes:
        return f"the answer's {key} {value!r} is not one of {list(classes)}"
    return np.eye(len(classes))[list(classes).index(value)]


def parse_number(text: Any) -> float | str:
    """The first number in ``text`` (``1,200.5`` reads 1200.5), or why there is none."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        found = _NUMBER.search(str(text))
        if found is None:
            return f"the answer {str(text)[:80]!r} holds no number"
        try:
            value = float(found.group(0).replace(",", ""))
        except ValueError:
            return f"the answer {str(text)[:80]!r} holds no readable number"
    if not math.isfinite(value):
        return f"the answer {str(text)[:80]!r} is not a finite number"
    return value
