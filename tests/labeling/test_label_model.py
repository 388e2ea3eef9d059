"""The label model on real tweets: Dawid-Skene against majority vote, thresholds, gold."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgeline.errors import InvalidInput
from forgeline.labeling.label_model import DawidSkene, combine
from forgeline.labeling.matrix import LabelMatrix, Source
from forgeline.labeling.sources import LabelingFunction, apply_functions, load_functions

LFS = Path(__file__).with_name("lfs_tweets.py")
CLASSES = ["negative", "positive"]


@pytest.fixture(scope="module")
def sample(tweets: pd.DataFrame) -> pd.DataFrame:
    return tweets.sample(3000, random_state=2)


def _annotators(frame: pd.DataFrame, specs: list[tuple[float, float]]) -> LabelMatrix:
    """Simulated annotators over the real labels: (accuracy, coverage) each."""
    truth = (frame["sentiment"] == "positive").to_numpy().astype(int)
    rng = np.random.default_rng(0)
    matrix = LabelMatrix.empty(frame.index, CLASSES)
    for j, (accuracy, coverage) in enumerate(specs):
        codes = np.where(rng.random(len(frame)) < accuracy, truth, 1 - truth)
        codes = np.where(rng.random(len(frame)) < coverage, codes, -1)
        matrix = matrix.with_column(Source(f"annotator{j}", "simulated", "gold"), codes)
    return matrix


def test_dawid_skene_learns_that_a_source_is_bad_and_beats_majority_vote(
        sample: pd.DataFrame) -> None:
    # Three annotators right 80% of the time on 60% of rows each, one wrong 80% of the
    # time on every row.
    matrix = _annotators(sample, [(0.8, 0.6)] * 3 + [(0.2, 1.0)])
    gold = sample["sentiment"]
    mv = combine(matrix, model="majority", gold=gold)
    ds = combine(matrix, model="dawid_skene", gold=gold)
    assert mv.gold_coverage == ds.gold_coverage == 1.0
    assert ds.gold_accuracy > mv.gold_accuracy + 0.1
    assert ds.gold_accuracy > 0.85
    model = DawidSkene().fit(matrix.L, 2)
    accuracy = model.confusions_[:, [0, 1], [0, 1]]  # P(says t | truth t), without abstain
    assert (accuracy[3] < 0.35).all()
    assert (accuracy[:3] > 0.4).all()  # 0.8 x 0.6 coverage
    np.testing.assert_allclose(model.confusions_.sum(axis=2), 1.0)
    assert model.priors_[0] == pytest.approx((gold == "negative").mean(), abs=0.05)


def _swapped(row: dict[str, object]) -> str | None:
    """A buggy labelling function: its two lexicons are swapped."""
    words = set(re.findall(r"[a-z']+", str(row["text"]).lower()))
    if words & {"love", "great", "thanks", "thank", "good", "best", "awesome"}:
        return "negative"
    if words & {"hate", "worst", "bad", "delayed", "cancelled", "never", "lost"}:
        return "positive"
    return None


def test_with_real_labelling_functions_and_one_buggy_dawid_skene_wins(
        sample: pd.DataFrame) -> None:
    functions = [*load_functions(LFS)[:4], LabelingFunction("lf_swapped", "v1", _swapped)]
    matrix = apply_functions(functions, sample, CLASSES).matrix
    mv = combine(matrix, model="majority", gold=sample["sentiment"])
    ds = combine(matrix, model="dawid_skene", gold=sample["sentiment"])
    assert mv.gold_coverage == ds.gold_coverage > 0.4  # rows some function voted on
    assert ds.gold_accuracy > mv.gold_accuracy + 0.03


def test_a_threshold_trades_coverage_for_accuracy(sample: pd.DataFrame) -> None:
    matrix = apply_functions(load_functions(LFS)[:4], sample, CLASSES).matrix
    gold = sample["sentiment"]
    runs = [combine(matrix, threshold=t, gold=gold) for t in (0.0, 0.8, 0.9)]
    coverages = [r.gold_coverage for r in runs]
    accuracies = [r.gold_accuracy for r in runs]
    assert coverages[0] > coverages[1] > coverages[2] > 0.2
    assert accuracies[2] > accuracies[0] + 0.02
    plain = combine(matrix, threshold=0.9)
    labelled = plain.label.notna()
    assert (plain.confidence[labelled] >= 0.9).all()
    assert (plain.origin[~labelled] == "none").all() and plain.label[~labelled].isna().all()
    no_vote = (matrix.L == -1).all(axis=1)
    assert plain.label[no_vote].isna().all() and no_vote.sum() > 0
    frame = plain.frame()
    assert list(frame.columns) == ["label", "confidence", "origin", "p_negative", "p_positive"]
    np.testing.assert_allclose(frame[["p_negative", "p_positive"]].sum(axis=1), 1.0)


def test_gold_overrides_and_is_measured_before_the_override(sample: pd.DataFrame) -> None:
    matrix = apply_functions(load_functions(LFS)[:4], sample, CLASSES).matrix
    gold = sample["sentiment"].iloc[:300]
    without = combine(matrix)
    with_gold = combine(matrix, gold=gold)
    judged = gold.index[without.label.loc[gold.index].notna().to_numpy()]
    expected = (without.label.loc[judged] == gold.loc[judged]).mean()
    assert with_gold.gold_accuracy == pytest.approx(expected)
    assert with_gold.gold_coverage == pytest.approx(len(judged) / 300)
    assert (with_gold.label.loc[gold.index] == gold).all()
    assert (with_gold.origin.loc[gold.index] == "gold").all()
    assert (with_gold.confidence.loc[gold.index] == 1.0).all()
    rest = sample.index[300:]
    pd.testing.assert_series_equal(with_gold.label.loc[rest], without.label.loc[rest])


def test_bad_input_is_one_clear_error(sample: pd.DataFrame) -> None:
    matrix = _annotators(sample.iloc[:50], [(0.8, 1.0)])
    with pytest.raises(InvalidInput, match="Unknown label model 'snorkel'"):
        combine(matrix, model="snorkel")
    with pytest.raises(InvalidInput, match=r"threshold of 1\.5 is not between 0 and 1"):
        combine(matrix, threshold=1.5)
    with pytest.raises(InvalidInput, match="no labelling source"):
        combine(LabelMatrix.empty(sample.index[:5], CLASSES))
    with pytest.raises(InvalidInput, match=r"1 gold labels are for rows that are not in the data"):
        combine(matrix, gold=pd.Series(["positive"], index=[-7]))
    bad = pd.Series(["positive", "great"], index=sample.index[:2])
    with pytest.raises(InvalidInput, match=r"1 gold labels are not one of the classes .*great"):
        combine(matrix, gold=bad)
    with pytest.raises(InvalidInput, match="share a name"):
        matrix.with_column(Source("annotator0", "x"), np.zeros(50))
