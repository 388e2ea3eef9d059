"""A labelling project in a folder, as a user would have it: real tweets (a CSV with a few
human labels), the example labelling functions, a prompt file and a spec."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from forgeline.examples.tweets import load_tweets
from tests.labeling.fakellm import MODEL, FakeLLMServer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_LFS = ROOT / "examples" / "labeling" / "tweets_lfs.py"
EXAMPLE_PROMPT = ROOT / "examples" / "labeling" / "tweets_prompt.yaml"
POSITIVE_WORDS = ("love", "thank", "great", "awesome", "best", "amazing", "good", "happy")


@cache
def _tweets(rows: int) -> pd.DataFrame:
    return load_tweets(classes=("negative", "positive"), min_confidence=1.0, rows=rows, seed=1)


def _flat(texts: pd.Series) -> list[str]:
    """Texts on one line: some tweets hold bare carriage returns, which pandas writes into a
    CSV unquoted and then reads as line ends."""
    return [" ".join(str(t).split()) for t in texts]


def tweets_csv(path: Path, rows: int = 300, gold: int = 30, noisy: bool = False) -> pd.DataFrame:
    """``tweet_id, text, human_label`` (filled on the first ``gold`` rows); with ``noisy``
    also ``noisy_label``: the truth with every seventh row flipped."""
    t = _tweets(rows)
    frame = pd.DataFrame({"tweet_id": t.index.astype(int), "text": _flat(t["text"])})
    truth = t["sentiment"].to_numpy()
    frame["human_label"] = pd.Series(truth, dtype="string")
    frame.loc[gold:, "human_label"] = pd.NA
    if noisy:
        flipped = pd.Series(truth).where(
            pd.Series(range(rows)) % 7 != 3,
            pd.Series(truth).map({"negative": "positive", "positive": "negative"}))
        frame["noisy_label"] = flipped.to_numpy()
    frame.to_csv(path, index=False)
    frame["truth"] = truth
    return frame


def tweet_llm(server: FakeLLMServer) -> FakeLLMServer:
    """The fake endpoint answering the tweets task (positive when a positive word shows)."""
    server.reset()
    server.fake.labels = ("positive", "negative")
    server.fake.words = POSITIVE_WORDS
    return server


def write_spec(folder: Path, *, llm_url: str | None = None, rows: int = 300, gold_rows: int = 30,
               noisy: bool = False, **extra: Any) -> Path:
    """The project's data and spec in ``folder``; ``extra`` replaces top-level spec keys."""
    folder.mkdir(parents=True, exist_ok=True)
    tweets_csv(folder / "tweets.csv", rows, gold_rows, noisy)
    spec: dict[str, Any] = {
        "name": "tweets-sentiment",
        "data": {"path": "tweets.csv", "text": "text", "id": "tweet_id"},
        "classes": ["negative", "positive"],
        "functions": [str(EXAMPLE_LFS)],
        "gold": {"column": "human_label"},
        "label_model": {"model": "auto", "threshold": 0.7},
        "output": {"path": "labelled.parquet", "column": "label"},
        "review": {"size": 10, "path": "review.csv"},
    }
    if llm_url is not None:
        spec["llm"] = {"url": llm_url, "model": MODEL, "prompt": str(EXAMPLE_PROMPT),
                       "concurrency": 4}
    if noisy:
        spec["labels"] = {"column": "noisy_label"}
    spec.update(extra)
    path = folder / "label.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
