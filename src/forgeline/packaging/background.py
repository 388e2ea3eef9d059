"""Background rows drawn from a model's training profile, for explanations that need them.

A packaged model keeps statistics of its training data (``profile.json``), not the data.
A linear model's explanation is centred on the mean of its transformed training features,
so a sample is drawn from the profile, column by column and independently: numbers from
their quantile bins (uniform within a bin, clipped to the range seen) and missing at the
share seen; categories at their counts (the top ones the profile keeps); dates uniformly
over their range; texts empty (the profile keeps no words). Independent columns are what
an additive, linear explanation assumes anyway; the base value is the model's output at
the sample's mean, which is close to, not exactly, the training mean.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forgeline.packaging.signature import Signature

__all__ = ["sample_from_profile"]


def sample_from_profile(profile: dict[str, Any], signature: Signature, rows: int = 256,
                        seed: int = 0) -> pd.DataFrame:
    """``rows`` rows of the signature's input columns drawn from ``profile`` (see above)."""
    rng = np.random.default_rng(seed)
    stats = profile.get("columns", {})
    columns = {}
    for column in signature.inputs:
        info = stats.get(column.name, {})
        kind = info.get("kind")
        if kind == "numeric":
            values: Any = _numbers(info, rows, rng)
        elif kind in ("categorical", "boolean") and info.get("categories"):
            # sorted: the same sample whatever order the profile's file keeps them in
            names, seen = zip(*sorted(info["categories"].items()), strict=True)
            counts = np.asarray(seen, dtype=float)
            values = rng.choice(np.asarray(names, dtype=object), rows, p=counts / counts.sum())
        elif kind == "datetime" and info.get("min"):
            low, high = pd.Timestamp(info["min"]), pd.Timestamp(info["max"])
            values = low + (high - low) * rng.random(rows)
        else:
            values = np.full(rows, "" if kind == "text" else None, dtype=object)
        if kind != "numeric" and info.get("missing_share"):
            values = pd.Series(values, dtype=object).mask(rng.random(rows)
                                                          < info["missing_share"])
        columns[column.name] = values
    return signature.validate(pd.DataFrame(columns))


def _numbers(info: dict[str, Any], rows: int, rng: np.random.Generator) -> np.ndarray:
    low, high = info.get("min"), info.get("max")
    if low is None or high is None:
        return np.full(rows, np.nan)
    edges = np.clip(np.asarray(info["bins"]["edges"], dtype=float), low, high)
    counts = np.asarray(info["bins"]["counts"], dtype=float)
    pick = rng.choice(len(counts), rows, p=counts / counts.sum())
    values = edges[pick] + (edges[pick + 1] - edges[pick]) * rng.random(rows)
    values[rng.random(rows) < (info.get("missing_share") or 0.0)] = np.nan
    return values
