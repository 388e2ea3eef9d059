"""Quantization: the int8 copy of a fitted MLP pipeline is smaller, predicts close to the
float32 one (scores too), is packaged and served like any model; models without
``quantized()`` give no candidate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from forgeline.data.inference import infer_schema
from forgeline.data.profile import build_profile
from forgeline.entities import Task
from forgeline.optimization.quantize import quantize_candidates
from forgeline.packaging import Signature, load_model, save_package
from forgeline.serving.runtime import select_runtime
from forgeline.training.plan import ModelPlan
from tests.training.test_mlp import FEATURES, table

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, Any, Any]:
    """An MLP pipeline (wide enough that int8 matters) fitted on 600 rows; held-out rows;
    the plan."""
    data, held_out = table(600, 0), table(400, 1)
    plan = ModelPlan(Task.BINARY, infer_schema(data, "y"), tuple(FEATURES), "roc_auc", 0,
                     False, device="cpu")
    pipeline = plan.pipeline("mlp", {"width": 128, "depth": 2, "max_epochs": 20})
    return pipeline.fit(data[FEATURES], data.y), held_out, plan


def test_the_int8_copy_is_smaller_and_scores_like_float32(fitted: tuple[Any, Any, Any]
                                                          ) -> None:
    pipeline, held_out, _ = fitted
    (candidate,) = quantize_candidates(pipeline)
    assert (candidate.name, candidate.technique) == ("int8", "quantization")
    assert candidate.params == {"precision": "int8", "method": "dynamic"}
    float32, int8 = pipeline.steps[-1][1], candidate.model.steps[-1][1]
    assert (float32.precision_, int8.precision_) == ("float32", "int8")  # the teacher kept
    assert candidate.model.steps[0][1] is pipeline.steps[0][1]  # same preprocessing
    assert len(int8.onnx_model_) * 2.5 < len(float32.onnx_model_)
    X, y = held_out[FEATURES], held_out.y
    before, after = pipeline.predict_proba(X), candidate.model.predict_proba(X)
    assert np.abs(after - before).max() < 0.05
    assert abs(roc_auc_score(y, after[:, 1]) - roc_auc_score(y, before[:, 1])) < 0.01
    assert (candidate.model.predict(X) == pipeline.predict(X)).mean() > 0.97


def test_the_int8_model_is_packaged_and_served_by_onnx_runtime(
        fitted: tuple[Any, Any, Any], tmp_path: Path) -> None:
    pipeline, held_out, plan = fitted
    (candidate,) = quantize_candidates(pipeline)
    data = table(600, 0)
    signature = Signature.from_frame(data[FEATURES], plan.schema, "binary",
                                     list(pipeline.classes_))
    save_package(tmp_path / "int8", candidate.model, signature, metrics={}, card="",
                 profile=build_profile(data, plan.schema))
    model = load_model(tmp_path / "int8")
    expected = candidate.model.predict_proba(held_out[FEATURES])
    assert np.array_equal(model.predict_proba(held_out[FEATURES]), expected)
    runtime = select_runtime(model)
    assert runtime.name == "onnxruntime", runtime.detail
    served = runtime.predict(model.signature.validate(held_out[FEATURES]))
    assert np.allclose(served.proba, expected, atol=1e-4, rtol=0)


def test_a_model_without_quantized_gives_no_candidate(fitted: tuple[Any, Any, Any]) -> None:
    _, _, plan = fitted
    data = table(200, 2)
    linear = plan.pipeline("logistic_regression", {}).fit(data[FEATURES], data.y)
    assert quantize_candidates(linear) == []
