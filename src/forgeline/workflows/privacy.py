"""What training does with personal columns (the spec's ``privacy:`` section).

:func:`plan_privacy` finds them (detected, plus declared, minus excluded) before the
schema is inferred; :func:`apply_privacy` enforces the policy on the frame (``fail``
stops, ``drop`` leaves them out, ``hash`` replaces each value by its keyed HMAC, ``warn``
keeps them); :func:`scrub` takes their raw values out of the signature and the profile,
which would otherwise record categories seen in training. The package's ``privacy.json``
(:meth:`PrivacyPlan.record`) tells the server which request fields to hash in the
prediction log and the card how each column was handled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import pandas as pd

from forgeline.data.findings import Finding
from forgeline.data.personal import PersonalColumn, personal_columns, personal_findings
from forgeline.errors import PersonalDataFound
from forgeline.packaging.signature import Signature
from forgeline.training.spec import PrivacySpec
from forgeline.util.privacy import keyed_hash_series

__all__ = ["PrivacyPlan", "apply_privacy", "plan_privacy", "scrub"]

_HANDLING = {"warn": "kept as is", "drop": "not a feature (dropped)",
             "hash": "HMAC-SHA256 before training"}


@dataclass(frozen=True)
class PrivacyPlan:
    """The personal columns of one training run and the policy applied to them."""

    policy: str
    columns: dict[str, PersonalColumn]
    findings: list[Finding]

    @property
    def drop(self) -> tuple[str, ...]:
        """Columns left out of the schema (policy ``drop``)."""
        return tuple(self.columns) if self.policy == "drop" else ()

    def record(self, features: Collection[str], sensitive: Collection[str] = ()
               ) -> dict[str, Any]:
        """``privacy.json``: the policy, each personal column's kind and handling (no
        values), and the sensitive columns (sliced on in evaluation, not features)."""
        columns = {}
        for name, column in self.columns.items():
            handling = _HANDLING[self.policy] if self.policy != "fail" else "kept as is"
            if self.policy != "drop" and name not in features:
                handling = "not a feature"
            columns[name] = {"kind": column.kind.value, "feature": name in features,
                             "handling": handling, "prediction_log": "HMAC-SHA256"}
        return {"policy": self.policy, "hash": "hmac-sha256", "columns": columns,
                "sensitive": list(sensitive)}


def plan_privacy(frame: pd.DataFrame, spec: PrivacySpec, target: str, seed: int = 0
                 ) -> PrivacyPlan:
    """Find the personal columns of ``frame`` (never the target) and the finding."""
    if spec.detect:
        found = personal_columns(frame, declared=spec.personal, exclude=spec.exclude,
                                 skip=(target,), seed=seed)
    else:
        found = personal_columns(frame.iloc[:0, :0], declared=spec.personal)
    return PrivacyPlan(spec.policy, found, personal_findings(found, spec.policy))


def apply_privacy(frame: pd.DataFrame, plan: PrivacyPlan, key: bytes) -> pd.DataFrame:
    """``frame`` as training may see it under the plan's policy.

    Raises:
        PersonalDataFound: policy ``fail`` and a personal column was found or declared.
    """
    if not plan.columns:
        return frame
    if plan.policy == "fail":
        listed = ", ".join(f"{n!r} ({c.kind.value})" for n, c in plan.columns.items())
        raise PersonalDataFound(
            f"Personal data in column(s) {listed} and privacy.policy is fail.",
            hint="Remove them from the data, set privacy.policy to drop or hash, or list a "
                 "column in privacy.exclude if it is not personal.")
    if plan.policy != "hash":
        return frame
    hashed = frame.copy()
    for name in plan.columns:
        if name in hashed.columns:
            hashed[name] = keyed_hash_series(hashed[name], key)
    return hashed


def scrub(signature: Signature, profile: dict[str, Any], columns: Collection[str]
          ) -> Signature:
    """Drop the categories (raw values) of personal columns from the signature and, in
    place, from the profile, which marks them ``"personal": true``: every value counts
    in the "other" bucket there, so monitoring bins them without naming any value."""
    inputs = tuple(dataclasses.replace(c, categories=None) if c.name in columns else c
                   for c in signature.inputs)
    for name, stats in profile.get("columns", {}).items():
        if name in columns:
            if "categories" in stats:
                stats["categories"] = {}
                stats["other_count"] = int(stats.get("count") or 0)
            stats["personal"] = True
    return dataclasses.replace(signature, inputs=inputs)
