"""Labelling functions loaded from a file and applied to real tweets."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgeline.errors import InvalidInput, NotFound
from forgeline.labeling.matrix import ABSTAIN, LabelMatrix, Source
from forgeline.labeling.sources import apply_functions, load_functions

LFS = Path(__file__).with_name("lfs_tweets.py")
CLASSES = ["negative", "positive"]


def test_functions_are_found_by_name_and_versioned_by_their_source(tmp_path: Path) -> None:
    functions = load_functions(LFS)
    assert [f.name for f in functions] == ["lf_positive_words", "lf_negative_words",
                                           "lf_smiley", "lf_question", "lf_url_length",
                                           "lf_stars"]  # file order; words() is not one
    assert all(len(f.version) == 64 for f in functions)
    # Editing one function changes its version only.
    edited = tmp_path / "lfs.py"
    text = LFS.read_text().replace('"?" in row["text"]', '"??" in row["text"]')
    edited.write_text(text)
    again = {f.name: f.version for f in load_functions(edited)}
    before = {f.name: f.version for f in functions}
    assert {n for n in before if before[n] != again[n]} == {"lf_question"}


def test_applied_to_tweets_errors_and_unknown_labels_are_counted_per_row(
        tweets: pd.DataFrame) -> None:
    frame = tweets.sample(2000, random_state=1)
    applied = apply_functions(load_functions(LFS), frame, CLASSES)
    L = applied.matrix.L
    assert L.shape == (2000, 6) and applied.matrix.index.equals(frame.index)
    assert applied.matrix.sources[0].name == "lf_positive_words"
    no_link = ~frame["text"].str.contains("http").to_numpy()
    stats = applied.stats["lf_url_length"]
    assert stats.errors == no_link.sum() > 0
    assert stats.first_error.startswith("IndexError")
    assert applied.rows_with_errors == no_link.sum()
    assert (applied.error_rows[:, 4] == no_link).all()
    assert (L[:, 4] == ABSTAIN).all()
    hashtags = frame["text"].str.contains("#").to_numpy()
    assert applied.stats["lf_stars"].unknown_labels == hashtags.sum() > 0
    assert applied.stats["lf_stars"].first_unknown == "'maybe'"
    assert (L[:, 5] == ABSTAIN).all()
    # The other functions labelled the rows they should: far better than the base rates
    # (17% positive, 83% negative) against the crowd's labels.
    truth = frame["sentiment"].map({"negative": 0, "positive": 1}).to_numpy()
    pos = L[:, 0] == 1
    assert pos.sum() > 100 and (truth[pos] == 1).mean() > 2.5 * (truth == 1).mean()
    neg = L[:, 1] == 0
    assert neg.sum() > 100 and (truth[neg] == 0).mean() > 0.95
    summary = applied.matrix.summary().set_index("source")
    assert summary.loc["lf_positive_words", "coverage"] == pytest.approx(pos.mean())
    assert summary.loc["lf_url_length", "coverage"] == 0.0
    assert 0 < summary.loc["lf_positive_words", "conflict"] \
        <= summary.loc["lf_positive_words", "overlap"]


def test_a_new_column_is_added_to_an_existing_matrix() -> None:
    frame = pd.DataFrame({"text": ["I love it", "I hate it", "meh"]}, index=[10, 11, 12])
    base, unknown = LabelMatrix.empty(frame.index, CLASSES).with_labels(
        Source("llm", "gemma:abc", "llm"), ["positive", None, "other"])
    assert unknown == 1
    applied = apply_functions(load_functions(LFS)[:2], frame, CLASSES, matrix=base)
    assert [s.name for s in applied.matrix.sources] == ["llm", "lf_positive_words",
                                                         "lf_negative_words"]
    np.testing.assert_array_equal(applied.matrix.L, [[1, 1, -1], [-1, -1, 0], [-1, -1, -1]])
    np.testing.assert_allclose(applied.matrix.disagreement(), [0.0, 0.0, 0.0])
    with pytest.raises(InvalidInput, match="different rows"):
        apply_functions(load_functions(LFS), frame.iloc[:2], CLASSES, matrix=base)


@pytest.mark.parametrize(("text", "message"), [
    ("def lf_a(row):\n    return 'x'\nif True\n", r"syntax error at line 3"),
    ("import no_such_module_here\n", r"fails on import: ModuleNotFoundError"),
    ("raise ValueError('first line\\nsecond line')\n",
     r"fails on import: ValueError: first line\."),
    ("def label(row):\n    return None\n", r"defines no labelling function"),
    ("def lf_two(row, other):\n    return None\n", r"lf_two\(\) with 2 required arguments"),
    ("from os.path import basename as lf_imported\n", r"defines no labelling function"),
])
def test_a_bad_file_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.py"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=message) as info:
        load_functions(path)
    assert str(path) in info.value.message and info.value.hint
    assert "\n" not in str(info.value)


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        load_functions(tmp_path / "none.py")
    shutil.copy(LFS, tmp_path / "copy.py")
    assert len(load_functions(tmp_path / "copy.py")) == 6
