"""Training end to end: real data files, real models, a real store."""

from __future__ import annotations

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
    lineage = client.get_lineage("fraud@champion")
    assert lineage.run.run_id == run.run_id

    model = fl.load_model("fraud@champion")
    assert {"columns", "target", "prediction", "multivariate"} <= set(model.profile)
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
