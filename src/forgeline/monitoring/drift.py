"""Per-feature and dataset drift from binned columns (see :mod:`.stats` and :mod:`.config`).

Every statistic that applies to a column's kind is computed (they cost a few operations on
its bins), so any of them can be read, charted or used in an alert; the column's *method*
(chosen by kind and sample size, or configured) decides whether it drifted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forgeline.monitoring import stats as st
from forgeline.monitoring.binning import OTHER, Binned, Tally
from forgeline.monitoring.config import TESTS, MonitorConfig, choose_method
from forgeline.monitoring.windows import Windows

__all__ = ["DatasetDrift", "FeatureDrift", "column_stats", "dataset_drift", "feature_drift",
           "judge", "method_key", "window_drift"]


@dataclass
class FeatureDrift:
    """Drift of one column: the method's score and verdict, every statistic, the bins.

    Attributes:
        bins: ``labels``, ``reference`` and ``current`` shares per bucket, and ``other``:
            the label of the last bucket of a categorical column, which holds every value
            outside the profile's categories (None for a numeric column); empty when the
            bins were not kept.
        pvalue: set from ``method``: the score is a test's p-value, drifted when below the
            threshold (else a distance, drifted at or above it); in the JSON form so that
            a reader of it need not know the methods.
    """

    column: str
    kind: str
    method: str
    score: float | None
    threshold: float
    drifted: bool
    stats: dict[str, float | None]
    n_reference: int
    n_current: int
    bins: dict[str, Any] = field(default_factory=dict)
    pvalue: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.pvalue = self.method in TESTS


@dataclass
class DatasetDrift:
    share: float
    drifted: bool
    n_drifted: int
    n_features: int
    threshold: float
    drifted_features: list[str]


def method_key(method: str) -> str:
    """The statistic a method reads: its p-value for the tests, else its distance."""
    return f"{method}_pvalue" if method in TESTS else method


def column_stats(binned: Binned, tally: Tally) -> dict[str, np.ndarray]:
    """Every statistic of the column's kind, for each row of ``tally``."""
    ref, counts = binned.reference, tally.counts
    out: dict[str, np.ndarray] = {"psi": st.psi(ref, counts),
                                  "jensenshannon": st.jensenshannon(ref, counts)}
    if binned.categorical:
        out["chisquare_pvalue"] = st.chisquare_pvalue(ref, counts)
        return out
    d, p = st.ks(ref, counts)
    out["ks"], out["ks_pvalue"] = d, p
    s = binned.stats
    if len(binned.labels) > 1 and s.get("min") is not None and s.get("std"):
        out["wasserstein"] = st.wasserstein(ref, counts, np.asarray(
            [float(e) for e in s["bins"]["edges"]]), s["min"], s["max"], s["std"],
            binned.ref_means, tally.sums)
    return out


def judge(method: str, score: float | None, threshold: float) -> bool:
    """Whether a score means drift: p < threshold for tests, distance >= threshold else."""
    if score is None or not math.isfinite(score):
        return False
    return score < threshold if method in TESTS else score >= threshold


def _pick(binned: Binned, config: MonitorConfig, n: int, available: set[str]) -> str:
    method = choose_method(config, binned.name, binned.categorical, n)
    if method_key(method) not in available:  # no Wasserstein without a reference spread
        method = "psi"
    return method


def _finite(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def feature_drift(binned: Binned, config: MonitorConfig, tally: Tally | None = None,
                  row: int = 0, stats: dict[str, np.ndarray] | None = None,
                  with_bins: bool = True) -> FeatureDrift:
    """The drift of one column from its overall tally (or row ``row`` of ``tally``).

    Args:
        binned: the column on the reference bins.
        config: methods and thresholds.
        tally: bucket counts, one row per window; the column's overall ones when None.
        row: which row of ``tally`` (and ``stats``) to judge.
        stats: :func:`column_stats` of ``tally``, when already computed.
        with_bins: keep the reference and current shares per bin (for plots).
    """
    tally = binned.counts()[0] if tally is None else tally
    counts = tally.counts
    stats = column_stats(binned, tally) if stats is None else stats
    n = int(counts[row].sum())
    method = _pick(binned, config, n, set(stats))
    values = {k: _finite(a[row]) for k, a in stats.items()}
    score, threshold = values[method_key(method)], config.threshold(method)
    ref_total = float(binned.reference.sum())
    bins = {"labels": binned.labels, "reference": st.shares(binned.reference).tolist(),
            "current": st.shares(counts[row]).tolist(),
            "other": OTHER if binned.categorical else None} if with_bins else {}
    return FeatureDrift(binned.name, binned.kind, method, score, threshold,
                        judge(method, score, threshold), values, int(ref_total), n, bins)


def dataset_drift(features: dict[str, FeatureDrift], config: MonitorConfig) -> DatasetDrift:
    """Share of drifted features among those with a score; drifted at the configured share."""
    scored = [f for f in features.values() if f.score is not None]
    drifted = [f.column for f in scored if f.drifted]
    share = len(drifted) / len(scored) if scored else 0.0
    return DatasetDrift(share, bool(scored) and share >= config.dataset_drift_share,
                        len(drifted), len(scored), config.dataset_drift_share, drifted)


def window_drift(tables: Mapping[str, tuple[Binned, Tally]], windows: Windows,
                 config: MonitorConfig, prediction: str | None = None
                 ) -> list[dict[str, Any]]:
    """Drift per window: each feature's method, score, PSI and verdict, the dataset share.

    Args:
        tables: column -> (its binning, its counts per window from ``Binned.counts``).
        windows: the windows.
        config: methods and thresholds; windows under ``min_window_rows`` rows are listed
            with ``scored: false``.
        prediction: the key of the predictions in ``tables`` (kept out of the share).
    """
    if not len(windows):
        return []
    stats = {name: column_stats(b, counts) for name, (b, counts) in tables.items()}
    out = []
    for w, rows in enumerate(windows.counts()):
        scored = bool(rows >= config.min_window_rows)
        entry: dict[str, Any] = {"window": windows.labels[w], "start": windows.starts[w],
                                 "end": windows.ends[w], "rows": int(rows), "scored": scored}
        scores = {}
        for name, (b, counts) in tables.items():
            if scored:
                f = feature_drift(b, config, counts, w, stats[name], with_bins=False)
                scores[name] = {"method": f.method, "score": f.score, "drifted": f.drifted,
                                "psi": f.stats.get("psi")}
        pred = scores.pop(prediction, None) if prediction is not None else None
        judged = [s for s in scores.values() if s["score"] is not None]
        drifted = sorted((n for n, s in scores.items() if s["drifted"]),
                         key=lambda n: -(scores[n]["psi"] or 0.0))
        share = len(drifted) / len(judged) if judged else None
        entry.update(features=scores, prediction=pred, drifted=drifted,
                     dataset_drift_share=share,
                     dataset_drifted=share is not None and share >= config.dataset_drift_share)
        out.append(entry)
    return out
