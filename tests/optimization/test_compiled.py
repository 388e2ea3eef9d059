"""Compiled LightGBM (packaging/compiled.py, optimization/compile.py): compiled for real
with treelite, tl2cgen and gcc, compared with LightGBM's own predictions, stored in a
model package, served through select_runtime, its cache shared between processes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from forgeline.data.inference import infer_schema
from forgeline.errors import InvalidInput
from forgeline.optimization.compile import compile_candidates
from forgeline.packaging import Signature, load_package, save_package
from forgeline.packaging.compiled import (
    CompiledLGBMClassifier,
    CompiledLGBMRegressor,
    compile_lightgbm,
    library,
)
from forgeline.packaging.explain import Explainer
from forgeline.packaging.predictor import Predictor
from forgeline.serving.runtime import select_runtime
from tests.optimization.treemodels import FEATURES, bare, frame, pipeline, rows_with_edges

pytest.importorskip("tl2cgen")


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One compiled-model cache for the session: each model compiles once (~0.5 s)."""
    return tmp_path_factory.mktemp("compiled-cache")


@pytest.fixture(autouse=True)
def _cache(shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGELINE_CACHE_DIR", str(shared_cache))


def test_the_compiled_pipeline_predicts_as_lightgbm_with_a_categorical_column() -> None:
    teacher = pipeline()
    [candidate] = compile_candidates(teacher)
    assert (candidate.name, candidate.technique) == ("compiled", "compilation")
    final = candidate.model.steps[-1][1]
    assert type(final) is CompiledLGBMClassifier and final.serve_native
    rows = rows_with_edges()  # missing values and an unseen country included
    np.testing.assert_allclose(candidate.model.predict_proba(rows),
                               teacher.predict_proba(rows), rtol=0, atol=1e-9)
    assert (candidate.model.predict(rows) == teacher.predict(rows)).all()
    # a few rows at a time go straight to the library's C function, one row per call
    few = rows.iloc[-10:]  # missing values and the unseen country among them
    np.testing.assert_allclose(candidate.model.predict_proba(few), teacher.predict_proba(few),
                               rtol=0, atol=1e-9)
    assert final.native_reason.startswith("compiled LightGBM (tl2cgen ")
    assert teacher.steps[-1][1].__module__.startswith("lightgbm")  # the teacher unchanged


def _at_thresholds(model: Any, X: np.ndarray) -> np.ndarray:
    """``X`` with numeric values set to the model's split thresholds themselves, and to
    LightGBM's zero threshold (+-1e-35 as a float32), where the two sides of a split meet."""
    found: dict[int, list[float]] = {}

    def walk(node: dict[str, Any]) -> None:
        if "split_feature" in node:
            if node["decision_type"] == "<=":
                found.setdefault(node["split_feature"], []).append(node["threshold"])
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in model.booster_.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    rng = np.random.default_rng(3)
    edges = X.copy()
    for column, values in found.items():
        pick = rng.random(len(edges)) < 0.5
        edges[pick, column] = rng.choice(np.asarray(values), int(pick.sum()))
    zero = float(np.float32(1e-35))
    edges[:20, 2], edges[20:40, 2] = -zero, zero  # LightGBM reads both as 0
    return edges


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_multiclass_and_regression_predict_as_lightgbm(kind: str) -> None:
    model, X = bare(kind)
    X = np.vstack([X, _at_thresholds(model, X)])
    compiled = compile_lightgbm(model)
    if kind == "multiclass":
        assert isinstance(compiled, CompiledLGBMClassifier)
        np.testing.assert_allclose(compiled.predict_proba(X), model.predict_proba(X),
                                   rtol=0, atol=1e-9)
        assert (compiled.predict(X) == model.predict(X)).all()
        assert list(compiled.classes_) == [0, 1, 2]
    else:
        assert isinstance(compiled, CompiledLGBMRegressor)
        np.testing.assert_allclose(compiled.predict(X), model.predict(X), rtol=0, atol=1e-9)
    # one row per call (the C call path): unseen and missing categories, missing values,
    # +-1e-35, values at thresholds
    picked = [*range(10), *np.flatnonzero(np.isnan(X[:, 1]))[:5], *range(500, 506),
              *range(520, 526), *range(600, 610)]
    single = [compiled.predict_proba(X[i:i + 1]) if kind == "multiclass" else
              compiled.predict(X[i:i + 1]) for i in picked]
    want = model.predict_proba(X[picked]) if kind == "multiclass" else model.predict(X[picked])
    np.testing.assert_allclose(np.concatenate(single), want, rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="expects 4 features"):
        compiled.predict(X[:, :3])


def test_a_package_round_trip_is_served_natively_by_select_runtime(tmp_path: Path) -> None:
    teacher = pipeline()
    [candidate] = compile_candidates(teacher)
    signature = _signature()
    save_package(tmp_path / "pkg", candidate.model, signature, profile={}, metrics={},
                 card="")
    package = load_package(tmp_path / "pkg")
    assert type(package.model.steps[-1][1]) is CompiledLGBMClassifier
    pinned = {line.partition("==")[0]: line for line in
              (tmp_path / "pkg" / "requirements.txt").read_text().split()}
    assert (pinned["tl2cgen"], pinned["treelite"]) == ("tl2cgen==1.0.0", "treelite==4.1.2")
    assert pinned["lightgbm"].startswith("lightgbm==")
    assert "_engine" not in vars(package.model.steps[-1][1])  # compiled on first use only
    rows = rows_with_edges()
    np.testing.assert_allclose(package.model.predict_proba(rows), teacher.predict_proba(rows),
                               rtol=0, atol=1e-9)
    runtime = select_runtime(Predictor(package))
    assert runtime.name == "native"
    assert runtime.detail.startswith("native: compiled LightGBM (tl2cgen ")
    # the ColumnTransformer runs as an ONNX graph, checked equal to scikit-learn's
    assert "; preprocessing: onnxruntime: equal to scikit-learn's on 256 sampled rows" in (
        runtime.detail)
    got = runtime.predict(signature.validate(rows))
    np.testing.assert_allclose(got.proba, teacher.predict_proba(rows), rtol=0, atol=1e-9)
    assert (got.labels == teacher.predict(rows)).all()
    for i in (0, len(rows) - 3, len(rows) - 2, len(rows) - 1):  # one row: the C call path
        one = runtime.predict(signature.validate(rows.iloc[[i]]))
        np.testing.assert_allclose(one.proba, teacher.predict_proba(rows.iloc[[i]]),
                                   rtol=0, atol=1e-9)
    # explained from the same trees as the teacher (LightGBM's pred_contrib)
    ours = Explainer(Predictor(package)).explain(rows.iloc[:20])
    theirs = Explainer(teacher).explain(rows.iloc[:20])
    assert ours.method == theirs.method == "lightgbm.pred_contrib"
    np.testing.assert_allclose(ours.contributions, theirs.contributions, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.base, theirs.base, rtol=0, atol=1e-9)
    with pytest.raises(InvalidInput, match="cannot be served with ONNX Runtime: it is served "
                                           "natively"):
        select_runtime(Predictor(package), "onnx")


def _signature() -> Signature:
    data = frame()
    return Signature.from_frame(data[FEATURES], infer_schema(data, "label"), "binary",
                                list(pipeline().classes_))


_SECOND_PROCESS = """
import sys
from pathlib import Path
from forgeline.packaging.compiled import library
print(library(Path(sys.argv[1]).read_text()))
"""


def test_two_processes_compile_a_model_once_and_a_second_instance_reuses_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGELINE_CACHE_DIR", str(tmp_path / "cache"))
    model, X = bare("regression")
    text = compile_lightgbm(model).model_text_
    (tmp_path / "model.txt").write_text(text)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-c", _SECOND_PROCESS, str(tmp_path / "model.txt")]
    # two processes at once on an empty cache: one compiles, the other waits for its library
    running = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env) for _ in range(2)]
    outputs = [p.communicate(timeout=180) for p in running]
    assert [p.returncode for p in running] == [0, 0], outputs
    # the last line: tl2cgen's compiler logs its own lines to stdout before it
    built = Path(outputs[0][0].strip().splitlines()[-1])
    assert outputs[1][0].strip().splitlines()[-1] == str(built) and built.is_file()
    first = built.stat()
    again = compile_lightgbm(model)  # a second instance of the same model, in this process
    np.testing.assert_allclose(again.predict(X), model.predict(X), rtol=0, atol=1e-9)
    assert library(again.model_text_) == built
    assert (built.stat().st_ino, built.stat().st_mtime_ns) == (first.st_ino,
                                                               first.st_mtime_ns)
    assert [p.name for p in (tmp_path / "cache" / "compiled").iterdir()
            if not p.name.startswith(".")] == [built.parent.name]


def test_without_a_c_compiler_no_candidate_and_the_wrapper_falls_back_to_lightgbm(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("FORGELINE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no gcc to be found
    model, X = bare("regression")
    with caplog.at_level(logging.WARNING):
        assert compile_candidates(model) == []
        compiled = compile_lightgbm(model)
        np.testing.assert_allclose(compiled.predict(X), model.predict(X), rtol=0, atol=1e-9)
    assert "no compiled candidate: compiling the LightGBM model failed" in caplog.text
    assert compiled.native_reason.startswith("LightGBM's own booster, not compiled "
                                             "(compilation failed: ")


def test_models_that_are_not_lightgbm_get_no_compiled_candidate(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "forgeline.optimization"):
        assert compile_candidates(pipeline("logistic_regression")) == []
    assert "no compiled candidate: the final estimator (LogisticRegression) is not LightGBM" \
        in caplog.text
