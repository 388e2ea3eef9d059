"""Labelling functions for the tweets of ``forgeline.examples.tweets`` (negative/positive).

A labelling-function file as ``forgeline label`` reads it: every function named ``lf_*``
takes a row (a dict) and returns a class name or None to abstain. Plain keyword and
emoticon heuristics, each right more often than the base rate, none complete.
"""

from __future__ import annotations

import re

POSITIVE = {"love", "loved", "great", "awesome", "thanks", "thank", "good", "best", "amazing",
            "happy", "excited", "cool", "nice", "fun", "yay", "congrats", "excellent",
            "wonderful", "appreciate", "glad", "fantastic", "perfect"}
NEGATIVE = {"hate", "worst", "bad", "delayed", "delay", "cancelled", "rude", "never", "lost",
            "terrible", "awful", "fail", "sucks", "stupid", "wait", "hold", "worse", "broken",
            "disappointed", "ridiculous", "horrible", "hours", "no", "not", "why"}


def _words(row: dict[str, object]) -> set[str]:
    return set(re.findall(r"[a-z']+", str(row["text"]).lower()))


def lf_positive_words(row: dict[str, object]) -> str | None:
    return "positive" if _words(row) & POSITIVE else None


def lf_negative_words(row: dict[str, object]) -> str | None:
    return "negative" if _words(row) & NEGATIVE else None


def lf_emoticons(row: dict[str, object]) -> str | None:
    text = str(row["text"])
    if any(s in text for s in (":)", ":-)", ":D", "<3", ";)")):
        return "positive"
    if any(s in text for s in (":(", ":-(")):
        return "negative"
    return None


def lf_question(row: dict[str, object]) -> str | None:
    return "negative" if "?" in str(row["text"]) else None


def lf_exclamations(row: dict[str, object]) -> str | None:
    return "positive" if str(row["text"]).count("!") >= 2 else None


def lf_negation_then_positive(row: dict[str, object]) -> str | None:
    text = str(row["text"]).lower()
    return "negative" if re.search(r"\b(not|no|never|n't)\b\W+(\w+\W+)?(good|great|happy)",
                                   text) else None
