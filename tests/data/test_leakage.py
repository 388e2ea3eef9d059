"""check_leakage finds planted leaks, stays quiet on a clean dataset; enforce raises."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeline.data.findings import Finding, Severity
from forgeline.data.inference import infer_schema
from forgeline.data.leakage import LeakageSpec, check_leakage, enforce
from forgeline.data.schema import ColumnKind, Schema
from forgeline.data.split import split_frame
from forgeline.data.target_leak import feature_scores
from forgeline.entities import Policy, SplitStrategy, Task
from forgeline.errors import LeakageDetected
from tests.data.conftest import churn_frame

RNG = np.random.default_rng(5)


def _check(frame: pd.DataFrame, *, target: str = "churned", task: Task = Task.BINARY,
           policy: LeakageSpec | None = None, strategy: SplitStrategy | None = None,
           time_column: str | None = "signup", group_column: str | None = None,
           overrides: dict[str, ColumnKind] | None = None, seed: int = 0,
           ) -> tuple[list[Finding], Schema]:
    schema = infer_schema(frame, target, overrides)
    train, test = split_frame(frame, strategy, 0.25, seed, target=target, task=task,
                              time_column=time_column, group_column=group_column,
                              allow_random_on_time=True)
    findings = check_leakage(frame.loc[train], frame.loc[test], schema, task,
                             policy or LeakageSpec(), time_column=time_column,
                             group_column=group_column, seed=seed)
    return findings, schema


def _by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


def test_clean_dataset_has_no_findings(churn: pd.DataFrame) -> None:
    findings, _ = _check(churn)
    assert findings == []
    enforce(findings)


def test_a_moderately_predictive_feature_is_not_a_leak(churn: pd.DataFrame) -> None:
    schema = infer_schema(churn, "churned")
    columns = ["age", "income", "region", "plan", "autopay", "support_calls", "usage_score"]
    scores, rows = feature_scores(churn, schema, Task.BINARY, columns, seed=0)
    assert rows == 3000 and set(scores) == set(columns)
    assert 0.75 < scores["usage_score"] < 0.87  # its true AUC is about 0.82
    assert max(s for c, s in scores.items() if c != "usage_score") < 0.65


def test_target_leak_numeric(churn: pd.DataFrame) -> None:
    frame = churn.assign(refund_amount=churn["churned"] * 20 + RNG.normal(0, 0.01, len(churn)))
    findings, _ = _check(frame)
    leak = _by_check(findings)["target_leak"]
    assert leak.severity is Severity.FAIL and leak.columns == ("refund_amount",)
    assert leak.details["metric"] == "roc_auc" and leak.details["threshold"] == 0.98
    assert leak.details["scores"]["refund_amount"] > 0.99
    assert set(leak.details["scores"]) == {"age", "income", "region", "plan", "autopay",
                                           "support_calls", "usage_score", "refund_amount"}
    assert "Target leak: 'refund_amount' (roc_auc 1.000) alone predict(s) 'churned'" in (
        leak.message)
    assert "data.drop" in leak.message and "leakage.target_leak: warn" in leak.message


def test_target_leak_categorical_and_missingness(churn: pd.DataFrame) -> None:
    frame = churn.assign(
        cancel_reason=np.where(churn["churned"] == 1, RNG.choice(["price", "moved"], 3000),
                               None),
        closed_on=np.where(churn["churned"] == 1, RNG.normal(size=3000), np.nan))
    findings, _ = _check(frame, policy=LeakageSpec(target_leak=Policy.WARN))
    leak = _by_check(findings)["target_leak"]
    assert leak.severity is Severity.WARN
    assert set(leak.columns) == {"cancel_reason", "closed_on"}


def test_target_leak_regression_and_multiclass() -> None:
    n = 4000
    y = RNG.lognormal(3, 1, n)  # a skewed target: ranks keep the leak visible
    frame = pd.DataFrame({"total_with_tax": y * 1.21, "noise": RNG.normal(size=n),
                          "shop": RNG.choice(list("abcdef"), n), "price": y})
    findings, _ = _check(frame, target="price", task=Task.REGRESSION, time_column=None)
    leak = _by_check(findings)["target_leak"]
    assert leak.columns == ("total_with_tax",) and leak.details["metric"] == "r2"
    assert leak.details["scores"]["noise"] < 0.05

    tier = RNG.integers(0, 4, n)
    frame = pd.DataFrame({"tier_code": np.array(["bronze", "silver", "gold", "vip"])[tier],
                          "spend": RNG.normal(size=n) + 0.5 * tier, "tier": tier})
    findings, _ = _check(frame, target="tier", task=Task.MULTICLASS, time_column=None)
    leak = _by_check(findings)["target_leak"]
    assert leak.columns == ("tier_code",) and leak.details["metric"] == "balanced_accuracy"
    assert leak.details["scores"]["spend"] < 0.6


def test_copied_rows_overlap(churn: pd.DataFrame) -> None:
    schema = infer_schema(churn, "churned")
    train, test = churn.iloc[:2250], churn.iloc[2250:]
    copies = train.sample(60, random_state=0)  # 60 of 810 test rows: 7.4%
    findings = check_leakage(train, pd.concat([test, copies]), schema, Task.BINARY,
                             LeakageSpec(), time_column=None, group_column=None, seed=0)
    overlap = _by_check(findings)["train_test_overlap"]
    assert overlap.severity is Severity.FAIL
    assert overlap.details["copies"] == overlap.details["identical_rows"] == 60
    assert "60 test rows (7.4%) are copies of training rows" in overlap.message
    compared = overlap.details["columns"]
    assert "customer_id" not in compared and "churned" in compared  # ids would hide copies
    assert len(overlap.details["examples"]) == 5


def test_common_combinations_are_not_copies() -> None:
    n = 3000
    frame = pd.DataFrame({"plan": RNG.choice(["a", "b", "c"], n),
                          "region": RNG.choice(["n", "s"], n),
                          "calls": RNG.integers(0, 3, n), "churned": RNG.integers(0, 2, n)})
    findings, _ = _check(frame, time_column=None)
    overlap = _by_check(findings)["train_test_overlap"]
    assert overlap.severity is Severity.INFO and overlap.details["copies"] == 0
    assert overlap.details["identical_share"] > 0.9
    assert "common combinations of values explain them" in overlap.message
    enforce(findings)


def test_time_travel(churn: pd.DataFrame) -> None:
    findings, _ = _check(churn, strategy=SplitStrategy.RANDOM)
    travel = _by_check(findings)["time_travel"]
    assert travel.severity is Severity.FAIL and travel.columns == ("signup",)
    assert travel.details["rows"] > 600
    assert travel.details["newest_train"].startswith("2024-12")
    assert travel.details["oldest_test"].startswith("2024-01")
    assert "older than the newest training row" in travel.message


def test_group_overlap(churn: pd.DataFrame) -> None:
    frame = churn.assign(household=[f"h{i}" for i in RNG.integers(0, 300, len(churn))])
    findings, _ = _check(frame, strategy=SplitStrategy.STRATIFIED, time_column=None,
                         group_column="household")
    shared = _by_check(findings)["group_overlap"]
    assert shared.severity is Severity.FAIL and shared.details["groups"] > 100
    assert len(shared.details["examples"]) == 5
    assert "groups of 'household' are on both sides of the split" in shared.message
    assert "household" not in _by_check(findings).get("target_leak", shared).details.get(
        "scores", {})
    findings, _ = _check(frame, time_column=None, group_column="household")
    assert "group_overlap" not in _by_check(findings)


def test_forced_id_columns(churn: pd.DataFrame) -> None:
    frame = churn.assign(account_id=RNG.permutation(len(churn)) + 10_000)
    findings, _ = _check(frame, overrides={"customer_id": ColumnKind.CATEGORICAL,
                                           "account_id": ColumnKind.NUMERIC})
    ids = _by_check(findings)["id_columns"]
    assert ids.severity is Severity.WARN
    assert set(ids.columns) == {"customer_id", "account_id"}
    assert "features.id" in ids.message


def test_ignore_skips_checks(churn: pd.DataFrame) -> None:
    frame = churn.assign(refund=churn["churned"])
    off = LeakageSpec(target_leak=Policy.IGNORE, time_travel=Policy.IGNORE,
                      train_test_overlap=Policy.IGNORE)
    findings, _ = _check(frame, policy=off, strategy=SplitStrategy.RANDOM)
    assert findings == []


def test_enforce_lists_every_failure(churn: pd.DataFrame) -> None:
    frame = churn.assign(refund=churn["churned"].astype(bool))
    findings, _ = _check(frame, strategy=SplitStrategy.RANDOM,
                         overrides={"customer_id": ColumnKind.CATEGORICAL})
    assert {f.check: f.severity for f in findings} == {
        "target_leak": Severity.FAIL, "time_travel": Severity.FAIL,
        "id_columns": Severity.WARN}
    with pytest.raises(LeakageDetected, match=r"^2 leakage check\(s\) failed: \(1\) "
                                              r"\[target_leak\] .*\(2\) \[time_travel\]") as e:
        enforce(findings)
    assert "id_columns" not in e.value.message
    assert "leakage: section" in (e.value.hint or "")
    enforce([f for f in findings if f.severity is not Severity.FAIL])


def test_another_seed_of_the_clean_data_stays_clean() -> None:
    findings, _ = _check(churn_frame(4000, seed=9), seed=9)
    assert [f for f in findings if f.severity is not Severity.INFO] == []


def test_an_id_that_grows_with_time_is_named(churn: pd.DataFrame) -> None:
    from forgeline.data.inference import infer_schema

    frame = churn.assign(ticket=[f"T{i:06d}" for i in range(len(churn))])  # sorted by signup
    schema = infer_schema(frame, "churned", {}, ())
    train, test = frame.iloc[:2400], frame.iloc[2400:]
    findings = _by_check(check_leakage(train, test, schema, Task.BINARY, LeakageSpec(),
                                       time_column="signup", group_column=None, seed=0))
    grows = findings["id_grows_with_time"]
    assert grows.severity is Severity.INFO and grows.columns == ("ticket",)
    assert grows.details["rank_correlation"] == pytest.approx(1.0)
    assert "'ticket' grows with 'signup'" in grows.message
    # customer_id is a shuffled id: no trend, nothing said
    assert all(f.columns != ("customer_id",) for f in findings.values())
