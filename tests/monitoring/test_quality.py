"""Data quality: missing shares, ranges, unseen categories, types, schema, duplicates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeline.data.findings import Severity
from forgeline.data.profile import column_profile, duplicate_share
from forgeline.data.schema import ColumnKind
from forgeline.monitoring import MonitorConfig, monitor
from forgeline.monitoring.binning import bin_column
from tests.monitoring.conftest import FEATURES, Model, make_frame

NO_WINDOWS = MonitorConfig(window=None)


def _issues(result, check: str) -> list:
    return [i for i in result.quality.issues if i.check == check]


def test_a_clean_sample_has_no_issues(model: Model) -> None:
    result = monitor(model.predictor, make_frame(2_000, 21)[FEATURES], config=NO_WINDOWS)
    assert result.quality.issues == []
    assert result.quality.missing_columns == [] and result.quality.new_columns == []
    row = result.quality.columns["n0"]
    assert row["missing_share"] == 0 and row["reference_missing_share"] == 0
    assert row["out_of_range_share"] < 0.01


def test_missing_range_unseen_and_type_problems_are_found(model: Model) -> None:
    frame = make_frame(2_000, 22)[FEATURES]
    frame.loc[frame.index % 4 == 0, "n3"] = np.nan  # 25% missing, none in training
    frame.loc[:99, "n4"] = 1e6  # 5% above the training maximum
    frame["c2"] = frame["c2"].where(frame.index % 10 != 0, "brand-new")  # 10% unseen
    frame["n5"] = frame["n5"].astype(object)
    frame.loc[:39, "n5"] = "oops"  # text in a numeric column
    result = monitor(model.predictor, frame, config=NO_WINDOWS)
    missing = _issues(result, "missing_share")
    assert [i.columns for i in missing] == [("n3",)] and missing[0].severity is Severity.WARN
    assert "25.0% missing, 0.0% in training (+25.0%)" in missing[0].message
    assert result.values()["missing_share.n3"] == pytest.approx(0.25)
    (oor,) = _issues(result, "out_of_range")
    assert oor.columns == ("n4",) and "100 value(s) (5.0%) outside the training range" in \
        oor.message
    (unseen,) = _issues(result, "unseen_categories")
    assert unseen.columns == ("c2",) and "'brand-new'" in unseen.message
    assert result.quality.columns["c2"]["unseen"] == 200
    typed = [i for i in _issues(result, "type_change") if i.severity is Severity.WARN]
    assert [i.columns for i in typed] == [("n5",)]
    assert "40 value(s) (2.0%) that are not numbers, e.g. 'oops'" in typed[0].message
    assert result.features["n5"].n_current == 1_960  # the text is left out of drift


def test_unseen_is_unknowable_past_the_top_50_without_a_complete_category_list(
        model: Model) -> None:
    """c3 has 60 levels: the profile keeps 50 and an other bucket. The signature recorded
    all 60, so unseen values are still known; a profile alone (as a dict) cannot tell a
    rare training category from a new one, and says so with None rather than guessing."""
    frame = make_frame(3_000, 23)[FEATURES]
    frame.loc[:29, "c3"] = "never-seen"
    with_signature = monitor(model.predictor, frame, config=NO_WINDOWS)
    assert with_signature.quality.columns["c3"]["unseen"] == 30
    profile_only = monitor(model.predictor, frame, config=NO_WINDOWS,
                           reference=dict(model.predictor.profile))
    assert profile_only.quality.columns["c3"]["unseen"] == 30  # the signature still helps
    stats = model.predictor.profile["columns"]["c3"]
    assert stats["other_count"] > 0 and len(stats["categories"]) == 50
    binned = bin_column("c3", frame["c3"], stats, known=None)
    assert binned.unseen is None  # no complete list: values outside the top 50 -> (other)
    assert binned.labels[-1] == "(other)"


def test_schema_changes_are_reported_and_the_rest_is_still_checked(model: Model) -> None:
    frame = make_frame(1_000, 24)[FEATURES].drop(columns=["n7", "c2"])
    frame["extra"] = 1
    result = monitor(model.predictor, frame, config=NO_WINDOWS)
    (missing,) = _issues(result, "missing_columns")
    assert missing.severity is Severity.FAIL and set(missing.columns) == {"n7", "c2"}
    assert "2 signature column(s) missing from the current data: n7, c2" in missing.message
    assert result.quality.new_columns == ["extra"]
    assert set(result.skipped) == {"n7", "c2"} and len(result.features) == 23
    assert any("missing from the current data" in w for w in result.warnings)


def test_duplicate_share_is_exact() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=1000), "b": rng.choice(list("xyz"), 1000)})
    frame = pd.concat([frame, frame.iloc[:50], frame.iloc[:10]], ignore_index=True)
    frame.loc[[5, 1005, 1055], "a"] = np.nan  # row 5 and its copies: missing values match
    frame.loc[1001, "b"] = "w"  # no longer a copy of row 1
    expected = frame.duplicated().mean()
    assert expected == pytest.approx(59 / 1060)
    assert duplicate_share(frame, ["a", "b"]) == pytest.approx(expected)
    profile = column_profile(frame["a"], ColumnKind.NUMERIC)
    buckets = [bin_column("a", frame["a"], profile).buckets]  # the bucket pre-filter path
    assert duplicate_share(frame, ["a", "b"], buckets) == pytest.approx(expected)
    assert duplicate_share(frame, []) is None


def test_duplicates_above_the_training_share_are_an_issue(model: Model) -> None:
    frame = make_frame(1_000, 25)[FEATURES]
    frame = pd.concat([frame, frame.iloc[:200]], ignore_index=True)
    result = monitor(model.predictor, frame, config=NO_WINDOWS)
    assert result.quality.duplicate_share == pytest.approx(200 / 1200)
    assert result.quality.reference_duplicate_share == 0.0
    assert [i.check for i in result.quality.issues] == ["duplicates"]
