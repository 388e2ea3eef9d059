"""build_profile: the reference statistics monitoring compares production data against."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from forgeline.data.inference import infer_schema
from forgeline.data.profile import bin_counts, build_profile, category_strings
from forgeline.data.schema import ColumnKind
from forgeline.errors import InvalidInput


@pytest.fixture
def profile(churn: pd.DataFrame) -> dict:
    return build_profile(churn, infer_schema(churn, "churned"))


def test_layout(profile: dict, churn: pd.DataFrame) -> None:
    assert profile["format"] == 1 and profile["rows"] == 3000
    assert set(profile["columns"]) == set(churn.columns) - {"churned", "customer_id"}  # no ids
    assert profile["target"]["name"] == "churned" and profile["target"]["kind"] == "boolean"
    assert profile["target"]["categories"].keys() == {"0", "1"}
    assert json.loads(json.dumps(profile)) == profile  # inf edges survive a JSON round trip


def test_numeric_column(profile: dict, churn: pd.DataFrame) -> None:
    stats = profile["columns"]["income"]
    values = churn["income"].dropna().to_numpy()
    assert stats["kind"] == "numeric" and stats["count"] == len(values)
    assert stats["missing_share"] == pytest.approx(churn["income"].isna().mean())
    assert stats["min"] == values.min() and stats["max"] == values.max()
    assert stats["mean"] == pytest.approx(values.mean())
    assert stats["std"] == pytest.approx(values.std(ddof=1))
    assert list(stats["quantiles"]) == ["p1", "p5", "p25", "p50", "p75", "p95", "p99"]
    assert stats["quantiles"]["p50"] == pytest.approx(np.median(values))
    edges, counts = stats["bins"]["edges"], stats["bins"]["counts"]
    assert edges[0] == -np.inf and edges[-1] == np.inf
    assert all(a < b for a, b in itertools.pairwise(edges))  # strictly increasing
    assert len(counts) == len(edges) - 1 == 20
    assert sum(counts) == stats["count"]
    assert max(counts) - min(counts) <= 2  # quantile edges: equal-frequency bins


def test_bins_of_every_numeric_column_add_up(profile: dict, churn: pd.DataFrame) -> None:
    for name, stats in profile["columns"].items():
        if stats["kind"] != "numeric":
            continue
        assert sum(stats["bins"]["counts"]) == stats["count"] == churn[name].notna().sum()
        assert bin_counts(churn[name], stats["bins"]["edges"]).tolist() == stats["bins"][
            "counts"]


def test_discrete_column_has_fewer_bins(profile: dict, churn: pd.DataFrame) -> None:
    bins = profile["columns"]["support_calls"]["bins"]
    assert len(bins["edges"]) < 22 and len(set(bins["edges"])) == len(bins["edges"])
    assert sum(bins["counts"]) == 3000


def test_bin_counts_for_production_data(profile: dict) -> None:
    edges = profile["columns"]["usage_score"]["bins"]["edges"]
    shifted = pd.Series([-100.0, np.nan, 0.0, 100.0, np.inf, -np.inf])
    counts = bin_counts(shifted, edges)
    assert counts.sum() == 5 and counts[0] == 2 and counts[-1] == 2
    with_nulls = [None, *edges[1:-1], None]  # a writer that turned the infinities into null
    assert bin_counts(shifted, with_nulls).tolist() == counts.tolist()


def test_categorical_boolean_datetime_text() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    words = np.array(["late", "refund", "broken", "great", "slow", "friendly", "price"])
    frame = pd.DataFrame({
        "shop": [f"shop{int(i)}" for i in rng.zipf(1.6, n) % 400],
        "flag": rng.choice([0.0, 1.0, np.nan], n),
        "when": pd.Series(pd.date_range("2024-03-01", periods=n, freq="h")).astype(str),
        "note": [" ".join(rng.choice(words, 8)) + " and more text here" for _ in range(n)],
        "y": rng.normal(size=n)})
    schema = infer_schema(frame, "y")
    assert [c.kind for c in schema.columns] == [ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN,
                                                ColumnKind.DATETIME, ColumnKind.TEXT]
    profile = build_profile(frame, schema)
    shop = profile["columns"]["shop"]
    assert len(shop["categories"]) == 50
    assert sum(shop["categories"].values()) + shop["other_count"] == n
    assert shop["n_unique"] == frame["shop"].nunique()
    assert list(shop["categories"].values()) == sorted(shop["categories"].values(),
                                                       reverse=True)
    flag = profile["columns"]["flag"]
    assert set(flag["categories"]) == {"0", "1"}  # 1.0 and 1 are the same category
    assert flag["count"] == frame["flag"].notna().sum()
    assert profile["columns"]["when"]["min"] == "2024-03-01T00:00:00"
    assert profile["columns"]["when"]["max"] == pd.Timestamp(frame["when"].iloc[-1]
                                                             ).isoformat()
    assert profile["columns"]["note"]["mean_length"] == pytest.approx(
        frame["note"].str.len().mean())
    assert profile["target"]["kind"] == "numeric" and sum(
        profile["target"]["bins"]["counts"]) == n


def test_profiles_only_the_columns_given(churn: pd.DataFrame) -> None:
    schema = infer_schema(churn, "churned")
    profile = build_profile(churn[["age", "plan"]], schema, bins=5)
    assert set(profile["columns"]) == {"age", "plan"} and profile["target"] is None
    assert len(profile["columns"]["age"]["bins"]["counts"]) == 5


def test_all_missing_and_constant_columns() -> None:
    frame = pd.DataFrame({"gone": [np.nan] * 50, "same": [3.0] * 50, "y": [0, 1] * 25})
    profile = build_profile(frame, infer_schema(frame, "y"))
    gone, same = profile["columns"]["gone"], profile["columns"]["same"]
    assert gone["count"] == 0 and gone["missing_share"] == 1.0 and gone["mean"] is None
    assert gone["bins"] == {"edges": [-np.inf, np.inf], "counts": [0]}
    assert same["bins"] == {"edges": [-np.inf, 3.0, np.inf], "counts": [0, 50]}
    assert same["std"] == 0.0
    json.dumps(profile)


def test_category_strings() -> None:
    assert category_strings(pd.Series([1.0, 2.0, np.nan, 2.5])).tolist()[:2] == ["1", "2"]
    assert category_strings(pd.Series([True, False])).tolist() == ["True", "False"]
    assert category_strings(pd.Series(["a", None])).isna().tolist() == [False, True]


def test_bins_must_be_positive(churn: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="Profile bins must be at least 1, not 0"):
        build_profile(churn, infer_schema(churn, "churned"), bins=0)
