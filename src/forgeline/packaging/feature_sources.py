"""Which input column each output of a fitted ColumnTransformer came from.

An explanation is reported on the columns a user sent, not on the one-hot, encoded or
TF-IDF features the model saw, so every transformed feature is traced back to its input
column through the fitted transformer's ``transformers_`` and ``output_indices_``: a
missing-value indicator, a one-hot column, a datetime part, a target-encoded class, a
TF-IDF term and a dimension of a text's sentence embedding all belong to the column they
were made from (a step over one column, like a text's, is that column's whatever its
width). Steps that widen their input
(one-hot, missing indicators, datetime parts, multiclass target encoding) are traced per
column; any other step must keep one output per input, and the traced width is checked
against the transformer's own, so a step this module does not know fails loudly instead
of misattributing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, TargetEncoder

from forgeline.errors import NotExplainable
from forgeline.packaging.transformers import DatetimeParts

__all__ = ["aggregation_matrix", "feature_sources"]


def feature_sources(transformer: ColumnTransformer) -> list[str]:
    """The input column of each output feature of a fitted ColumnTransformer, in order.

    Raises:
        NotExplainable: a step whose outputs cannot be traced to its input columns.
    """
    width = max((s.stop for s in transformer.output_indices_.values()), default=0)
    sources: list[str | None] = [None] * width
    for name, step, columns in transformer.transformers_:
        where = transformer.output_indices_[name]
        if where.stop == where.start:
            continue
        names = [columns] if isinstance(columns, str) else [str(c) for c in columns]
        # everything made of one column (a text's TF-IDF terms) is that column's
        traced = names * (where.stop - where.start) if len(names) == 1 else _through(
            step, names)
        if len(traced) != where.stop - where.start:
            raise NotExplainable(
                f"Cannot trace the features of step {name!r} ({type(step).__name__}) back "
                f"to its input columns: {len(traced)} traced, "
                f"{where.stop - where.start} produced.",
                hint="Explain a model built by Forgeline's own preprocessing.")
        sources[where] = traced
    if any(s is None for s in sources):
        raise NotExplainable("Some model features come from no input column.",
                             hint="Explain a model built by Forgeline's own preprocessing.")
    return [str(s) for s in sources]


def aggregation_matrix(sources: Sequence[str], columns: Sequence[str]) -> np.ndarray:
    """A features x columns 0/1 matrix: ``contributions @ matrix`` sums per input column."""
    position = {c: i for i, c in enumerate(columns)}
    matrix = np.zeros((len(sources), len(columns)))
    matrix[np.arange(len(sources)), [position[s] for s in sources]] = 1.0
    return matrix


def _through(step: Any, sources: list[str]) -> list[str]:
    if step is None or (isinstance(step, str) and step == "passthrough"):
        return sources
    if isinstance(step, Pipeline):
        for _, inner in step.steps:
            sources = _through(inner, sources)
        return sources
    if isinstance(step, OneHotEncoder):
        return [s for s, n in zip(sources, _one_hot_widths(step), strict=True)
                for _ in range(n)]
    if isinstance(step, SimpleImputer):
        kept = sources if step.keep_empty_features else [
            s for s, v in zip(sources, step.statistics_, strict=True) if not _is_nan(v)]
        indicator = getattr(step, "indicator_", None)
        return kept + ([sources[i] for i in indicator.features_] if indicator else [])
    if isinstance(step, MissingIndicator):
        return [sources[i] for i in step.features_]
    if isinstance(step, DatetimeParts):
        return [s for s in sources for _ in step.parts]
    if isinstance(step, TargetEncoder) and step.target_type_ == "multiclass":
        return [s for s in sources for _ in step.classes_]
    return sources  # one output per input (scalers, ordinal codes, Categories)


def _one_hot_widths(encoder: OneHotEncoder) -> list[int]:
    infrequent = getattr(encoder, "infrequent_categories_", None) or [None] * len(
        encoder.categories_)
    drop = getattr(encoder, "drop_idx_", None)
    widths = []
    for i, categories in enumerate(encoder.categories_):
        n = len(categories)
        if infrequent[i] is not None:
            n -= len(infrequent[i]) - 1  # the infrequent ones share one column
        if drop is not None and drop[i] is not None:
            n -= 1
        widths.append(n)
    return widths


def _is_nan(value: Any) -> bool:
    try:
        return bool(np.isnan(value))
    except TypeError:
        return False
