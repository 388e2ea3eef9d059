"""The prediction log: its format and paths, its writer and reader, and the labels joined
to it. Serving appends to it, monitoring and retraining read it; it belongs to neither.

Layout::

    <home>/predictions/<model>/date=YYYY-MM-DD/part-<HHMMSSffffff>-<uuid>.parquet
    <home>/feedback/<model>/part-<YYYYmmddTHHMMSS>-<uuid>.parquet

One row per predicted row, with the columns

    request_id  string     the request's id (several rows when it sent several)
    row         int32      the row's position in its request
    ts          timestamp  when it was predicted (UTC, microseconds)
    model_version int64    the model version (-1: a package outside the registry)
    runtime     string     "native" or "onnxruntime"
    shadow      bool       predicted by the shadow model (not what the client got)
    <inputs>               one column per model input, under its signature name; a name
                           that clashes with one of these reserved names (or starts with
                           ``proba_``) is stored as ``input_<name>`` (:func:`stored_name`)
    prediction             the label (classifiers) or value (regression)
    proba_<class>  float64 one per class, for classifiers (:func:`proba_column`)

Labels (``forgeline feedback``) are kept as (request_id, label, received_at) for the
request ids that match a logged prediction, and joined back by request id.

Retention: :func:`purge_predictions` (``forgeline predictions purge``) removes parts older
than a cutoff and the labels joined to them.

Files are written under a temporary name (a leading dot, ignored by readers) and renamed
into place, so a reader never meets a partial file.
"""

from __future__ import annotations

from forgeline.store.predictions.format import (
    INPUT_PREFIX,
    LABEL,
    PREDICTION,
    RESERVED_COLUMNS,
    feedback_root,
    prediction_log_root,
    proba_column,
    proba_columns,
    stored_name,
)
from forgeline.store.predictions.labels import (
    FeedbackStats,
    join_feedback,
    labelled_predictions,
    read_labels,
    record_feedback,
)
from forgeline.store.predictions.log import read_predictions, write_predictions
from forgeline.store.predictions.retention import Purged, purge_predictions

__all__ = ["INPUT_PREFIX", "LABEL", "PREDICTION", "RESERVED_COLUMNS", "FeedbackStats",
           "Purged", "feedback_root", "join_feedback", "labelled_predictions",
           "prediction_log_root", "proba_column", "proba_columns", "purge_predictions",
           "read_labels", "read_predictions", "record_feedback", "stored_name",
           "write_predictions"]
