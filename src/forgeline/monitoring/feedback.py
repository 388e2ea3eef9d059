"""Delayed labels: join a feedback table (id -> true label) to the logged predictions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forgeline.data.profile import category_strings
from forgeline.errors import InvalidInput

__all__ = ["FeedbackStats", "join_feedback"]

_EXAMPLES = 3


@dataclass(frozen=True)
class FeedbackStats:
    """How a feedback table matched the predictions.

    Attributes:
        labels: rows in the feedback table (with an id).
        matched: label rows whose id matches a prediction.
        unmatched: label rows whose id matches none.
        predictions: prediction rows.
        labelled: prediction rows that got a label.
        duplicate_ids: label ids given more than once (the last one is used).
        missing_labels: label rows whose label is empty (not used).
        unmatched_examples: a few ids that matched nothing.
    """

    labels: int
    matched: int
    unmatched: int
    predictions: int
    labelled: int
    duplicate_ids: int
    missing_labels: int
    unmatched_examples: tuple[str, ...] = ()

    @property
    def message(self) -> str | None:
        """A sentence for people when something did not match; None when all is well."""
        if self.labels and not self.matched:
            shown = ", ".join(repr(x) for x in self.unmatched_examples)
            return (f"none of the {self.labels} label ids match a prediction (e.g. {shown}); "
                    "check the id column and that the labels belong to this model and period")
        if self.unmatched:
            return (f"{self.unmatched} of {self.labels} label ids match no prediction "
                    "(outside the period, or another model's)")
        return None


def _key(value: object) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _keys(values: pd.Series) -> pd.Series:
    """Ids compared as text: 17, 17.0 and "17" are one id (also in a mixed column)."""
    if not pd.api.types.is_object_dtype(values.dtype):
        return category_strings(values)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    names = np.array([_key(u) for u in uniques] + [None], dtype=object)
    return pd.Series(names[codes], index=values.index, dtype=object)


def join_feedback(predictions: pd.DataFrame, labels: pd.DataFrame, id_column: str,
                  label_column: str) -> tuple[pd.DataFrame, FeedbackStats]:
    """The predictions with a ``label_column`` holding each row's true label (or missing).

    Every prediction row is kept; ids are compared as text. Ids that match nothing are
    counted in the stats (its ``message`` says so), never an error.

    Args:
        predictions: the logged predictions, with ``id_column``.
        labels: the feedback table, with ``id_column`` and ``label_column``.
        id_column: the id both tables share (the prediction log's ``request_id``).
        label_column: the true label in ``labels``.

    Raises:
        InvalidInput: a column is missing, or ``predictions`` has a ``label_column`` already.
    """
    for frame, what, needed in ((predictions, "predictions", [id_column]),
                                (labels, "labels", [id_column, label_column])):
        absent = [c for c in needed if c not in frame.columns]
        if absent:
            shown = ", ".join(map(str, list(frame.columns)[:15]))
            raise InvalidInput(f"The {what} have no column {absent[0]!r}.",
                               hint=f"Its columns are: {shown}.")
    if label_column in predictions.columns:
        raise InvalidInput(f"The predictions already have a column {label_column!r}.",
                           hint="Rename the label column of the feedback table.")
    table = labels[[id_column, label_column]]
    table = table[table[id_column].notna()]
    missing_labels = int(table[label_column].isna().sum())
    table = table[table[label_column].notna()]
    keys = _keys(table[id_column]).to_numpy()
    duplicated = pd.Series(keys).duplicated(keep="last").to_numpy()
    by_id = pd.Series(table[label_column].to_numpy()[~duplicated], index=keys[~duplicated])
    pred_keys = _keys(predictions[id_column])
    joined = predictions.copy(deep=False)
    joined[label_column] = pred_keys.map(by_id).to_numpy()
    found = np.isin(keys, pred_keys.dropna().unique())
    unmatched = keys[~found]
    stats = FeedbackStats(
        labels=len(table) + missing_labels, matched=int(found.sum()),
        unmatched=int((~found).sum()), predictions=len(predictions),
        labelled=int(joined[label_column].notna().sum()),
        duplicate_ids=int(pd.Series(keys).duplicated().sum()),
        missing_labels=missing_labels,
        unmatched_examples=tuple(str(x) for x in unmatched[:_EXAMPLES]))
    return joined, stats
