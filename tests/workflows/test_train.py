"""Training end to end: real data files, real models, a real store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import forgeline as fl
from forgeline.entities import RunStatus
from forgeline.errors import InvalidInput, InvalidSpec, LeakageDetected, NotFound
from forgeline.training.layout import REPORT_PATH
from forgeline.workflows.train import train
from tests.reports.test_explain_report import figures


def test_fraud_end_to_end(fraud_spec: Path, fraud_frame: pd.DataFrame) -> None:
    result = train(fraud_spec)
    client = fl.Client()
    assert result.task.value == "binary" and result.metric == "roc_auc"
    assert result.score > 0.75 and result.cv_score > 0.75
    assert result.model_version is not None and result.model_version.aliases == ("champion",)
    run = client.get_run(result.run_id)
    assert run.status is RunStatus.FINISHED
    assert run.params["model"] == result.model and run.params["task"] == "binary"
    assert run.metrics["test_roc_auc"] == pytest.approx(result.score)
    children = client.search_runs("fraud", f"attributes.parent_run_id = '{run.run_id}'")
    assert len(children) == 4
    assert {c.tags["forgeline.trial.state"] for c in children} <= {"complete", "pruned"}
    contexts = sorted(ctx for _, ctx in client.get_run_datasets(run.run_id))
    assert contexts == ["source", "test", "train"]
    artifacts = {a.path for a in client.list_artifacts(run.run_id)}
    assert {REPORT_PATH, "report/card.md", "report/checks.json", "report/evaluation.json",
            "spec.json",
            "model/MANIFEST.json", "model/signature.json", "model/profile.json"} <= artifacts
    assert result.report.is_file() and result.report.read_text().count("<html") == 1
    # global attributions: in the run, in the package (listed in its manifest) and the report
    assert {"report/attributions.json", "model/attributions.json"} <= artifacts
    html = result.report.read_text()
    assert '<section id="explain"><h2>Why the model decides</h2>' in html
    bars = figures(html)[next(t for t in figures(html) if t.startswith("Mean |contribution|"))]
    shown = dict(zip(bars["data"][0]["y"], bars["data"][0]["x"], strict=True))
    lineage = client.get_lineage("fraud@champion")
    assert lineage.run.run_id == run.run_id

    model = fl.load_model("fraud@champion")
    assert {"columns", "target", "prediction", "multivariate"} <= set(model.profile)
    attributions = model.package.attributions
    assert "attributions.json" in model.package.manifest["files"]
    assert attributions is not None  # on at most 1,000 test rows, as many as fit in 3 s
    assert 100 <= attributions["rows"] <= min(1_000, int(run.params["rows_test"]))
    assert shown == pytest.approx({c: v["mean_abs"] for c, v in
                                   attributions["columns"].items()})
    rows = fraud_frame.tail(50)
    proba = model.predict_proba(rows)
    assert proba.shape == (50, 2) and np.allclose(proba.sum(axis=1), 1)
    with pytest.raises(InvalidInput, match="amount"):
        model.predict(rows.drop(columns=["amount"]))


def test_same_spec_same_data_same_seed_same_model(fraud_spec: Path) -> None:
    first, second = train(fraud_spec), train(fraud_spec)
    assert (first.model, first.params) == (second.model, second.params)
    assert first.cv_score == second.cv_score and first.score == second.score
    assert [v.version for v in fl.Client().search_model_versions("fraud")] == [2, 1]


def test_a_score_below_the_gate_registers_nothing(fraud_spec: Path) -> None:
    result = train(fraud_spec, ["register.min_score=0.9999"])
    assert result.model_version is None
    assert "fails >= 0.9999" in result.registered_reason
    with pytest.raises(NotFound):
        fl.Client().get_registered_model("fraud")


def _write(tmp_path: Path, frame: pd.DataFrame, **spec: object) -> Path:
    frame.to_csv(tmp_path / "data.csv", index=False)
    body = {"name": "m", "data": {"path": "data.csv", "target": "y"},
            "tuning": {"trials": 2, "cv_folds": 3}, "models": ["logistic_regression"], **spec}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(body))
    return tmp_path / "spec.yaml"


def _frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y})


def test_a_leaking_feature_fails_the_run_and_registers_nothing(tmp_path: Path) -> None:
    frame = _frame()
    frame["leak"] = frame["y"] * 10 + np.random.default_rng(1).normal(0, 0.01, len(frame))
    with pytest.raises(LeakageDetected, match="leak"):
        train(_write(tmp_path, frame))
    client = fl.Client()
    (run,) = client.search_runs("m")
    assert run.status is RunStatus.FAILED
    assert "report/checks.json" in {a.path for a in client.list_artifacts(run.run_id)}
    assert client.list_registered_models() == []


def test_a_random_split_of_time_ordered_data_is_refused(tmp_path: Path) -> None:
    frame = _frame().assign(ts=pd.date_range("2025-01-01", periods=400, freq="h"))
    spec = _write(tmp_path, frame, split={"strategy": "random"})
    with pytest.raises(LeakageDetected, match="random split"):
        train(spec, ["data.time_column=ts"])


@pytest.mark.parametrize(("mutate", "error", "message"), [
    (lambda f: f.assign(y=1), InvalidInput, "single value"),
    (lambda f: f.iloc[:0], InvalidInput, "empty"),
    (lambda f: f.assign(b=[f"{v:.3f}" if i % 20 else "#REF!" for i, v in enumerate(f["b"])]),
     InvalidInput, "'b'"),
])
def test_bad_data(tmp_path: Path, mutate, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        train(_write(tmp_path, mutate(_frame())))
    assert fl.Client().list_registered_models() == []


def test_bad_specs_and_paths(tmp_path: Path) -> None:
    spec = _write(tmp_path, _frame())
    with pytest.raises(InvalidSpec, match=r"unknown key 'tunning'"):
        train(spec, ["tunning.trials=3"])
    spec.write_text(spec.read_text() + "tunning:\n  trials: 3\n")
    lines = spec.read_text().count("\n")
    with pytest.raises(InvalidSpec, match=rf"unknown key 'tunning' \(line {lines - 1}\)"):
        train(spec)
    spec = _write(tmp_path, _frame())
    with pytest.raises(InvalidInput, match="'nope'"):
        train(spec, ["data.target=nope"])
    with pytest.raises(NotFound, match=r"missing\.csv"):
        train(spec, ["data.path=missing.csv"])
    with pytest.raises(InvalidSpec, match="Model 'deep_net' is not available"):
        train(spec, ["models=[deep_net]"])
    with pytest.raises(InvalidSpec, match="Cannot read spec"):
        train(tmp_path / "nope.yaml")


def test_regression_and_multiclass_are_inferred(tmp_path: Path) -> None:
    from sklearn.datasets import load_diabetes, load_iris

    diabetes = load_diabetes(as_frame=True).frame.rename(columns={"target": "y"})
    result = train(_write(tmp_path, diabetes, models=["linear", "lightgbm"]))
    assert result.task.value == "regression" and result.metric == "rmse"
    iris = load_iris(as_frame=True).frame.rename(columns={"target": "y"})
    iris["y"] = iris["y"].map({0: "setosa", 1: "versicolor", 2: "virginica"})
    result = train(_write(tmp_path, iris, name="iris"))
    assert result.task.value == "multiclass" and result.score > 0.8
    assert list(fl.load_model("iris").predict(iris.head(3))) == ["setosa"] * 3


def test_a_random_split_of_time_ordered_data_when_asked_for(tmp_path: Path) -> None:
    frame = _frame().assign(ts=pd.date_range("2025-01-01", periods=400, freq="h"))
    spec = _write(tmp_path, frame, split={"strategy": "random", "allow_random_on_time": True})
    result = train(spec, ["data.time_column=ts"])
    checks = fl.Client().download_artifacts(result.run_id, "report/checks.json", tmp_path / "c")
    assert '"time_travel"' in checks.read_text() and '"warn"' in checks.read_text()


def test_natural_duplicates_train_by_default_with_an_honest_split(tmp_path: Path) -> None:
    """About one row in six repeats another (different customers, identical attributes):
    the default split keeps each group of copies on one side, so the run trains, says so,
    and no test row is a copy of a training row; forcing a split without it is refused."""
    rng = np.random.default_rng(4)
    base = _frame(1200, seed=5).round(3)
    repeated = base.iloc[rng.choice(len(base), 200, replace=False)]
    frame = pd.concat([base, repeated], ignore_index=True).sample(frac=1, random_state=1)
    spec = _write(tmp_path, frame)
    result = train(spec)
    client = fl.Client()
    checks = json.loads(client.download_artifacts(result.run_id, "report/checks.json",
                                                  tmp_path / "checks").read_text())
    kept = next(f for f in checks["findings"] if f["check"] == "copies_kept_together")
    assert kept["details"]["groups"] == 200 and kept["details"]["rows"] == 400
    assert kept["severity"] == "info"
    assert not [f for f in checks["findings"]
                if f["check"] == "train_test_overlap" and f["severity"] != "info"]
    datasets = {context: ds for ds, context in client.get_lineage("m").datasets}
    assert datasets["train"].num_rows + datasets["test"].num_rows == 1400
    with pytest.raises(LeakageDetected, match="copies of training rows"):
        train(spec, ["split.dedupe=false"])


def _regime_shift(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Six years of cases whose classes change at one moment (classes 0-2 before, 3-5
    after), with a noisy number and a note that names the class a third of the time: the
    most recent regime is what a model must learn, and the text is what narrows it down."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 1, n))
    y = np.where(t > 0.65, rng.choice([3, 4, 5], n, p=[0.5, 0.3, 0.2]),
                 rng.choice([0, 1, 2], n, p=[0.5, 0.3, 0.2]))
    y = np.where(rng.random(n) < 0.1, rng.integers(0, 6, n), y)  # some labels are noise
    words = np.array(["alpha", "bravo", "delta", "echo", "kilo", "lima"])
    named = rng.random(n) < 0.35
    notes = [f"{words[k] if hint else words[rng.integers(0, 6)]} note {rng.choice(list('xyz'))}"
             for k, hint in zip(y, named, strict=True)]
    return pd.DataFrame({
        "ts": pd.Timestamp("2018-01-01") + pd.to_timedelta(t * 6 * 365, unit="D"),
        "x1": (y + rng.normal(0, 3.0, n)).round(3), "note": notes,
        "label": [f"c{k}" for k in y]})


def test_with_a_time_column_the_model_follows_the_trend(tmp_path: Path) -> None:
    """The time column is a feature (its calendar parts and the days elapsed), so on the
    newest period the model beats a default HistGradientBoosting given the raw timestamp,
    and the same spec with the time used only to split (not as a feature) scores less;
    the newest quarter of the test split is scored on its own and reported."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import accuracy_score

    frame = _regime_shift()
    frame.to_csv(tmp_path / "mix.csv", index=False)
    data = {"path": str(tmp_path / "mix.csv"), "target": "label", "time_column": "ts"}
    tuning = {"trials": 4, "cv_folds": 3}
    result = train({"name": "mix", "data": data, "tuning": tuning})
    train({"name": "blind", "data": data, "tuning": tuning, "features": {"id": ["ts"]}})
    n_test = int(fl.Client().get_run(result.run_id).params["rows_test"])
    train_rows, test_rows = frame.iloc[:-n_test], frame.iloc[-n_test:]
    newest = test_rows.iloc[-int(np.ceil(0.25 * len(test_rows))):]

    def raw(rows: pd.DataFrame) -> pd.DataFrame:
        return rows[["x1"]].assign(ts=rows["ts"].astype("int64") / 1e9)

    baseline = HistGradientBoostingClassifier(random_state=0).fit(raw(train_rows),
                                                                  train_rows["label"])
    ours = accuracy_score(newest["label"], fl.load_model("mix").predict(newest))
    blind = accuracy_score(newest["label"], fl.load_model("blind").predict(newest))
    theirs = accuracy_score(newest["label"], baseline.predict(raw(newest)))
    assert ours > theirs + 0.08, (ours, theirs)
    assert ours > blind + 0.1, (ours, blind)
    assert "ts" in fl.load_model("mix").signature.names  # the time is an input
    assert result.recent_score is not None
    run = fl.Client().get_run(result.run_id)
    assert run.metrics["test_newest_f1_macro"] == pytest.approx(result.recent_score)
    evaluation = json.loads(fl.Client().download_artifacts(
        result.run_id, "report/evaluation.json", tmp_path / "ev").read_text())
    assert evaluation["recent"]["rows"] == len(newest) and evaluation["recent"]["column"] == "ts"


