"""A PCA of the numeric features and its reconstruction error: the reference that
multivariate drift (:mod:`forgeline.monitoring.multivariate`) compares production with.

The section (stored in ``profile.json`` under ``"multivariate"``) holds a PCA of the
standardised, median-imputed numeric training features: medians, means, standard
deviations and the kept components (enough for ``variance`` of the variance, at most
``max_components`` and always fewer than the features, so something is left to
reconstruct). Each row's error is the Euclidean distance between the standardised row and
its reconstruction from the components.

The reference error is measured on held-out rows (the test split), so it is not flattered
by the fit: its row-level mean and standard deviation, and the standard deviation of the
means of ``CHUNKS`` equal chunks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from forgeline.data import values as v

__all__ = ["fit_reference", "reconstruction_errors"]

MAX_FIT_ROWS = 200_000
CHUNKS = 10
_BLOCK = 1 << 17  # rows per block when scoring: bounds memory on large frames


def _matrix(arrays: list[np.ndarray], medians: np.ndarray) -> np.ndarray:
    X = np.column_stack(arrays).astype("float64", copy=False)
    X[~np.isfinite(X)] = np.nan
    holes = np.isnan(X)
    if holes.any():
        X[holes] = np.take(medians, np.nonzero(holes)[1])
    return X


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    return v.to_numbers(frame[column]).to_numpy(dtype="float64", na_value=np.nan)


def _errors(section: Mapping[str, Any], arrays: list[np.ndarray]) -> np.ndarray:
    """Per-row errors, block by block in float32 (errors need no more precision)."""
    medians = np.asarray(section["medians"], dtype="float64")
    means = np.asarray(section["means"], dtype="float64")
    scale = 1.0 / np.asarray(section["stds"], dtype="float64")
    components = np.asarray(section["components"], dtype="float32")
    fill = ((medians - means) * scale).astype("float32")  # a missing value: the median
    n = len(arrays[0]) if arrays else 0
    out = np.empty(n)
    Z = np.empty((len(arrays), min(n, _BLOCK)), dtype="float32")  # a row per feature
    for start in range(0, n, _BLOCK):
        m = min(_BLOCK, n - start)
        z = Z[:, :m]
        for j, values in enumerate(arrays):
            np.subtract(values[start:start + m], means[j], out=z[j], casting="same_kind")
            z[j] *= scale[j]
        squared = _squared(z, components)
        bad = ~np.isfinite(squared)
        if bad.any():  # only rows with a missing (or infinite) value pay for the fix
            fixed = z[:, bad]
            holes = ~np.isfinite(fixed)
            fixed[holes] = np.take(fill, np.nonzero(holes)[0])
            squared[bad] = _squared(fixed, components)
        out[start:start + m] = np.sqrt(np.maximum(squared, 0.0))
    return out


def _squared(z: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Squared distance of each column of ``z`` to its projection on the components."""
    projected = components @ z
    return (np.einsum("ij,ij->j", z, z) - np.einsum("ij,ij->j", projected, projected)
            ).astype("float64")


def fit_reference(fit: pd.DataFrame, held_out: pd.DataFrame, *, variance: float = 0.9,
                  max_components: int = 10, seed: int = 0) -> dict[str, Any] | None:
    """The reference section: PCA on ``fit``, error statistics on ``held_out``.

    Args:
        fit: the numeric training features (other columns are not expected).
        held_out: the same columns on rows the PCA did not see (the test split).
        variance: keep the fewest components that explain this share of the variance.
        max_components: but never more than this.
        seed: for the row sample when ``fit`` has more than ``MAX_FIT_ROWS`` rows.

    Returns:
        A JSON-serialisable dict, or None with fewer than 2 columns or 10 rows per side.
    """
    columns = [str(c) for c in fit.columns]
    if len(columns) < 2 or len(fit) < 10 or len(held_out) < 10:
        return None
    if len(fit) > MAX_FIT_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(len(fit), MAX_FIT_ROWS, False))
        fit = fit.iloc[rows]
    raw = [_numbers(fit, c) for c in columns]
    with np.errstate(all="ignore"):
        medians = np.array([np.nanmedian(a) if np.isfinite(a).any() else 0.0 for a in raw])
    X = _matrix(raw, medians)
    means, stds = X.mean(axis=0), X.std(axis=0)
    stds = np.where(stds > 0, stds, 1.0)
    Z = (X - means) / stds
    values, vectors = np.linalg.eigh(Z.T @ Z / max(len(Z) - 1, 1))
    order = np.argsort(values)[::-1]
    values, vectors = np.maximum(values[order], 0.0), vectors[:, order]
    ratio = np.cumsum(values) / values.sum() if values.sum() > 0 else np.ones(len(values))
    k = int(min(np.searchsorted(ratio, variance) + 1, max_components, len(columns) - 1))
    section: dict[str, Any] = {
        "columns": columns, "medians": medians.tolist(), "means": means.tolist(),
        "stds": stds.tolist(), "components": vectors[:, :k].T.tolist(),
        "explained_variance": float(ratio[k - 1])}
    errors = _errors(section, [_numbers(held_out, c) for c in columns])
    size = max(len(errors) // CHUNKS, 1)
    chunk_means = [errors[i:i + size].mean() for i in range(0, size * CHUNKS, size)
                   if len(errors[i:i + size])]
    section.update(error_mean=float(errors.mean()), error_std=float(errors.std(ddof=1)),
                   chunk_size=size, chunk_std=float(np.std(chunk_means, ddof=1)),
                   rows=len(errors))
    return section


def reconstruction_errors(section: Mapping[str, Any], numbers: Mapping[str, np.ndarray]
                          ) -> np.ndarray:
    """Per-row reconstruction error; ``numbers`` maps every section column to its values."""
    return _errors(section, [numbers[c] for c in section["columns"]])
