"""Retention: remove the prediction log's parts older than a cutoff, and their labels.

Retention is exact to the row: every prediction older than the cutoff goes, every newer
one stays. A part whose rows are all older is deleted; a part that straddles the cutoff
(parts are written per day and per flush, so only parts of the cutoff's own day can) is
rewritten without its older rows, atomically: a reader sees the whole old part or the new
one, never a half. A request's rows share one time, so a request is never split. The
labels of the request ids that only the removed rows held go with them: a label file
holding nothing else is deleted, one that also holds newer labels is rewritten without
them (atomically, like every write of the log). Date folders left empty are removed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from forgeline.config import Settings
from forgeline.errors import InvalidInput
from forgeline.store.predictions.format import PART_PREFIX, feedback_root, prediction_log_root
from forgeline.util.files import atomic_path

__all__ = ["Purged", "purge_predictions"]


@dataclass(frozen=True, slots=True)
class Purged:
    """One file removed (or, with ``dry_run``, that would be).

    Attributes:
        kind: ``"predictions"`` or ``"labels"``.
        path: the file.
        rows: the rows removed from it.
        action: ``"deleted"``, or ``"rewritten"`` (a part or a label file keeping its
            newer rows).
        newest: the newest prediction time among the rows removed (None for labels).
    """

    kind: str
    path: Path
    rows: int
    action: str
    newest: dt.datetime | None = None


def _stamps(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=["request_id", "ts"]).to_pandas()


def _keep_newer(path: Path, cutoff: pd.Timestamp) -> None:
    """Rewrite a straddling part with only its rows at or after ``cutoff``, atomically."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    since = pa.scalar(cutoff.to_pydatetime(), type=table.schema.field("ts").type)
    with atomic_path(path) as tmp:
        pq.write_table(table.filter(pc.greater_equal(table["ts"], since)), tmp,
                       compression="zstd")


def purge_predictions(settings: Settings, model: str, older_than_s: float, *,
                      now: dt.datetime | None = None, dry_run: bool = False) -> list[Purged]:
    """Remove ``model``'s predictions older than ``older_than_s`` seconds, and their labels.

    Args:
        settings: where the log and the labels live.
        model: the model name.
        older_than_s: the age beyond which a prediction goes (``90d`` is 7,776,000 s).
        now: the time the age is measured from; the current time by default.
        dry_run: list what would go, remove nothing.

    Returns:
        What was (or would be) removed: prediction parts first (deleted, or rewritten
        without their older rows), then label files.

    Raises:
        InvalidInput: a non-positive age, or a model name that is not a plain name.
    """
    if not older_than_s > 0:
        raise InvalidInput(f"The age must be positive, not {older_than_s}.",
                           hint="For example --older-than 90d.")
    if not model or any(c in model for c in "/\\") or model in (".", ".."):
        raise InvalidInput(f"Invalid model name {model!r}.")
    now = now or dt.datetime.now(dt.UTC)
    cutoff = pd.Timestamp(now).tz_convert("UTC") if pd.Timestamp(now).tzinfo else \
        pd.Timestamp(now).tz_localize("UTC")
    cutoff -= pd.Timedelta(seconds=older_than_s)
    directory = prediction_log_root(settings) / model
    removed: list[Purged] = []
    old_ids: set[str] = set()
    kept_ids: set[str] = set()
    for path in sorted(directory.glob(f"date=*/{PART_PREFIX}*.parquet")):
        stamps = _stamps(path)
        old = stamps["ts"] < cutoff
        ids = stamps["request_id"].astype(str)
        kept_ids |= set(ids[~old])
        if not old.any():
            continue
        old_ids |= set(ids[old])
        removed.append(Purged("predictions", path, int(old.sum()),
                              "deleted" if old.all() else "rewritten",
                              stamps["ts"][old].max().to_pydatetime()))
    gone = old_ids - kept_ids
    if gone:
        removed += _labels(feedback_root(settings) / model, gone, dry_run)
    if not dry_run:
        for item in removed:
            if item.kind == "predictions" and item.action == "rewritten":
                _keep_newer(item.path, cutoff)
            elif item.kind == "predictions":
                item.path.unlink(missing_ok=True)
        for day in directory.glob("date=*"):
            if day.is_dir() and not any(day.iterdir()):
                day.rmdir()
    return removed


def _labels(directory: Path, gone: set[str], dry_run: bool) -> list[Purged]:
    """Remove the labels of ``gone`` request ids from the label files."""
    removed = []
    for path in sorted(directory.glob("part-*.parquet")):
        labels = pd.read_parquet(path)
        drop = labels["request_id"].astype(str).isin(gone)
        count = int(drop.sum())
        if not count:
            continue
        whole = count == len(labels)
        removed.append(Purged("labels", path, count, "deleted" if whole else "rewritten"))
        if dry_run:
            continue
        if whole:
            path.unlink(missing_ok=True)
        else:
            with atomic_path(path) as tmp:
                labels[~drop].to_parquet(tmp, index=False)
    return removed
