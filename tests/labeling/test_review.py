"""The review queue on real tweets, and its CSV round trip back as gold labels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgeline.errors import InvalidInput, NotFound
from forgeline.labeling.label_model import Labels, combine
from forgeline.labeling.matrix import ABSTAIN, LabelMatrix, Source
from forgeline.labeling.review import merge_gold, read_review, review_queue, write_review
from forgeline.labeling.sources import apply_functions, load_functions
from forgeline.labeling.suspects import find_suspects

LFS = Path(__file__).with_name("lfs_tweets.py")
CLASSES = ["negative", "positive"]
Labelled = tuple[pd.DataFrame, LabelMatrix, Labels]


@pytest.fixture(scope="module")
def labelled(tweets: pd.DataFrame) -> Labelled:
    frame = tweets.sample(1500, random_state=3)[["text", "sentiment"]]
    matrix = apply_functions(load_functions(LFS)[:4], frame, CLASSES).matrix
    return frame, matrix, combine(matrix)


def test_the_queue_puts_the_least_certain_rows_first_and_skips_gold(labelled: Labelled) -> None:
    frame, matrix, labels = labelled
    gold = frame.index[:40]
    queue = review_queue(frame[["text"]], probabilities=labels.probabilities, matrix=matrix,
                         gold=gold, size=30, clusters=1)
    assert len(queue) == 30 and not queue.index.isin(gold).any()
    assert list(queue["rank"]) == list(range(1, 31))
    assert (np.diff(queue["priority"].to_numpy()) <= 1e-12).all()  # one cluster: by priority
    scores = queue[["uncertainty", "disagreement", "suspicion"]]
    assert (queue["priority"] == scores.max(axis=1)).all()
    assert (queue["reason"] == scores.idxmax(axis=1)).all()
    # Nothing outside the queue (and not gold) is more urgent than its last row.
    rest = frame.index.difference(queue.index).difference(gold)
    p = labels.probabilities.loc[rest].max(axis=1)
    outside = np.maximum((1 - p) / 0.5, pd.Series(matrix.disagreement(), index=frame.index)
                         .loc[rest])
    assert outside.max() <= queue["priority"].min() + 1e-9
    assert queue["text"].notna().all() and (queue["label"] == "").all()
    assert set(queue["suggested"]) <= set(CLASSES)


def test_diversity_takes_rows_round_robin_over_clusters(labelled: Labelled) -> None:
    frame, matrix, labels = labelled
    queue = review_queue(frame[["text"]], probabilities=labels.probabilities, matrix=matrix,
                         text="text", size=24, clusters=6)
    assert queue["cluster"].nunique() == 6
    assert queue["cluster"].iloc[:6].nunique() == 6  # the first round: one row per cluster
    plain = review_queue(frame[["text"]], probabilities=labels.probabilities, matrix=matrix,
                         size=24, clusters=1)
    assert queue.index[0] == plain.index[0]  # the most urgent row still comes first
    # Within a cluster, rows keep their priority order.
    for _, rows in queue.groupby("cluster"):
        assert (np.diff(rows["priority"].to_numpy()) <= 1e-12).all()


def test_rows_every_source_agrees_on_never_push_back_uncertain_ones() -> None:
    """40 near-certain rows in one theme (uncertainty 0.002), 10 uncertain ones (0.9) in two
    others, 4 of them with no vote at all. With 3 clusters a plain round-robin put a
    near-certain row in every round of three; here a near-certain cluster's row waits until
    its 0.002 beats 0.9 halved for each row already taken from the uncertain cluster: the
    first 9 rows are uncertain ones whatever k-means makes of the two themes."""
    texts = ([f"thanks for the great flight number {i}" for i in range(40)]
             + [f"lost my bag again at gate {i}" for i in range(5)]
             + [f"seat {i} was fine I guess" for i in range(5)])
    frame = pd.DataFrame({"text": texts}, index=pd.Index([f"r{i}" for i in range(50)]))
    p_pos = np.r_[np.full(40, 0.999), np.full(10, 0.55)]
    proba = pd.DataFrame({"negative": 1 - p_pos, "positive": p_pos}, index=frame.index)
    codes = np.r_[np.ones(40, dtype=np.int64), [0, 1, 0, 1, 0, 1],
                  np.full(4, ABSTAIN, dtype=np.int64)]
    matrix = LabelMatrix.empty(frame.index, CLASSES).with_column(Source("lf", "v1"), codes)
    queue = review_queue(frame, probabilities=proba, matrix=matrix, text="text", size=12,
                         clusters=3)
    assert set(queue.index[:9]) <= set(frame.index[40:])
    # no source voted on the last four: nothing to suggest, not the first class
    assert queue.loc[frame.index[46:], "suggested"].isna().all()
    assert (queue.loc[frame.index[40:46], "suggested"] == "positive").all()


def test_likely_label_errors_enter_the_queue(tweets: pd.DataFrame) -> None:
    frame = tweets.sample(1500, random_state=4)[["text", "sentiment"]].copy()
    flip = frame.index[:100]
    frame.loc[flip, "sentiment"] = frame.loc[flip, "sentiment"].map(
        {"negative": "positive", "positive": "negative"})
    suspects = find_suspects(frame, "sentiment")
    queue = review_queue(frame, suspects=suspects, size=50, clusters=1)
    assert (queue["reason"] == "suspicion").all()
    assert queue.index.isin(flip).mean() > 0.7
    assert (queue["given"] == frame.loc[queue.index, "sentiment"]).all()
    assert (queue["suggested"] != queue["given"]).all()


def test_csv_round_trip_back_as_gold(tmp_path: Path, labelled: Labelled) -> None:
    frame, matrix, labels = labelled
    queue = review_queue(frame[["text"]], probabilities=labels.probabilities, matrix=matrix,
                         size=10)
    path = write_review(queue, tmp_path / "review" / "queue.csv")
    filled = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert filled.columns[0] == "id" and list(filled.columns)[-1] == "label"
    truth = frame.loc[queue.index, "sentiment"]
    filled["label"] = list(truth)
    filled.loc[9, "label"] = ""  # a row the reviewer skipped
    filled.to_csv(path, index=False)
    gold = read_review(path, ids=frame.index, classes=CLASSES)
    assert list(gold.index) == list(queue.index[:9])  # the original ids, their own type
    assert gold.index.dtype == frame.index.dtype
    assert (gold == truth.iloc[:9].to_numpy()).all()
    # Back into the label model: the reviewed rows are now gold.
    merged = merge_gold(pd.Series(["negative"], index=[frame.index[-1]], dtype="string"), gold)
    assert len(merged) == 10
    again = combine(matrix, gold=merged)
    assert (again.origin.loc[merged.index] == "gold").all()
    assert (again.label.loc[gold.index] == gold).all()
    newer = merge_gold(merged, pd.Series(["positive"], index=[frame.index[-1]]))
    assert newer.loc[frame.index[-1]] == "positive" and len(newer) == 10


@pytest.mark.parametrize(("edit", "message"), [
    (lambda f: f.assign(id=f["id"].where(f.index != 0, "no-such-row")),
     r"1 row ids are not in the data \(e.g. \['no-such-row'\]\)"),
    (lambda f: f.assign(label=["positive", "Positive!"] + ["negative"] * (len(f) - 2)),
     r"1 labels are not one of the classes .*'Positive!'"),
    (lambda f: pd.concat([f, f.iloc[[0]].assign(label="negative")]).assign(
        label=lambda g: ["positive"] + ["negative"] * (len(g) - 1)),
     r"1 row ids have two different labels"),
    (lambda f: f.drop(columns=["label"]), r"has no label column"),
])
def test_a_bad_review_file_is_one_clear_error_and_nothing_is_imported(
        tmp_path: Path, labelled: Labelled, edit: Callable[[pd.DataFrame], pd.DataFrame],
        message: str) -> None:
    frame, _, labels = labelled
    queue = review_queue(frame[["text"]], probabilities=labels.probabilities, size=5)
    path = write_review(queue, tmp_path / "queue.csv")
    filled = pd.read_csv(path, dtype=str, keep_default_na=False).assign(label="negative")
    edit(filled).to_csv(path, index=False)
    with pytest.raises(InvalidInput, match=message) as info:
        read_review(path, ids=frame.index, classes=CLASSES)
    assert "nothing was imported" in info.value.hint or "Keep the columns" in info.value.hint
    with pytest.raises(NotFound, match="does not exist"):
        read_review(tmp_path / "none.csv", ids=frame.index, classes=CLASSES)
    with pytest.raises(InvalidInput, match="needs label-model probabilities"):
        review_queue(frame)
