"""What training does with personal columns (the spec's ``privacy:`` section).

:func:`plan_privacy` finds them (detected, plus declared, minus excluded) before the
schema is inferred; :func:`apply_privacy` enforces the policy on the frame (``fail``
stops, ``drop`` leaves them out, ``hash`` replaces each value by its keyed HMAC, ``warn``
keeps them; the columns of ``privacy.hashed`` already hold keyed hashes and are not hashed
twice); :func:`scrub` takes their raw values out of the signature and the profile,
which would otherwise record categories seen in training. The package's ``privacy.json``
(:meth:`PrivacyPlan.record`) tells the server which request fields to hash in the
prediction log and the card how each column was handled.

Retraining on logged rows (:func:`logged_privacy`): the prediction log stores every
personal column as its keyed hash, so a logged row can only feed a model that sees that
column as the same keyed hash. Under ``hash`` that is exactly what the model learns on and
serves with (the predictor hashes the request before the model sees it): retraining hashes
the original rows' column with the same key and trains with ``privacy.hashed`` listing it,
so every training row holds the token once, never the raw value and never a token hashed
twice. Under ``warn`` the model takes the raw value, which the log no longer has: logged
rows can neither train a challenger nor judge the champion, so the cycle is skipped and
says why (set ``privacy.policy: hash`` and train again). Under ``drop`` the column is no
input and never reaches the logged training rows. A column the log hashed because its
values looked personal (not in ``privacy.json``) counts as taken raw: the log's tokens
are recognised as 64 lowercase hex digits in every logged value.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from forgeline.data.findings import Finding
from forgeline.data.personal import PersonalColumn, personal_columns, personal_findings
from forgeline.errors import PersonalDataFound
from forgeline.packaging.signature import Signature
from forgeline.training.spec import PrivacySpec
from forgeline.util.privacy import keyed_hash_series

__all__ = ["LoggedPrivacy", "PrivacyPlan", "apply_privacy", "hash_columns", "logged_privacy",
           "plan_privacy", "scrub"]

_HANDLING = {"warn": "kept as is", "drop": "not a feature (dropped)",
             "hash": "HMAC-SHA256 before training"}


@dataclass(frozen=True)
class PrivacyPlan:
    """The personal columns of one training run and the policy applied to them."""

    policy: str
    columns: dict[str, PersonalColumn]
    findings: list[Finding]
    hashed: tuple[str, ...] = ()  # already keyed hashes (privacy.hashed): not hashed again

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
    declared = (*spec.personal, *spec.hashed)
    if spec.detect:
        found = personal_columns(frame, declared=declared, exclude=spec.exclude,
                                 skip=(target, *spec.hashed), seed=seed)
    else:
        found = personal_columns(frame.iloc[:0, :0], declared=declared)
    return PrivacyPlan(spec.policy, found, personal_findings(found, spec.policy),
                       tuple(spec.hashed))


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
    return hash_columns(frame, [c for c in plan.columns if c not in plan.hashed], key)


_VALUE_STATS = ("min", "max", "mean", "std", "quantiles", "bins", "mean_length")


def scrub(signature: Signature, profile: dict[str, Any], columns: Collection[str]
          ) -> Signature:
    """Take the raw values of personal columns out of the signature (categories, numeric
    range) and, in place, out of the profile, which marks them ``"personal": true`` and
    keeps only counts: no categories (every value counts in the "other" bucket), no
    minimum, maximum, mean, quantiles or bin edges, no bin means. Monitoring does not
    compare such a column (its production values are keyed hashes anyway)."""
    inputs = tuple(dataclasses.replace(c, categories=None, minimum=None, maximum=None)
                   if c.name in columns else c for c in signature.inputs)
    for name, stats in profile.get("columns", {}).items():
        if name in columns:
            if "categories" in stats:
                stats["categories"] = {}
                stats["other_count"] = int(stats.get("count") or 0)
            for key in _VALUE_STATS:
                stats.pop(key, None)
            stats["personal"] = True
    for name in columns:
        (profile.get("bin_means") or {}).pop(name, None)
    return dataclasses.replace(signature, inputs=inputs)


_TOKEN = re.compile(r"[0-9a-f]{64}")


def hash_columns(frame: pd.DataFrame, columns: Collection[str], key: bytes) -> pd.DataFrame:
    """A copy of ``frame`` with ``columns`` (those present) replaced by their keyed hashes."""
    out = frame.copy()
    for name in columns:
        if name in out.columns:
            out[name] = keyed_hash_series(out[name], key)
    return out


@dataclass(frozen=True)
class LoggedPrivacy:
    """How retraining may use logged rows (see the module docstring).

    Attributes:
        tokens: model inputs the log holds as keyed hashes.
        overrides: ``--set`` items the challenger's training needs for them.
        blocked: why logged rows can neither train nor judge a model; None when they can.
    """

    tokens: tuple[str, ...]
    overrides: tuple[str, ...]
    blocked: str | None


def _is_tokens(values: pd.Series) -> bool:
    present = values.dropna()
    return (len(present) > 0 and not pd.api.types.is_numeric_dtype(values.dtype)
            and all(isinstance(v, str) and _TOKEN.fullmatch(v) for v in present))


def logged_privacy(record: Mapping[str, Any], spec: PrivacySpec, logged: pd.DataFrame,
                   inputs: Sequence[str]) -> LoggedPrivacy:
    """What the champion's ``privacy.json`` (``record``) and the challenger's ``spec`` make
    of the logged rows' columns ``inputs``."""
    columns = record.get("columns") or {}
    tokens = tuple(c for c in inputs if c in columns or (c in logged and _is_tokens(logged[c])))
    hashed = {c for c, info in columns.items()
              if info.get("feature") and str(info.get("handling", "")).startswith("HMAC")}
    raw = [c for c in tokens if c not in hashed]
    hint = ("set privacy.policy: hash in the spec (the model then learns on the keyed hashes "
            "the log holds) and train it again with forgeline train")
    if raw:
        return LoggedPrivacy(tokens, (), (
            f"the champion takes personal column(s) {', '.join(map(repr, raw))} as raw "
            f"values (privacy.policy: {record.get('policy', 'warn')}) but the prediction log "
            "holds only their keyed hashes, so logged rows can neither train a challenger "
            f"nor judge the champion: {hint}"))
    if not tokens or spec.policy == "hash":
        return LoggedPrivacy(tokens, (f"privacy.hashed={list(tokens)}",) if tokens else (),
                             None)
    if spec.policy == "drop":
        return LoggedPrivacy(tokens, (f"privacy.personal={[*spec.personal, *tokens]}",),
                             None)
    return LoggedPrivacy(tokens, (), (
        f"the challenger's privacy.policy {spec.policy} would train on the keyed hashes of "
        f"{', '.join(map(repr, tokens))} as if they were raw values: keep privacy.policy "
        "hash (or drop) for retraining"))
