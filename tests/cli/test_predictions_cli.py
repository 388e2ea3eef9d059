"""``forgeline predictions purge``: retention of the prediction log and its labels."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgeline.config import load_settings
from forgeline.errors import InvalidInput
from forgeline.store.predictions import (
    prediction_log_root,
    purge_predictions,
    read_labels,
    read_predictions,
    record_feedback,
    write_predictions,
)
from tests.cli.conftest import invoke, raised

NOW = dt.datetime.now(dt.UTC)


def _log(ids: list[str], days_ago: float) -> None:
    settings = load_settings()
    ts = pd.Timestamp(NOW - dt.timedelta(days=days_ago))
    log = pd.DataFrame({"request_id": ids, "row": np.zeros(len(ids), dtype=np.int32),
                        "ts": pd.DatetimeIndex([ts] * len(ids)), "model_version": 1,
                        "runtime": "native", "shadow": False})
    write_predictions(prediction_log_root(settings), "fraud", log,
                      pd.DataFrame({"amount": np.arange(len(ids), dtype=float)}),
                      pd.DataFrame({"prediction": ["ok"] * len(ids)}))


@pytest.fixture
def history() -> None:
    """Parts 120 and 95 days old, one 10 days old; labels for old and new ids."""
    _log(["a1", "a2"], 120)
    _log(["b1", "b2", "b3"], 95)
    _log(["c1", "c2"], 10)
    settings = load_settings()
    record_feedback(settings, "fraud", pd.DataFrame({"request_id": ["a1", "a2"],
                                                     "y": [0, 1]}), label_column="y")
    record_feedback(settings, "fraud", pd.DataFrame({"request_id": ["b1", "c1"],
                                                     "y": [1, 0]}), label_column="y")


def test_dry_run_lists_and_removes_nothing(history: None) -> None:
    result = invoke("predictions", "purge", "fraud", "--older-than", "90d", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "fraud: would remove (older than 90d)" in result.output
    assert result.output.count("would be deleted") == 3  # two parts, one label file
    assert "would be rewritten" in result.output
    assert "would remove 2 parts (5 predictions) and 3 labels" in result.output
    assert len(read_predictions(prediction_log_root(load_settings()), "fraud")) == 7
    assert len(read_labels(load_settings(), "fraud")) == 4


def test_purge_removes_old_parts_and_their_labels(history: None) -> None:
    result = invoke("predictions", "purge", "fraud", "--older-than", "90d")
    assert result.exit_code == 0, result.output
    assert "removed 2 parts (5 predictions) and 3 labels" in result.output
    root = prediction_log_root(load_settings())
    left = read_predictions(root, "fraud")
    assert sorted(left["request_id"]) == ["c1", "c2"]
    assert len(list((root / "fraud").glob("date=*"))) == 1  # empty day folders go too
    labels = read_labels(load_settings(), "fraud")
    assert labels["request_id"].tolist() == ["c1"]  # rewritten file keeps the new label
    again = invoke("predictions", "purge", "fraud", "--older-than", "90d")
    assert again.exit_code == 0
    assert "Nothing in the log of fraud is older than 90d." in again.output


def test_a_younger_cutoff_keeps_everything_newer(history: None) -> None:
    removed = purge_predictions(load_settings(), "fraud", 100 * 86400.0)
    assert [(p.kind, p.rows, p.action) for p in removed] == [
        ("predictions", 2, "deleted"), ("labels", 2, "deleted")]
    left = read_predictions(prediction_log_root(load_settings()), "fraud")
    assert sorted(left["request_id"]) == ["b1", "b2", "b3", "c1", "c2"]


def test_a_bad_age_is_one_line() -> None:
    result = invoke("predictions", "purge", "fraud", "--older-than", "ninety")
    assert result.exit_code == 2
    assert isinstance(raised(result), InvalidInput)
    assert result.output.strip().splitlines() == [
        "error: Invalid duration 'ninety' for --older-than. Use a number and a unit, "
        "such as 90s, 5m, 24h or 7d."]


def test_an_unsafe_model_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="Invalid model name"):
        purge_predictions(load_settings(), "../x", 86400.0)


def test_a_part_straddling_the_cutoff_keeps_only_its_newer_rows() -> None:
    settings = load_settings()
    now = dt.datetime(2026, 6, 10, 12, tzinfo=dt.UTC)
    stamps = [now - dt.timedelta(hours=h) for h in (30, 28, 20)]  # all on 9 June
    log = pd.DataFrame({"request_id": ["old1", "old2", "new1"],
                        "row": np.zeros(3, dtype=np.int32), "ts": pd.DatetimeIndex(stamps),
                        "model_version": 1, "runtime": "native", "shadow": False})
    root = prediction_log_root(settings)
    write_predictions(root, "fraud", log, pd.DataFrame({"amount": [1.0, 2.0, 3.0]}),
                      pd.DataFrame({"prediction": ["ok", "fraud", "ok"]}))
    (part,) = (root / "fraud").rglob("*.parquet")
    record_feedback(settings, "fraud", pd.DataFrame({"request_id": ["old1", "new1"],
                                                     "y": [0, 1]}), label_column="y")
    listed = purge_predictions(settings, "fraud", 86400.0, now=now, dry_run=True)
    assert [(p.kind, p.path, p.rows, p.action) for p in listed] == [
        ("predictions", part, 2, "rewritten"), ("labels", listed[1].path, 1, "rewritten")]
    assert listed[0].newest == stamps[1]
    assert len(read_predictions(root, "fraud")) == 3  # a dry run changes nothing
    assert purge_predictions(settings, "fraud", 86400.0, now=now) == listed
    left = read_predictions(root, "fraud")
    assert left["request_id"].tolist() == ["new1"] and left["amount"].tolist() == [3.0]
    assert sorted(p.name for p in part.parent.iterdir()) == [part.name]  # no temporary
    assert read_labels(settings, "fraud")["request_id"].tolist() == ["new1"]
    assert purge_predictions(settings, "fraud", 86400.0, now=now) == []