def test_a_time_budget_bounds_the_whole_run(tmp_path: Path) -> None:
    """tuning.time_budget_s covers everything from loading to registration: the search
    stops early enough for the refit and the evaluation, within 10% of the budget."""
    import time

    frame = _frame(20_000, seed=2)
    frame["d"] = np.random.default_rng(3).choice(list("abcdefgh"), len(frame))
    spec = _write(tmp_path, frame, models=["random_forest", "lightgbm", "logistic_regression"],
                  tuning={"trials": 500, "cv_folds": 3, "time_budget_s": 25})
    started = time.monotonic()
    result = train(spec)
    took = time.monotonic() - started
    assert took <= 25 * 1.1, took
    trials = fl.Client().search_runs("m", "tags.`forgeline.trial.state` != ''")
    assert 3 <= len(trials) < 500 and result.model_version is not None


def test_the_search_starts_with_the_default_gradient_boosting(tmp_path: Path) -> None:
    """Every family is first tried with its library's defaults, the strong and fast ones
    first: scikit-learn's default HistGradientBoosting is always the first trial."""
    result = train(_write(tmp_path, _frame(600), models=[], tuning={"trials": 5,
                                                                    "cv_folds": 3}))
    client = fl.Client()
    runs = sorted(client.search_runs("m", "params.model != ''"), key=lambda r: r.name)
    first = {r.name: r for r in runs}["trial-0"]
    assert first.params["model"] == "hist_gradient_boosting"
    assert set(first.params) == {"model"}  # the library's defaults: nothing set
    models = {r.params["model"] for r in runs if r.name.startswith("trial-")}
    assert {"hist_gradient_boosting", "lightgbm", "logistic_regression",
            "random_forest"} <= models
    assert result.model in models
