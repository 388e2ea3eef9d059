"""The reference a monitoring run compares with: the model's profile, a dict, or a frame.

By default that is the profile stored in the model package (``profile.json``, with the
sections :func:`~forgeline.data.profile.reference_extras` adds). A DataFrame (e.g.
last month's traffic) is profiled on the spot with the same code, its kinds taken from the
model signature; its prediction columns, when present, give the prediction reference, and
its numeric columns a PCA reference (fitted on one half of its rows, measured on the other).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forgeline.data import values as v
from forgeline.data.pca import fit_reference
from forgeline.data.profile import (
    build_profile,
    duplicate_share,
    feature_bin_means,
    prediction_section,
)
from forgeline.data.schema import ColumnInfo, ColumnKind, Schema
from forgeline.errors import InvalidInput
from forgeline.packaging.signature import Signature
from forgeline.store.predictions import proba_column

__all__ = ["Reference", "build_reference", "normalise_category"]


@dataclass
class Reference:
    """A profile (format of :mod:`forgeline.data.profile`, plus extras) and where it is from.

    ``categories`` holds, per categorical column, every category seen in the reference
    when that set is complete (see :mod:`.binning`); ``personal`` the columns the model's
    profile marks personal, whose values are never compared (whatever the reference).
    """

    source: str
    profile: dict[str, Any]
    categories: dict[str, frozenset[str]] = field(default_factory=dict)
    personal: frozenset[str] = frozenset()


def normalise_category(name: str) -> str:
    """A signature category as the profile names it: ``"1.0"`` -> ``"1"``."""
    try:
        number = float(name)
    except ValueError:
        return name
    if np.isfinite(number) and number == int(number) and abs(number) < 2**53:
        return str(int(number))
    return name


def _complete_categories(profile: Mapping[str, Any], signature: Signature | None
                         ) -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    recorded = {c.name: c.categories for c in signature.inputs} if signature else {}
    for name, stats in (profile.get("columns") or {}).items():
        if "categories" not in stats:
            continue
        names = set(stats["categories"])
        if recorded.get(name) is not None:
            out[name] = frozenset(names | {normalise_category(c) for c in recorded[name]})
        elif not stats.get("other_count"):
            out[name] = frozenset(names)
    return out


def _schema(signature: Signature) -> Schema:
    columns = tuple(ColumnInfo(c.name, ColumnKind(c.kind), c.dtype, 0, 0.0)
                    for c in signature.inputs)
    kind = ColumnKind.NUMERIC if not signature.is_classifier else ColumnKind.CATEGORICAL
    return Schema(columns, ColumnInfo(signature.target, kind, "object", 0, 0.0))


def _frame_prediction(frame: pd.DataFrame, signature: Signature) -> dict[str, Any] | None:
    if "prediction" not in frame.columns:
        return None
    classes = list(signature.classes) if signature.classes is not None else None
    if signature.task == "regression":
        return prediction_section("regression", None, values=frame["prediction"])
    proba = None
    if signature.task == "binary" and classes:
        column = proba_column(classes[1])
        if column in frame.columns:
            proba = v.to_numbers(frame[column]).to_numpy(dtype="float64", na_value=np.nan)
    return prediction_section(signature.task, classes, labels=frame["prediction"],
                              proba=proba)


def _from_frame(frame: pd.DataFrame, signature: Signature, seed: int) -> Reference:
    if len(frame) == 0:
        raise InvalidInput("The reference DataFrame has no rows.",
                           hint="Give the training data or a period of production data.")
    schema = _schema(signature)
    present = [c for c in signature.names if c in frame.columns]
    if not present:
        raise InvalidInput("The reference DataFrame has none of the model's input columns.",
                           hint=f"The model takes {', '.join(signature.names[:20])}.")
    profile = build_profile(frame, schema)
    profile["prediction"] = _frame_prediction(frame, signature)
    numeric = [c.name for c in signature.inputs if c.kind == "numeric" and c.name in present]
    order = np.random.default_rng(seed).permutation(len(frame))
    half = len(frame) // 2
    profile["multivariate"] = fit_reference(frame[numeric].iloc[np.sort(order[:half])],
                                            frame[numeric].iloc[np.sort(order[half:])],
                                            seed=seed)
    profile["bin_means"] = feature_bin_means(frame[numeric], profile)
    profile["quality"] = {"duplicate_share": duplicate_share(frame, present)}
    categories = {}
    for name, stats in profile["columns"].items():
        if "categories" in stats:
            categories[name] = frozenset(v.category_counts(frame[name]).index.astype(str))
    return Reference("reference data", profile, categories)


def build_reference(profile: Mapping[str, Any] | None, signature: Signature | None,
                    reference: Mapping[str, Any] | pd.DataFrame | None = None, *,
                    seed: int = 0) -> Reference:
    """The reference to compare with.

    Args:
        profile: the model package's profile (used when ``reference`` is None).
        signature: the model signature (kinds of a reference frame's columns; categories).
        reference: a profile dict or a DataFrame to use instead of the model's profile.
        seed: for the PCA split of a reference frame.
    """
    personal = frozenset(name for name, stats in ((profile or {}).get("columns") or {}).items()
                         if isinstance(stats, Mapping) and stats.get("personal"))
    if isinstance(reference, pd.DataFrame):
        if signature is None:
            raise InvalidInput("A reference DataFrame needs the model signature for its "
                               "column kinds.")
        return dataclasses.replace(_from_frame(reference, signature, seed), personal=personal)
    source = "model profile" if reference is None else "given profile"
    chosen = profile if reference is None else reference
    if not isinstance(chosen, Mapping) or not isinstance(chosen.get("columns"), Mapping):
        raise InvalidInput("The reference profile is missing or malformed (no 'columns').",
                           hint="Re-train the model, or pass reference=<a DataFrame>.")
    chosen = dict(chosen)
    return Reference(source, chosen, _complete_categories(chosen, signature), personal)
