"""Synthetic input rows that exercise every column of a signature: what a faster path
(ONNX Runtime for the whole pipeline or for its preprocessing) is compared with the native
pipeline on before it serves (:func:`sample_frame`).

A module of its own so that :mod:`forgeline.serving.runtime` (which picks the runtime) and
:mod:`forgeline.serving.onnx_features` (which the runtime may use) both read it without
importing each other.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forgeline.packaging.package import pipeline_parts
from forgeline.packaging.signature import Signature

__all__ = ["SAMPLE_ROWS", "sample_frame"]

SAMPLE_ROWS = 256
_HOUR_NS = 3_600_000_000_000


def sample_frame(signature: Signature, rows: int = SAMPLE_ROWS, seed: int = 0, *,
                 model: Any = None, profile: dict | None = None) -> pd.DataFrame:
    """A validated frame of ``rows`` synthetic inputs that exercise every column.

    Numbers: the training range's ends, the profile's quantiles (values trees split
    near), and uniform draws in between, as integers for integer columns; categories: the
    ones seen in training and one unseen value; dates: the profile's range; text: words of
    the model's vocabulary. Nullable columns get missing values too.
    """
    rng = np.random.default_rng(seed)
    stats = (profile or {}).get("columns", {}) if isinstance(profile, dict) else {}
    words = _vocabulary(model) or ["alpha", "beta", "gamma", "delta"]
    data = {}
    for column in signature.inputs:
        info = stats.get(column.name) or {}
        if column.kind == "numeric":
            values: Any = _numbers(column, info, rows, rng)
        elif column.kind in ("categorical", "boolean"):
            values = _categories(column, rows, rng, signature.unseen_categories == "allow")
        elif column.kind == "datetime":
            values = _datetimes(info, rows, rng)
        else:
            values = np.array([" ".join(rng.choice(words, rng.integers(1, 8)))
                               for _ in range(rows)], dtype=object)
        if column.nullable or column.kind in ("categorical", "datetime", "text"):
            values = pd.Series(values, dtype=None if column.kind == "numeric" else object)
            values[rng.random(rows) < 0.08] = None
        data[column.name] = values
    return signature.validate(pd.DataFrame(data))


def _numbers(column: Any, info: dict, rows: int, rng: np.random.Generator) -> np.ndarray:
    low = column.minimum if column.minimum is not None else -1.0
    high = column.maximum if column.maximum is not None else 1.0
    anchors = [low, high, *[q for q in (info.get("quantiles") or {}).values()
                            if q is not None]]
    values = rng.uniform(low, high, rows)
    pick = rng.random(rows) < 0.4
    values[pick] = rng.choice(np.asarray(anchors, dtype=np.float64), int(pick.sum()))
    values[:2] = low, high
    return np.round(values) if "int" in column.dtype else values


def _categories(column: Any, rows: int, rng: np.random.Generator,
                unseen: bool) -> np.ndarray:
    seen = list(column.categories or ("a", "b"))
    values = np.asarray(rng.choice([*seen, "__unseen__"] if unseen and column.kind ==
                                   "categorical" else seen, rows), dtype=object)
    if column.dtype == "bool" or column.kind == "boolean":
        return np.asarray([v == "True" if v in ("True", "False") else v for v in values],
                          dtype=object)
    if "int" in column.dtype or "float" in column.dtype:  # numeric codes used as categories
        return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy()
    return values


def _datetimes(info: dict, rows: int, rng: np.random.Generator) -> np.ndarray:
    try:
        low = pd.Timestamp(info["min"]).value
        high = pd.Timestamp(info["max"]).value
    except (KeyError, TypeError, ValueError):
        low, high = pd.Timestamp("2020-01-01").value, pd.Timestamp("2026-01-01").value
    stamps = rng.integers(low, max(high, low + 1), rows, dtype=np.int64)
    whole = rng.random(rows) < 0.3  # on the hour: where one day part ends
    stamps[whole] = stamps[whole] // _HOUR_NS * _HOUR_NS
    return np.asarray(pd.to_datetime(stamps, utc=True).astype(str), dtype=object)


def _vocabulary(model: Any) -> list[str]:
    """Single words known to the model's text vectorisers (empty without any)."""
    found: list[str] = []
    for part in pipeline_parts(model):
        vocabulary = getattr(part, "vocabulary_", None)
        if isinstance(vocabulary, dict):
            found += [w for w in vocabulary if isinstance(w, str) and " " not in w][:500]
    return found
