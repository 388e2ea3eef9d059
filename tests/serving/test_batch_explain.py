"""``forgeline predict MODEL INPUT --explain`` and ``score_file(explain=True)``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgeline.data.inference import infer_schema
from forgeline.data.profile import build_profile
from forgeline.entities import Task
from forgeline.errors import InvalidInput
from forgeline.packaging import Signature, load_model, save_package
from forgeline.serving.batch import score_file
from forgeline.training.plan import ModelPlan
from tests.cli.conftest import invoke
from tests.serving.test_batch import transactions

FEATURES = ("amount", "items", "country")


def _package(directory: Path, model: str, *, profile: bool) -> Path:
    data = transactions(600).drop(columns=["txn_id"])
    schema = infer_schema(data, "label")
    plan = ModelPlan(Task.BINARY, schema, FEATURES, "roc_auc", 0, False)
    params = {"n_estimators": 100} if model == "lightgbm" else {}
    pipeline = plan.pipeline(model, params).fit(data[list(FEATURES)], data.label)
    signature = Signature.from_frame(data[list(FEATURES)], schema, "binary",
                                     list(pipeline.classes_))
    return save_package(directory, pipeline, signature,
                        profile=build_profile(data, schema) if profile else {}, metrics={},
                        card="")


@pytest.fixture(scope="module")
def lightgbm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _package(tmp_path_factory.mktemp("explain") / "lgbm", "lightgbm", profile=False)


def test_the_predict_command_adds_contributions(tmp_path: Path, lightgbm_dir: Path) -> None:
    transactions(250, seed=4).to_parquet(tmp_path / "in.parquet")
    result = invoke("predict", str(lightgbm_dir), str(tmp_path / "in.parquet"), "--keys",
                    "txn_id", "--explain", "--json", "--chunk-rows", "100")
    assert result.exit_code == 0, result.output
    out = pd.read_parquet(json.loads(result.stdout)["output"])
    contrib = [f"contrib_{c}" for c in FEATURES]
    assert list(out.columns) == ["txn_id", "prediction", "proba_0", "proba_1", *contrib,
                                 "base_value"]
    predictor = load_model(lightgbm_dir)
    frame = predictor.prepare(transactions(250, seed=4))
    log_odds = predictor.model[-1].predict(predictor.model[0].transform(frame),
                                           raw_score=True)
    np.testing.assert_allclose(out[contrib].sum(axis=1) + out["base_value"], log_odds,
                               rtol=0, atol=1e-6)
    # the probabilities beside them: of the runtime chosen (ONNX computes in float32)
    np.testing.assert_allclose(1 / (1 + np.exp(-log_odds)), out["proba_1"], atol=1e-6)


def test_a_linear_model_is_centred_on_its_profile(tmp_path: Path) -> None:
    directory = _package(tmp_path / "linear", "logistic_regression", profile=True)
    transactions(40, seed=6).to_csv(tmp_path / "in.csv", index=False)
    summary = score_file(directory, tmp_path / "in.csv", tmp_path / "out.csv", explain=True)
    out = pd.read_csv(summary.output)
    predictor = load_model(directory)
    log_odds = predictor.model.decision_function(predictor.prepare(transactions(40, seed=6)))
    total = out[[f"contrib_{c}" for c in FEATURES]].sum(axis=1) + out["base_value"]
    np.testing.assert_allclose(total, log_odds, rtol=0, atol=1e-6)
    # the base value: the model at the mean of a sample drawn from the training profile,
    # near the mean log-odds of the training data itself
    train = predictor.model.decision_function(transactions(600).drop(columns=["txn_id"]))
    assert out["base_value"].nunique() == 1
    assert abs(out["base_value"].iloc[0] - train.mean()) < 0.5


def test_what_cannot_be_explained_is_one_line(tmp_path: Path) -> None:
    directory = _package(tmp_path / "bare", "logistic_regression", profile=False)
    transactions(20).to_csv(tmp_path / "in.csv", index=False)
    bad = invoke("predict", str(directory), str(tmp_path / "in.csv"), "--explain",
                 "--no-progress")
    assert bad.exit_code == 2
    assert bad.stderr.strip().startswith(
        "error: Explaining a LogisticRegression model needs background data.")
    assert len(bad.stderr.strip().splitlines()) == 1
    with pytest.raises(InvalidInput, match=r"^Explanations are computed with engine='local'"):
        transactions(20).to_parquet(tmp_path / "in.parquet")
        score_file(directory, tmp_path / "in.parquet", tmp_path / "o.parquet", engine="ray",
                   explain=True)
