"""Multivariate drift: PCA reconstruction error, as NannyML's data reconstruction drift.

The reference section (``profile.json``'s ``"multivariate"``, fitted at training by
:mod:`forgeline.data.pca`) holds a PCA of the standardised, median-imputed numeric
training features and the statistics of its reconstruction error on held-out rows. A
change in how features move together (a broken correlation) raises the error even when
every column's own distribution is unchanged.

A window of ``n`` rows drifts when its mean error leaves ``mean +- sigma * se(n)``, with
``se(n) = max(chunk_std * sqrt(chunk_size / n), row_std / sqrt(n))``: the chunk spread
scaled to the window size, never below what independent rows would give.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forgeline.monitoring.windows import Windows

__all__ = ["MAX_ERROR_ROWS", "MultivariateResult", "multivariate_drift", "sample_step"]

MAX_ERROR_ROWS = 250_000  # beyond, every k-th row: the band widens to match, as it should


@dataclass
class MultivariateResult:
    """Reconstruction error of the current data against its reference band."""

    columns: list[str]
    components: int
    explained_variance: float
    reference_mean: float
    error: float | None
    lower: float | None
    upper: float | None
    drifted: bool
    rows: int  # rows whose error was measured
    windows: list[dict[str, Any]] = field(default_factory=list)
    step: int = 1  # every step-th row was measured (see ``sample_step``)


def sample_step(rows: int) -> int:
    """Measure every ``sample_step(rows)``-th row: at most ``MAX_ERROR_ROWS`` rows.

    The mean error of 250,000 evenly spaced rows estimates the mean of all of them to
    within a fraction of the band (whose width follows the rows measured), at a quarter of
    the cost for a million rows.
    """
    return max(1, -(-rows // MAX_ERROR_ROWS))


def _band(section: Mapping[str, Any], n: int, sigma: float) -> tuple[float, float]:
    se = max(section["chunk_std"] * math.sqrt(section["chunk_size"] / n),
             section["error_std"] / math.sqrt(n))
    mean = section["error_mean"]
    return mean - sigma * se, mean + sigma * se


def multivariate_drift(section: Mapping[str, Any], errors: np.ndarray, sigma: float,
                       windows: Windows | None = None, min_rows: int = 1
                       ) -> MultivariateResult:
    """Compare the current errors with the reference band, overall and per window.

    Args:
        section: the reference section from :func:`fit_reference`.
        errors: per-row errors of the current data.
        sigma: width of the band in standard errors.
        windows: the windows of the current rows, if any.
        min_rows: windows with fewer rows are listed but not judged.
    """
    def judge(mean: float, n: int) -> dict[str, Any]:
        if n < min_rows or not math.isfinite(mean):
            return {"error": None, "lower": None, "upper": None, "drifted": False, "rows": n}
        low, high = _band(section, n, sigma)
        return {"error": mean, "lower": low, "upper": high,
                "drifted": not low <= mean <= high, "rows": n}

    overall = judge(float(errors.mean()) if len(errors) else math.nan, len(errors))
    result = MultivariateResult(list(section["columns"]), len(section["components"]),
                                float(section["explained_variance"]),
                                float(section["error_mean"]), overall["error"],
                                overall["lower"], overall["upper"], overall["drifted"],
                                len(errors))
    if windows is not None and len(windows):
        for label, mean, n in zip(windows.labels, windows.means(errors), windows.counts(),
                                  strict=True):
            result.windows.append({"window": label, **judge(float(mean), int(n))})
    return result
