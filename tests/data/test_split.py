"""split_frame: the properties of each strategy, and its errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeline.data.split import split_frame
from forgeline.entities import SplitStrategy, Task
from forgeline.errors import InvalidInput, LeakageDetected

S = SplitStrategy


def _split(frame: pd.DataFrame, strategy: SplitStrategy | None = None, test_size: float = 0.2,
           seed: int = 0, **kwargs: object) -> tuple[pd.Index, pd.Index]:
    options = {"target": "churned", "task": Task.BINARY, "time_column": None,
               "group_column": None, **kwargs}
    return split_frame(frame, strategy, test_size, seed, **options)


def _check_partition(frame: pd.DataFrame, train: pd.Index, test: pd.Index) -> None:
    assert train.intersection(test).empty
    assert len(train) + len(test) == len(frame)
    for part in (train, test):  # labels come in the frame's own row order
        assert (np.diff(frame.index.get_indexer(part)) > 0).all()


def test_time_split(churn: pd.DataFrame) -> None:
    frame = churn.sample(frac=1.0, random_state=1)  # time order is not row order
    frame.index = frame.index + 1000
    train, test = _split(frame, time_column="signup")
    _check_partition(frame, train, test)
    assert frame.loc[train, "signup"].max() < frame.loc[test, "signup"].min()
    assert len(test) == 600


def test_time_split_sends_boundary_ties_to_test() -> None:
    days = np.repeat(pd.date_range("2024-01-01", periods=10, freq="D"), 10)
    frame = pd.DataFrame({"day": days.astype(str), "churned": np.arange(100) % 2})
    train, test = _split(frame, test_size=0.25, time_column="day")  # text times
    times = pd.to_datetime(frame["day"])
    assert times[train].max() < times[test].min()
    assert len(test) == 30  # 25 asked; the boundary day goes to test whole
    numeric = frame.assign(day=np.repeat(np.arange(10), 10))
    train, test = _split(numeric, S.TIME, test_size=0.25, time_column="day")
    assert numeric.loc[train, "day"].max() < numeric.loc[test, "day"].min()


def test_time_split_errors(churn: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match=r"The time column 'when' is not in the data"):
        _split(churn, time_column="when")
    gaps = churn.assign(signup=churn["signup"].astype(object))
    gaps.loc[gaps.index[:3], "signup"] = None
    gaps.loc[gaps.index[3], "signup"] = "soon"
    with pytest.raises(InvalidInput, match=r"'signup' has 4 rows without a time \(1 of them "
                                           r"are not dates, e\.g\. 'soon'\)"):
        _split(gaps, time_column="signup")
    with pytest.raises(InvalidInput, match="A time split leaves no training rows"):
        _split(churn.assign(signup=pd.Timestamp("2024-05-01")), time_column="signup")
    with pytest.raises(InvalidInput, match=r"split\.strategy is time, but no time column"):
        _split(churn, S.TIME)


def test_group_split(churn: pd.DataFrame) -> None:
    frame = churn.assign(household=np.random.default_rng(0).integers(0, 400, len(churn)))
    frame.loc[frame.index[:25], "household"] = np.nan  # one group of its own
    train, test = _split(frame, group_column="household", seed=3)
    _check_partition(frame, train, test)
    train_groups = set(frame.loc[train, "household"].fillna(-1))
    test_groups = set(frame.loc[test, "household"].fillna(-1))
    assert not train_groups & test_groups
    assert 0.1 < len(test) / len(frame) < 0.3
    again = _split(frame, group_column="household", seed=3)
    assert again[1].equals(test)
    assert not _split(frame, group_column="household", seed=4)[1].equals(test)


def test_group_split_errors(churn: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="The group column 'family' is not in the data"):
        _split(churn, group_column="family")
    with pytest.raises(InvalidInput, match="A group split needs at least 2 groups; 'one' has 1"):
        _split(churn.assign(one="x"), group_column="one")
    with pytest.raises(InvalidInput, match=r"split\.strategy is group, but no group column"):
        _split(churn, S.GROUP)


def test_stratified_split_keeps_class_shares(churn: pd.DataFrame) -> None:
    frame = churn.assign(tier=np.random.default_rng(0).choice(["a", "b", "c"], 3000,
                                                               p=[0.8, 0.15, 0.05]))
    train, test = _split(frame, target="tier", task=Task.MULTICLASS, test_size=0.3, seed=11)
    _check_partition(frame, train, test)
    overall = frame["tier"].value_counts(normalize=True)
    for part in (train, test):
        shares = frame.loc[part, "tier"].value_counts(normalize=True)
        assert (shares - overall).abs().max() < 0.02
    assert len(test) == 900
    assert _split(frame, target="tier", task=Task.MULTICLASS, test_size=0.3, seed=11)[1].equals(
        test)
    other = _split(frame, target="tier", task=Task.MULTICLASS, test_size=0.3, seed=12)[1]
    assert not other.equals(test)


def test_stratified_errors(churn: pd.DataFrame) -> None:
    frame = churn.assign(label=["a", "b"] * 1499 + ["c", "d"])
    with pytest.raises(InvalidInput, match=r"at least 2 rows of each class; 'label' has 'c' "
                                           r"\(1 row\), 'd' \(1 row\)") as e:
        _split(frame, target="label", task=Task.MULTICLASS)
    assert "strategy: random" in (e.value.hint or "")
    with pytest.raises(InvalidInput, match="A stratified split needs classes, but the task is "
                                           "regression"):
        _split(churn, S.STRATIFIED, target="income", task=Task.REGRESSION)
    tiny = pd.DataFrame({"churned": list("aabbccdd")})
    with pytest.raises(InvalidInput, match="Cannot stratify 4 classes over 8 rows"):
        _split(tiny, test_size=0.2)


def test_random_split(churn: pd.DataFrame) -> None:
    train, test = _split(churn, target="income", task=Task.REGRESSION, seed=5)
    _check_partition(churn, train, test)
    assert len(test) == 600
    assert _split(churn, target="income", task=Task.REGRESSION, seed=5)[1].equals(test)
    assert not _split(churn, S.RANDOM, seed=6)[1].equals(test)


@pytest.mark.parametrize("strategy", [None, S.RANDOM, S.STRATIFIED])
def test_random_split_of_time_ordered_data(churn: pd.DataFrame,
                                           strategy: SplitStrategy | None) -> None:
    if strategy is None:  # left to itself it splits by time
        train, test = _split(churn, time_column="signup")
        assert churn.loc[train, "signup"].max() < churn.loc[test, "signup"].min()
        return
    with pytest.raises(LeakageDetected, match=f"A {strategy.value} split of time-ordered data "
                                              r"\(data.time_column: signup\) lets the model "
                                              "see the future") as e:
        _split(churn, strategy, time_column="signup")
    assert "split.strategy: time" in (e.value.hint or "")
    assert "split.allow_random_on_time: true" in (e.value.hint or "")
    train, test = _split(churn, strategy, time_column="signup", allow_random_on_time=True)
    _check_partition(churn, train, test)


def test_general_errors(churn: pd.DataFrame) -> None:
    for size in (0.0, 1.0, 1.5):
        with pytest.raises(InvalidInput, match=f"split.test_size must be between 0 and 1, not "
                                               f"{size}"):
            _split(churn, test_size=size)
    with pytest.raises(InvalidInput, match="index has duplicate labels") as e:
        _split(pd.concat([churn, churn]))
    assert "reset_index" in (e.value.hint or "")
    with pytest.raises(InvalidInput, match=r"Cannot split 1 row\(s\)"):
        _split(churn.iloc[:1], S.RANDOM)
    with pytest.raises(InvalidInput, match=r"The random split leaves the training part empty "
                                           r"\(2 rows, test_size 0\.8\)"):
        _split(churn.iloc[:2], S.RANDOM, test_size=0.8)


def _with_copies(churn: pd.DataFrame, share: float = 0.15, seed: int = 3) -> pd.DataFrame:
    """``churn`` plus exact copies of some of its rows (natural repeats: other customers
    with the same attributes), shuffled in."""
    rng = np.random.default_rng(seed)
    copies = churn.iloc[rng.choice(len(churn), int(share * len(churn)), replace=False)]
    both = pd.concat([churn, copies, copies.iloc[: len(copies) // 3]], ignore_index=True)
    return both.iloc[rng.permutation(len(both))].reset_index(drop=True)


@pytest.mark.parametrize("strategy", [SplitStrategy.RANDOM, SplitStrategy.STRATIFIED])
def test_copies_never_straddle_the_split(churn: pd.DataFrame, strategy: SplitStrategy) -> None:
    from forgeline.data.leakage import copy_groups

    frame = _with_copies(churn.drop(columns=["customer_id", "signup"]))
    copies = copy_groups(frame, list(frame.columns))
    assert (copies >= 0).sum() > 0.2 * len(frame)  # every copy and its original are grouped
    train, test = split_frame(frame, strategy, 0.2, 7, target="churned", task=Task.BINARY,
                              time_column=None, group_column=None, copies=copies)
    side = pd.Series(frame.index.isin(test), index=frame.index)
    per_group = side[copies >= 0].groupby(copies[copies >= 0]).nunique()
    assert (per_group == 1).all()
    assert abs(len(test) / len(frame) - 0.2) < 0.02  # the share moves by a handful of rows
    hashes = pd.util.hash_pandas_object(frame, index=False)
    assert not set(hashes[test]) & set(hashes[train])  # no test row equals a training row
    if strategy is SplitStrategy.STRATIFIED:
        share = frame["churned"].mean()
        assert abs(frame.loc[test, "churned"].mean() - share) < 0.02
    # without the groups, copies straddle the split: what the default now prevents
    loose_train, loose_test = split_frame(frame, strategy, 0.2, 7, target="churned",
                                          task=Task.BINARY, time_column=None,
                                          group_column=None)
    assert set(hashes[loose_test]) & set(hashes[loose_train])


def test_copies_never_straddle_a_cv_fold(churn: pd.DataFrame) -> None:
    from forgeline.data.leakage import copy_groups
    from forgeline.training.tuning import cv_folds

    frame = _with_copies(churn.drop(columns=["customer_id", "signup"]))
    copies = copy_groups(frame, list(frame.columns))
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    for task, y in ((Task.BINARY, frame["churned"]), (Task.REGRESSION, frame["usage_score"])):
        folds = cv_folds(task, y, 5, 0, copies=copies)
        assert sorted(np.concatenate([v for _, v in folds]).tolist()) == list(range(len(y)))
        for fit, valid in folds:
            assert not set(hashes[valid]) & set(hashes[fit])
            assert 0.15 < len(valid) / len(y) < 0.25


def test_common_combinations_are_not_copies() -> None:
    from forgeline.data.leakage import copy_groups

    rng = np.random.default_rng(0)
    few = pd.DataFrame({"plan": rng.choice(["a", "b"], 2000), "autopay": rng.random(2000) < .5,
                        "y": rng.integers(0, 2, 2000)})
    assert (copy_groups(few, list(few.columns)) == -1).all()  # 8 combinations: chance repeats
