"""Labelling functions for the tweets tests (a real user's file would look like this)."""

import re

POSITIVE = {"love", "great", "awesome", "thanks", "thank", "good", "best", "amazing", "happy",
            "excited", "cool", "nice", "fun", "yay", "congrats"}
NEGATIVE = {"hate", "worst", "bad", "delayed", "cancelled", "rude", "never", "lost", "terrible",
            "awful", "fail", "sucks", "stupid", "wait", "hold"}


def words(row):
    return set(re.findall(r"[a-z']+", str(row["text"]).lower()))


def lf_positive_words(row):
    return "positive" if words(row) & POSITIVE else None


def lf_negative_words(row):
    return "negative" if words(row) & NEGATIVE else None


def lf_smiley(row):
    text = row["text"]
    if ":)" in text or ":-)" in text or ":D" in text:
        return "positive"
    if ":(" in text or ":-(" in text:
        return "negative"
    return None


def lf_question(row):
    return "negative" if "?" in row["text"] else None


def lf_url_length(row):
    # Raises on purpose on tweets without a link: counted per row, never stops the run.
    return "positive" if len(row["text"].split("http")[1]) > 1000 else None


def lf_stars(row):
    # Returns a label that is not a class on tweets with a hashtag: counted, kept as abstain.
    return "maybe" if "#" in row["text"] else None
