"""The result of a monitoring run: its parts, a flat view for alerts and gauges, and JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from forgeline.monitoring.alerts import AlertResult
from forgeline.monitoring.attribution import AttributionDrift
from forgeline.monitoring.config import MonitorConfig
from forgeline.monitoring.drift import DatasetDrift, FeatureDrift
from forgeline.monitoring.multivariate import MultivariateResult
from forgeline.monitoring.perf import PerformanceResult
from forgeline.monitoring.quality import QualityResult
from forgeline.monitoring.windows import ROW_ORDER, Clock
from forgeline.util.json import jsonable

__all__ = ["MonitorResult"]

_STATS = ("psi", "ks", "ks_pvalue", "wasserstein", "jensenshannon", "chisquare_pvalue")
_QUALITY = ("missing_share", "missing_share_change", "out_of_range_share", "unseen_share")


def _put(out: dict[str, float], key: str, value: Any) -> None:
    if isinstance(value, int | float) and math.isfinite(value):  # bool is an int
        out[key] = float(value)


@dataclass
class MonitorResult:
    """Everything one monitoring run found. ``to_dict()`` is its JSON form, which
    :func:`forgeline.reports.render_monitor_report` renders as an HTML page.

    Attributes:
        model: the model reference (or package path) and ``version``, ``task``.
        rows: current rows monitored; ``period``: first and last time on the windows'
            clock when known.
        reference: where the reference came from; ``reference_rows`` its row count.
        features: drift per feature; ``dataset``: the share of drifted features.
        skipped: columns not checked for drift, and why.
        prediction: drift of the predictions (None without a prediction reference).
        multivariate: PCA reconstruction drift (None without a PCA reference).
        quality: data quality; ``performance``: realised/estimated metrics (or None).
        windows: drift per time window; ``windows_by`` how they were cut.
        alerts: each rule and whether it fired; ``warnings``: what people should know.
        attribution: attribution drift (None when not measured; a warning says why).
        clock: which times cut the windows and give the period (``clock.label``:
            ``event time: <column>``, ``logging time: ts`` or ``row order``).
    """

    model: str
    version: str | None
    task: str
    rows: int
    period: dict[str, str | None]
    reference: str
    reference_rows: int | None
    config: MonitorConfig
    features: dict[str, FeatureDrift]
    dataset: DatasetDrift
    skipped: dict[str, str]
    prediction: FeatureDrift | None
    multivariate: MultivariateResult | None
    quality: QualityResult
    performance: PerformanceResult | None
    windows: list[dict[str, Any]]
    windows_by: str
    generated: str
    alerts: list[AlertResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    clock: Clock = ROW_ORDER
    attribution: AttributionDrift | None = None

    @property
    def fired(self) -> list[AlertResult]:
        """The rules that fired."""
        return [a for a in self.alerts if a.fired]

    def values(self) -> dict[str, float]:
        """Every number a rule can name (see :mod:`.rules`), finite values only."""
        out: dict[str, float] = {}
        _put(out, "rows", self.rows)
        _put(out, "dataset_drift", self.dataset.share)
        _put(out, "dataset_drifted", self.dataset.drifted)
        _put(out, "drifted_features", self.dataset.n_drifted)
        for name, f in self.features.items():
            _put(out, f"drift.{name}", f.score)
            _put(out, f"drifted.{name}", f.drifted)
            for key in _STATS:
                _put(out, f"{key}.{name}", f.stats.get(key))
        for name, row in self.quality.columns.items():
            for key in _QUALITY:
                _put(out, f"{key}.{name}", row.get(key))
        _put(out, "duplicate_share", self.quality.duplicate_share)
        if self.prediction is not None:
            _put(out, "prediction_drift", self.prediction.score)
            _put(out, "prediction_drifted", self.prediction.drifted)
            _put(out, "prediction_psi", self.prediction.stats.get("psi"))
        if self.multivariate is not None:
            _put(out, "multivariate_error", self.multivariate.error)
            _put(out, "multivariate_drifted", self.multivariate.drifted)
        if self.attribution is not None:
            a = self.attribution
            _put(out, "attribution_drifted", a.drifted)
            _put(out, "attribution_drifted_features", len(a.drifted_features))
            _put(out, "attribution_share_change", a.largest_share_change)
            for name, f in a.features.items():
                _put(out, f"attribution_share.{name}", f["current_share"])
                _put(out, f"attribution_change.{name}", f["share_change"])
        if self.performance is not None:
            for name, value in self.performance.realized.items():
                _put(out, name, value)
            for name, value in self.performance.estimated.items():
                _put(out, f"estimated_{name}", value)
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (NaN and infinity as null), with what is computed from
        the fields too (``fired``, the labels' ``feedback.message``) so a reader of the JSON,
        such as the HTML report, needs nothing else."""
        data = jsonable(self)
        data["fired"] = [a.rule for a in self.fired]
        if self.attribution is not None:
            data["attribution"]["drifted"] = self.attribution.drifted
        if self.performance is not None and self.performance.feedback is not None:
            data["performance"]["feedback"]["message"] = self.performance.feedback.message
        return data
