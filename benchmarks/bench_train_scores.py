"""Figure: on scikit-learn's shipped datasets, ``forgeline train`` scores at least as well on
its test split as a default hand-written scikit-learn baseline.

Datasets (all shipped inside scikit-learn, nothing downloaded): breast_cancer (binary,
written by ``examples/sklearn/export.py``), wine, iris and digits (multiclass), diabetes
(regression). Each is written to CSV and trained with a small spec (``name``,
``data.path``, ``data.target``, ``tuning: {trials: N, cv_folds: 5}``): default models for
the task (logistic/linear, random forest, LightGBM), default metric (ROC AUC for binary,
macro F1 for multiclass, RMSE for regression, lower is better), default split (stratified
for classification, random for regression; 20% test, seed 42), pruning on; everything
else as Forgeline decides, including the choice of model family after tuning (the
one-standard-error rule, ``tuning.select: one_se``; ``--select best`` takes the best mean
CV score instead).

The baselines are trained on the same training rows and scored on the same test rows:
the split is reproduced with ``forgeline.data.split.split_frame`` and the spec's seed, and
the script checks it by scoring the registered model package (``load_model``) on the
reproduced test rows, which must give exactly the score the training run reported. The
baselines, with scikit-learn's defaults (``random_state=0`` where there is one):

- classification: ``make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))``
  (the default 100 iterations do not converge on digits), ``RandomForestClassifier()``,
  ``HistGradientBoostingClassifier()``;
- regression: ``Ridge()``, ``RandomForestRegressor()``, ``HistGradientBoostingRegressor()``.

"baseline" is the best of them on the test split (an optimistic reference: it is picked
by its test score). The test splits are small (30 to 360 rows), so the script also gives
a paired bootstrap 95% interval of Forgeline minus the best baseline over the test rows.

    .venv/bin/python benchmarks/bench_train_scores.py [--trials 15] [--folds 5]
        [--datasets breast_cancer wine iris digits diabetes] [--select one_se|best]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import datasets
from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from _common import (
    BENCH_DIR,
    ROOT,
    check_quiet,
    forgeline_home,
    machine,
    print_machine,
    scratch_dir,
    write_json,
    write_markdown,
)

OUT = BENCH_DIR / "out"
SEED = 42  # the spec's seed (TrainSpec default)
BOOTSTRAP = 1000


def _export_breast_cancer(out: Path) -> str:
    """examples/sklearn/export.py: target ``diagnosis`` as "malignant" / "benign"."""
    spec = importlib.util.spec_from_file_location(
        "sklearn_export", ROOT / "examples" / "sklearn" / "export.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.export(out)
    return "diagnosis"


def _export(loader: Callable[..., Any]) -> Callable[[Path], str]:
    def export(out: Path) -> str:
        frame = loader(as_frame=True).frame
        frame.to_csv(out, index=False)
        return "target"

    return export


# name -> writes the CSV, returns the target column
DATASETS: dict[str, Callable[[Path], str]] = {
    "breast_cancer": _export_breast_cancer,
    "wine": _export(datasets.load_wine),
    "iris": _export(datasets.load_iris),
    "digits": _export(datasets.load_digits),
    "diabetes": _export(datasets.load_diabetes),
}


def baselines(task: str) -> dict[str, BaseEstimator]:
    if task == "regression":
        return {"Ridge()": Ridge(),
                "RandomForestRegressor()": RandomForestRegressor(random_state=0),
                "HistGradientBoostingRegressor()": HistGradientBoostingRegressor(
                    random_state=0)}
    return {"StandardScaler+LogisticRegression()": make_pipeline(
                StandardScaler(), LogisticRegression(max_iter=1000)),
            "RandomForestClassifier()": RandomForestClassifier(random_state=0),
            "HistGradientBoostingClassifier()": HistGradientBoostingClassifier(
                random_state=0)}


def _prediction(model: Any, X: pd.DataFrame, needs_proba: bool) -> np.ndarray:
    return np.asarray(model.predict_proba(X) if needs_proba else model.predict(X))


def _bootstrap(metric: Any, y: np.ndarray, ours: np.ndarray, theirs: np.ndarray,
               classes: np.ndarray | None, seed: int = 0) -> tuple[float, float]:
    """Paired bootstrap 95% interval of metric(ours) - metric(theirs) over the test rows."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(BOOTSTRAP):
        rows = rng.integers(0, len(y), len(y))
        try:
            diffs.append(metric(y[rows], ours[rows], classes)
                         - metric(y[rows], theirs[rows], classes))
        except ValueError:  # a resample with one class only
            continue
    low, high = np.percentile(diffs, [2.5, 97.5])
    return float(low), float(high)


def cv_by_model(experiment: str, run_id: str, metric: Any) -> dict[str, float]:
    """The best cross-validated score of each model family among the run's complete trials
    (its child runs), to see what the search chose between."""
    from forgeline import Client

    best: dict[str, float] = {}
    for run in Client().search_runs(experiment, max_results=1000):
        if run.parent_run_id != run_id or run.tags.get("forgeline.trial.state") != "complete":
            continue
        model, score = run.params.get("model"), run.metrics.get(f"cv_{metric.name}")
        if model is None or score is None:
            continue
        if model not in best or metric.better(score, best[model]):
            best[model] = score
    return best


