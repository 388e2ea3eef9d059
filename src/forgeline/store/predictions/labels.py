"""Ground truth that arrives later, joined to the logged predictions by request id.

``forgeline feedback`` stores labels under ``<home>/feedback/<model>/`` as Parquet files of
(request_id, label, received_at). Only labels whose request id matches a logged prediction
are kept; the rest are counted and named, never silently dropped. :func:`join_feedback` is
the one join of labels to predictions, for the stored labels and for a feedback table
given to ``forgeline monitor --labels``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forgeline.config import Settings
from forgeline.errors import InvalidInput
from forgeline.store.predictions.format import LABEL, feedback_root, prediction_log_root
from forgeline.store.predictions.log import read_predictions
from forgeline.util.files import atomic_path

__all__ = ["FeedbackStats", "join_feedback", "labelled_predictions", "read_labels",
           "record_feedback"]

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
    if pd.api.types.is_float_dtype(values.dtype):  # whole numbers lose their ".0", at once
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
        whole = np.isfinite(numbers) & (np.floor(numbers) == numbers)
        text = values.astype(object).astype(str).to_numpy()
        text[whole] = numbers[whole].astype("int64").astype(str)
        return pd.Series(text, index=values.index, dtype=object).where(values.notna())
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


def record_feedback(settings: Settings, model: str, labels: pd.DataFrame, *,
                    id_column: str = "request_id", label_column: str) -> FeedbackStats:
    """Store the labels whose ids match logged predictions of ``model``.

    Raises:
        InvalidInput: a column is missing, nothing is logged for ``model``, or no label
            matches a logged prediction.
    """
    for column in (id_column, label_column):
        if column not in labels.columns:
            raise InvalidInput(f"The labels have no column {column!r} (columns: "
                               f"{', '.join(map(str, labels.columns[:10]))}).",
                               hint="Name the id and label columns of the labels.")
    predictions = read_predictions(prediction_log_root(settings), model)
    if predictions.empty:
        raise InvalidInput(f"No predictions are logged for {model!r}: nothing to attach "
                           "labels to.", hint="Serve the model first (forgeline serve).")
    _, stats = join_feedback(predictions, labels, id_column, label_column)
    if stats.matched == 0:
        raise InvalidInput(stats.message or "No label matched a logged prediction.",
                           hint=f"Check that id_column ({id_column!r}) names the request ids.")
    logged = set(predictions["request_id"].astype(str))
    keep = labels[labels[id_column].astype(str).isin(logged) & labels[label_column].notna()]
    stored = pd.DataFrame({"request_id": keep[id_column].astype(str),
                           LABEL: keep[label_column].to_numpy(),
                           "received_at": pd.Timestamp.now(tz="UTC").tz_localize(None)})
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    name = f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
    with atomic_path(feedback_root(settings) / model / name) as tmp:
        stored.to_parquet(tmp, index=False)
    return stats


def read_labels(settings: Settings, model: str) -> pd.DataFrame:
    """Every stored label of ``model``; the latest wins when an id was labelled twice."""
    files = sorted((feedback_root(settings) / model).glob("part-*.parquet"))
    if not files:
        return pd.DataFrame(columns=["request_id", LABEL, "received_at"])
    labels = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return labels.sort_values("received_at", kind="stable").drop_duplicates(
        "request_id", keep="last")


def labelled_predictions(settings: Settings, model: str,
                         since: dt.datetime | None = None) -> pd.DataFrame:
    """Logged (non-shadow) predictions of ``model`` that have a label, oldest first."""
    predictions = read_predictions(prediction_log_root(settings), model, since=since)
    labels = read_labels(settings, model)
    if predictions.empty or labels.empty:
        return predictions.iloc[:0].assign(**{LABEL: pd.Series(dtype=object)})
    joined, _ = join_feedback(predictions, labels, "request_id", LABEL)
    return joined[joined[LABEL].notna()].reset_index(drop=True)
