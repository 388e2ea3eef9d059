"""Keyed hashing of personal values: HMAC-SHA256, hex.

The same value under the same key always gives the same token, so a hashed column still
joins (feedback to predictions, a hashed feature to its training value) while the value
itself cannot be read back, nor guessed by hashing candidates without the key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

import pandas as pd

__all__ = ["keyed_hash", "keyed_hash_series"]


def keyed_hash(value: Any, key: bytes) -> str:
    """HMAC-SHA256 of ``str(value)`` (UTF-8) under ``key``, as 64 hex digits.

    A float holding a whole number is hashed as the integer (``4111111111111111.0`` as
    ``4111111111111111``): an integer column arrives as floats when a value is missing, and
    its tokens must not change with that."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()


def keyed_hash_series(values: pd.Series | Iterable[Any], key: bytes) -> pd.Series:
    """:func:`keyed_hash` of every value; a missing value stays missing (None)."""
    series = values if isinstance(values, pd.Series) else pd.Series(list(values),
                                                                    dtype=object)
    present = series.notna()
    out = pd.Series([None] * len(series), index=series.index, dtype=object)
    out[present] = [keyed_hash(v, key) for v in series[present]]
    return out