def run_dataset(name: str, root: Path, trials: int, folds: int,
                select: str | None = None) -> dict[str, Any]:
    from forgeline import load_model
    from forgeline.data.split import split_frame
    from forgeline.entities import Task
    from forgeline.metrics import get_metric
    from forgeline.workflows.train import train

    csv = root / f"{name}.csv"
    target = DATASETS[name](csv)
    spec = root / f"{name}.yaml"
    model_name = name.replace("_", "-")
    rule = f", select: {select}" if select else ""
    spec.write_text(f"name: {model_name}\ndata: {{path: {csv.name}, target: {target}}}\n"
                    f"tuning: {{trials: {trials}, cv_folds: {folds}{rule}}}\n")
    start = time.perf_counter()
    result = train(spec)
    seconds = time.perf_counter() - start

    frame = pd.read_csv(csv)
    task = Task(result.task)
    train_index, test_index = split_frame(frame, None, 0.2, SEED, target=target, task=task,
                                          time_column=None, group_column=None)
    features = [c for c in frame.columns if c != target]
    X, y = frame.loc[train_index, features], frame.loc[train_index, target]
    X_test, y_test = frame.loc[test_index, features], frame.loc[test_index, target]
    metric = get_metric(result.metric, task)
    y_true = np.asarray(y_test)

    # The registered package, scored on the reproduced test rows: the same split?
    predictor = load_model(result.model_version.ref) if result.model_version else None
    if predictor is None:
        raise SystemExit(f"{name}: the model was not registered ({result.registered_reason})")
    ours_pred = (predictor.predict_proba(X_test).to_numpy() if metric.needs_proba
                 else predictor.predict(X_test))
    ours_classes = (None if task is Task.REGRESSION
                    else np.asarray(predictor.model.classes_))
    check = metric(y_true, ours_pred, ours_classes)
    if abs(check - result.score) > 1e-9:
        raise SystemExit(f"{name}: the reproduced test split does not match Forgeline's "
                         f"(package scores {check:.6f}, the run reported {result.score:.6f})")

    scores: dict[str, float] = {}
    predictions: dict[str, np.ndarray] = {}
    fit_seconds: dict[str, float] = {}
    for label, model in baselines(task.value).items():
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, y)
        fit_seconds[label] = time.perf_counter() - t
        classes = None if task is Task.REGRESSION else np.asarray(model.classes_)
        predictions[label] = _prediction(model, X_test, metric.needs_proba)
        scores[label] = metric(y_true, predictions[label], classes)
    best = (max if metric.greater_is_better else min)(scores, key=scores.__getitem__)
    ok = not metric.better(scores[best], result.score)  # Forgeline >= baseline (or ties)
    low, high = _bootstrap(metric, y_true, ours_pred, predictions[best], ours_classes)
    sign = 1 if metric.greater_is_better else -1  # "ours better" as positive
    return {"dataset": name, "task": task.value, "metric": metric.name,
            "greater_is_better": metric.greater_is_better, "rows": len(frame),
            "rows_train": len(train_index), "rows_test": len(test_index),
            "features": len(features), "forgeline": result.score, "cv": result.cv_score,
            "model": result.model, "params": result.params, "seconds": seconds,
            "cv_by_model": cv_by_model(model_name, result.run_id, metric),
            "selection": result.selection,
            "baselines": scores, "baseline_seconds": fit_seconds, "best_baseline": best,
            "baseline": scores[best], "verdict": ok,
            "advantage_ci95": sorted((sign * low, sign * high))}


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace, command: str) -> str:
    import lightgbm
    import optuna
    import sklearn

    m = machine()
    short = {"StandardScaler+LogisticRegression()": "logistic",
             "RandomForestClassifier()": "forest", "HistGradientBoostingClassifier()": "HGB",
             "Ridge()": "ridge", "RandomForestRegressor()": "forest",
             "HistGradientBoostingRegressor()": "HGB"}
    met = sum(r["verdict"] for r in rows)
    lines = [
        "### Test scores on scikit-learn's shipped datasets vs default scikit-learn "
        "baselines", "",
        f"Machine: {m.get('cpu', '?')}, {m['cpus']} CPUs, Python {m['python']}; "
        f"scikit-learn {sklearn.__version__}, LightGBM {lightgbm.__version__}, Optuna "
        f"{optuna.__version__}.", "",
        f"`forgeline train` with default models, {args.trials} trials, {args.folds}-fold CV, "
        "pruning on, seed 42; baselines are scikit-learn defaults trained on the same "
        "training rows and scored on the same test rows (logistic = StandardScaler + "
        "LogisticRegression(max_iter=1000), forest = RandomForest, HGB = "
        "HistGradientBoosting, ridge = Ridge; random_state=0). \"baseline\" = the best of "
        "them on the test split. The split is checked: the registered package scores the "
        "reproduced test rows exactly as the run reported.", "",
        "| dataset | task | rows train/test | metric | Forgeline (model) | baseline | "
        "logistic/ridge | forest | HGB | advantage over best [95% CI] | verdict |",
        "|---|---|---|---|---|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        b = {short[k]: v for k, v in r["baselines"].items()}
        first = b.get("logistic", b.get("ridge"))
        low, high = r["advantage_ci95"]
        arrow = "" if r["greater_is_better"] else " (lower is better)"
        sign = 1 if r["greater_is_better"] else -1
        diff = sign * (r["forgeline"] - r["baseline"])  # positive: Forgeline better
        lines.append(
            f"| {r['dataset']} | {r['task']} | {r['rows_train']}/{r['rows_test']} | "
            f"{r['metric']}{arrow} | {_fmt(r['forgeline'])} ({r['model']}) | "
            f"{_fmt(r['baseline'])} ({short[r['best_baseline']]}) | {_fmt(first)} | "
            f"{_fmt(b['forest'])} | {_fmt(b['HGB'])} | {diff:+.4f} "
            f"[{low:+.4f}, {high:+.4f}] | {'≥ baseline' if r['verdict'] else 'BELOW'} |")
    rules = sorted({r["selection"].get("rule", "?") for r in rows})
    lines += ["", "What the search chose between (best cross-validated score of each model "
              "family among complete trials, ± the standard error of its fold scores) and "
              f"what the selection rule ({', '.join(rules)}) chose:", ""]
    for r in rows:
        candidates = r["selection"].get("candidates") or [
            {"model": k, "score": v, "se": None} for k, v in r["cv_by_model"].items()]
        cv = ", ".join(
            f"{c['model']} {c['score']:.4f}" + (f" ± {c['se']:.4f}" if c["se"] is not None
                                                else "")
            for c in sorted(candidates, key=lambda c: -c["score"] if r["greater_is_better"]
                            else c["score"]))
        best = r["selection"].get("best_by_score")
        note = f" (best by CV: {best})" if best and best != r["model"] else ""
        lines.append(f"- {r['dataset']}: {cv} -> {r['model']}{note}")
    lines += ["", f"**{met} of {len(rows)} datasets at or above the best default baseline.** "
              "Advantage = Forgeline's score minus the best baseline's, sign flipped for RMSE so "
              "that positive always means Forgeline is better; the interval is from "
              f"{BOOTSTRAP} paired bootstrap resamples of the test rows.", "",
              "Training time per dataset (s): " + ", ".join(
                  f"{r['dataset']} {r['seconds']:.1f}" for r in rows) + ".", "",
              f"Reproduce: `{command}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS),
                        default=list(DATASETS))
    parser.add_argument("--json", default=str(OUT / "bench_train_scores.json"))
    parser.add_argument("--no-markdown", action="store_true")
    parser.add_argument("--select", choices=["one_se", "best"], default=None,
                        help="tuning.select in the spec (default: Forgeline's default)")
    args = parser.parse_args(argv)
    print_machine()
    check_quiet()
    rows = []
    with scratch_dir("train-scores") as root, forgeline_home(root):
        for name in args.datasets:
            rows.append(run_dataset(name, root, args.trials, args.folds, args.select))
            r = rows[-1]
            print(f"{name}: forgeline {r['metric']} {r['forgeline']:.4f} "
                  f"({r['model']}, {r['seconds']:.1f} s); baselines "
                  + ", ".join(f"{k} {v:.4f}" for k, v in r["baselines"].items())
                  + f"; selection: {r['selection'].get('reason', '?')}", flush=True)

    print(f"\n{'dataset':<14}{'task':<12}{'metric':<10}{'forgeline':>10}{'baseline':>10}  "
          f"{'best baseline':<36}{'advantage 95% CI':<22}verdict")
    for r in rows:
        low, high = r["advantage_ci95"]
        print(f"{r['dataset']:<14}{r['task']:<12}{r['metric']:<10}{r['forgeline']:>10.4f}"
              f"{r['baseline']:>10.4f}  {r['best_baseline']:<36}"
              f"{f'[{low:+.3f}, {high:+.3f}]':<22}"
              f"{'>= baseline' if r['verdict'] else 'BELOW baseline'}")
    met = sum(r["verdict"] for r in rows)
    print(f"{met} of {len(rows)} datasets at or above the best default baseline")
    OUT.mkdir(parents=True, exist_ok=True)
    write_json(args.json, "train_scores", {"trials": args.trials, "folds": args.folds,
                                           "select": args.select or "default",
                                           "rows": rows, "met": met, "of": len(rows)})
    command = ".venv/bin/python benchmarks/bench_train_scores.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    if not args.no_markdown:
        print(f"Markdown: {write_markdown('scores', markdown(rows, args, command.strip()))}")
    print(f"JSON: {args.json}")
    print(json.dumps({"met": met, "of": len(rows)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
