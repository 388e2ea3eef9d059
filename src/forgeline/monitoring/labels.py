"""Ground truth that arrives later: ``forgeline feedback`` stores labels by request id.

Labels live beside the prediction log, under ``<home>/feedback/<model>/``, as Parquet
files of (request_id, label, received_at). Only labels whose request id matches a logged
prediction are kept; the rest are counted and named, never silently dropped.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import uuid
from pathlib import Path

import pandas as pd

from forgeline.config import Settings
from forgeline.errors import InvalidInput
from forgeline.monitoring.feedback import FeedbackStats, join_feedback
from forgeline.serving.predlog import prediction_log_root, read_predictions

__all__ = ["feedback_root", "labelled_predictions", "read_labels", "record_feedback"]

LABEL = "label"


def feedback_root(settings: Settings) -> Path:
    return settings.home.absolute() / "feedback"


def record_feedback(settings: Settings, model: str, labels: pd.DataFrame, *,
                    id_column: str = "request_id", label_column: str) -> FeedbackStats:
    """Store the labels whose ids match logged predictions of ``model``."""
    for column in (id_column, label_column):
        if column not in labels.columns:
            raise InvalidInput(f"The labels have no column {column!r} (columns: "
                               f"{', '.join(map(str, labels.columns[:10]))}).",
                               hint="Name the columns with --id and --label.")
    predictions = read_predictions(prediction_log_root(settings), model)
    if predictions.empty:
        raise InvalidInput(f"No predictions are logged for {model!r}: nothing to attach "
                           "labels to.", hint="Serve the model first (forgeline serve).")
    _, stats = join_feedback(predictions, labels, id_column, label_column)
    if stats.matched == 0:
        raise InvalidInput(stats.message or "No label matched a logged prediction.",
                           hint=f"Check that --id names the request ids ({id_column!r}).")
    logged = set(predictions["request_id"].astype(str))
    keep = labels[labels[id_column].astype(str).isin(logged) & labels[label_column].notna()]
    stored = pd.DataFrame({"request_id": keep[id_column].astype(str),
                           LABEL: keep[label_column].to_numpy(),
                           "received_at": pd.Timestamp.now(tz="UTC").tz_localize(None)})
    directory = feedback_root(settings) / model
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".part-", suffix=".tmp")
    os.close(fd)
    stored.to_parquet(tmp, index=False)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    os.replace(tmp, directory / f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet")
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
