"""Label errors on real tweets: 10% of labels flipped at random are found by confident
learning over cross-validated probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeline.errors import InvalidInput
from forgeline.labeling.suspects import find_suspects, text_columns


@pytest.fixture(scope="module")
def flipped(tweets: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    frame = tweets.sample(4000, random_state=0)[["text", "sentiment"]].copy()
    rng = np.random.default_rng(0)
    flip = np.zeros(len(frame), dtype=bool)
    flip[rng.choice(len(frame), len(frame) // 10, replace=False)] = True
    other = {"negative": "positive", "positive": "negative"}
    frame["noisy"] = np.where(flip, frame["sentiment"].map(other), frame["sentiment"])
    return frame, flip


def test_flipped_labels_are_found_with_precision_and_recall_of_at_least_0_7(
        flipped: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, flip = flipped
    suspects = find_suspects(frame[["text", "noisy"]], "noisy")
    is_flipped = pd.Series(flip, index=frame.index)
    found = suspects.issues
    precision = is_flipped.loc[found].mean()
    recall = is_flipped.loc[found].sum() / flip.sum()
    assert precision >= 0.7 and recall >= 0.7, (precision, recall)
    table = suspects.table
    assert len(table) == len(frame) and set(table.index) == set(frame.index)
    assert table["issue"].iloc[: len(found)].all() and not table["issue"].iloc[len(found):].any()
    rest = table["quality"].iloc[len(found):].to_numpy()
    assert (np.diff(rest) >= 0).all()  # the others follow, least likely label first
    # For a flipped row found, the suggestion is mostly the true label.
    caught = found[is_flipped.loc[found].to_numpy()]
    assert (table.loc[caught, "suggested"] == frame.loc[caught, "sentiment"]).mean() > 0.9
    assert (table.loc[caught, "given"] == frame.loc[caught, "noisy"]).all()
    np.testing.assert_allclose(suspects.probabilities.sum(axis=1), 1.0)
    assert suspects.classes == ("negative", "positive")


def test_text_columns_are_detected_and_other_columns_used() -> None:
    frame = pd.DataFrame({
        "memo": ["the parcel came broken and late again"] * 6 + ["great service, thank you so"
                                                                  " much really"] * 6,
        "channel": ["web", "app"] * 6, "amount": np.arange(12.0),
        "label": ["bad"] * 6 + ["good"] * 6})
    assert text_columns(frame) == ["memo"]
    frame.loc[0, "label"] = "good"
    suspects = find_suspects(frame, "label", folds=3)
    assert suspects.issues[0] == 0
    frame.loc[3, "label"] = None  # unlabelled rows are skipped
    assert 3 not in find_suspects(frame, "label", folds=3).table.index


def test_bad_input_is_one_clear_error() -> None:
    frame = pd.DataFrame({"text": ["a b c d e"] * 4, "y": ["x", "x", "z", "z"]})
    with pytest.raises(InvalidInput, match="label column 'label' is not in the data"):
        find_suspects(frame, "label")
    with pytest.raises(InvalidInput, match=r"Labels \['z'\] are not among the classes"):
        find_suspects(frame, "y", classes=["x", "w"])
    with pytest.raises(InvalidInput, match="Text column"):
        find_suspects(frame, "y", text=["memo"])
    with pytest.raises(InvalidInput, match="a single labelled row"):
        find_suspects(frame.assign(y=["x", "x", "x", "z"]), "y")
    with pytest.raises(InvalidInput, match="at least two classes"):
        find_suspects(frame.assign(y="x"), "y")
