"""Attribution drift: has what drives the model's decisions changed in production?

A sample of the current rows is explained with the packaged model (the same method as in
training, :mod:`forgeline.packaging.attributions`) and each input column's mean
|contribution| is compared with the reference the package keeps (``attributions.json``,
measured on the test split when the model was trained): the absolute and relative change,
the change of the column's *share* of all attribution, and the change of its rank.

A column is flagged when its share moved by more than
``MonitorConfig.attribution_share_change`` (percentage points as a fraction: 0.05 is five
points). Shares, not raw values, are compared: when every column's contribution grows
alike (say the whole population became riskier) the model still decides for the same
reasons; when one column's share grows, that column now weighs more in the decisions, as
when its values moved into a range where the model reacts strongly, or were scaled.

A package without reference attributions (trained before they were recorded), current data
without the model's columns, or rows the model's signature rejects give a warning, not a
failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from forgeline.errors import InvalidInput, NotExplainable
from forgeline.monitoring.config import MonitorConfig
from forgeline.packaging.attributions import global_explanation, shares
from forgeline.packaging.predictor import Predictor

__all__ = ["AttributionDrift", "attribution_drift"]

_NOT_COMPARED = "attribution drift not measured: "


@dataclass
class AttributionDrift:
    """Reference against current mean |contribution| per input column.

    Attributes:
        method, units: how the contributions were computed and in what units.
        rows: current rows explained; ``reference_rows``: test rows behind the reference.
        threshold: the share change above which a column is flagged.
        features: column -> reference, current (mean |contribution|), change,
            relative_change (change / reference; None when the reference is 0),
            reference_share, current_share, share_change, reference_rank, current_rank,
            rank_change (positive: the column moved up), drifted; largest current first.
        drifted_features: the flagged columns, by |share change|.
    """

    method: str
    units: str
    rows: int
    reference_rows: int | None
    threshold: float
    features: dict[str, dict[str, Any]] = field(default_factory=dict)
    drifted_features: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.drifted_features)

    @property
    def largest_share_change(self) -> float:
        return max((abs(f["share_change"]) for f in self.features.values()), default=0.0)


def attribution_drift(predictor: Predictor, current: pd.DataFrame, config: MonitorConfig,
                      warnings: list[str]) -> AttributionDrift | None:
    """Compare the current rows' attributions with the package's; None (and a warning
    when it is worth one) when they cannot be compared."""
    if config.attribution_rows == 0:
        return None
    reference = predictor.package.attributions
    if not reference or not isinstance(reference.get("columns"), dict):
        warnings.append(_NOT_COMPARED + "the model package has no reference attributions "
                        "(attributions.json: models trained before Forgeline recorded them); "
                        "retrain the model to add them")
        return None
    names = list(predictor.signature.names)
    missing = [c for c in names if c not in current.columns]
    if missing:
        warnings.append(_NOT_COMPARED + f"the current data lacks the model's column(s) "
                        f"{', '.join(missing[:5])}")
        return None
    try:
        g = global_explanation(predictor, current[names], rows=config.attribution_rows,
                               interactions=False)
    except (InvalidInput, NotExplainable) as e:
        warnings.append(_NOT_COMPARED + str(e).rstrip("."))
        return None
    if g.explanation.units != reference.get("units"):
        warnings.append(_NOT_COMPARED + f"the reference is in {reference.get('units')}, the "
                        f"model now explains in {g.explanation.units}")
        return None
    return compare(reference, g.mean_abs, config.attribution_share_change,
                   method=g.explanation.method, units=g.explanation.units, rows=g.rows)


def compare(reference: dict[str, Any], current: dict[str, float], threshold: float, *,
            method: str, units: str, rows: int) -> AttributionDrift:
    """The drift of ``current`` (column -> mean |contribution|) from ``reference`` (the
    ``attributions.json`` form)."""
    ref = {c: float(v["mean_abs"]) for c, v in reference["columns"].items()}
    columns = [c for c in current if c in ref] + [c for c in ref if c not in current]
    cur = {c: float(current.get(c, 0.0)) for c in columns}
    ref = {c: ref.get(c, 0.0) for c in columns}
    ref_share, cur_share = shares(ref), shares(cur)
    ref_rank, cur_rank = _ranks(ref), _ranks(cur)
    out = AttributionDrift(method, units, rows, reference.get("rows"), threshold)
    for c in sorted(columns, key=lambda c: -cur[c]):
        change = cur[c] - ref[c]
        share_change = cur_share[c] - ref_share[c]
        out.features[c] = {
            "reference": ref[c], "current": cur[c], "change": change,
            "relative_change": change / ref[c] if ref[c] > 0 else None,
            "reference_share": ref_share[c], "current_share": cur_share[c],
            "share_change": share_change, "reference_rank": ref_rank[c],
            "current_rank": cur_rank[c], "rank_change": ref_rank[c] - cur_rank[c],
            "drifted": abs(share_change) > threshold}
    out.drifted_features = sorted((c for c, f in out.features.items() if f["drifted"]),
                                  key=lambda c: -abs(out.features[c]["share_change"]))
    return out


def _ranks(values: dict[str, float]) -> dict[str, int]:
    return {c: i + 1 for i, c in enumerate(sorted(values, key=lambda c: -values[c]))}
