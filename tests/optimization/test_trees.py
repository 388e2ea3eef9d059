"""Truncation and pruning of tree ensembles (optimization/trees.py, lgb_text.py) on real
LightGBM and histogram gradient boosting models, a categorical column among the inputs."""

from __future__ import annotations

import logging
from pathlib import Path

import lightgbm
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from forgeline.optimization.lgb_text import prune
from forgeline.optimization.trees import tree_candidates
from tests.optimization.treemodels import FEATURES, bare, frame, pipeline, rows_with_edges


def _validation():
    data = frame()
    return data[FEATURES][500:], data.label[500:]


def test_truncation_keeps_the_first_rounds_scored_on_the_validation_rows() -> None:
    teacher = pipeline()
    X_val, y_val = _validation()
    candidates = tree_candidates(teacher, X_val, y_val, "binary", "roc_auc")
    truncated = [c for c in candidates if c.technique == "truncation"]
    assert [c.params for c in truncated] == [{"trees": 2}, {"trees": 5}, {"trees": 10}]
    rows = rows_with_edges()
    codes = teacher[:-1].transform(rows)
    for c in truncated:
        k = c.params["trees"]
        assert c.name == f"truncated-{k}"
        final = c.model.steps[-1][1]
        assert type(final) is lightgbm.LGBMClassifier
        assert final.booster_.current_iteration() == k
        want = teacher.steps[-1][1].booster_.predict(codes, num_iteration=k)
        np.testing.assert_allclose(c.model.predict_proba(rows)[:, 1], want, rtol=0, atol=1e-12)
        score = roc_auc_score(y_val, c.model.predict_proba(X_val)[:, 1])
        assert f"validation roc_auc {score:.4f}" in c.detail
        assert f"first {k} of 20 boosting rounds" in c.detail
    # the teacher is left as it was
    assert teacher.steps[-1][1].booster_.current_iteration() == 20
    assert teacher.steps[-1][1].get_params()["n_estimators"] == 20


def test_pruned_pipeline_predicts_as_the_teacher_with_a_categorical_column() -> None:
    teacher = pipeline()
    [pruned] = [c for c in tree_candidates(teacher, *_validation(), "binary", None)
                if c.technique == "pruning"]
    assert pruned.name == "pruned"
    assert type(pruned.model.steps[-1][1]) is lightgbm.LGBMClassifier
    assert teacher.steps[-1][1].get_params()["categorical_column"] == [0]  # codes first
    rows = rows_with_edges()
    np.testing.assert_allclose(pruned.model.predict_proba(rows), teacher.predict_proba(rows),
                               rtol=0, atol=1e-9)
    assert set(pruned.params) == {"leaves", "trees"}


def _separable() -> lightgbm.LGBMClassifier:
    """Tiny separable data: LightGBM makes splits of ~zero gain whose leaves are equal."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    X[:, 2] = rng.integers(0, 6, 60)
    y = (X[:, 0] > 0).astype(int)
    return lightgbm.LGBMClassifier(n_estimators=30, num_leaves=4, min_child_samples=5,
                                   n_jobs=1, verbose=-1).fit(X, y, categorical_feature=[2])


def _probe(columns: int, categorical: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3000, columns)) * 2
    X[:, categorical] = rng.integers(-1, 15, 3000)  # unseen and negative categories too
    X[rng.random(3000) < 0.05, 1] = np.nan
    X[rng.random(3000) < 0.05, categorical] = np.nan
    return X


def test_pruning_merges_equal_leaves_and_predicts_the_same_to_1e_9() -> None:
    text = _separable().booster_.model_to_string()
    result = prune(text)
    assert result.leaves_after < result.leaves_before  # there was something to merge
    before, after = lightgbm.Booster(model_str=text), lightgbm.Booster(model_str=result.text)
    X = _probe(3, 2)
    np.testing.assert_allclose(after.predict(X, raw_score=True),
                               before.predict(X, raw_score=True), rtol=0, atol=1e-9)
    assert after.dump_model()["tree_info"][0]["num_leaves"] <= 3


def test_pruning_a_model_with_nothing_to_prune_gives_it_back_unchanged() -> None:
    text = bare("regression")[0].booster_.model_to_string()
    assert prune(text, tolerance=0.0).text == text  # the rewrite is exact, byte for byte


def test_pruning_drops_rounds_whose_trees_are_all_zero_in_a_multiclass_model() -> None:
    model, X = bare("multiclass")
    text = model.booster_.model_to_string()
    # zero the last round (one tree per class): it then changes nothing and is dropped
    head, _, trees = text.partition("\nTree=")
    blocks = ("Tree=" + trees).split("\n\n\n")
    for i in range(len(blocks) - 4, len(blocks) - 1):
        lines = blocks[i].split("\n")
        blocks[i] = "\n".join(
            "leaf_value=" + " ".join("0" for _ in line.split()) if line.startswith(
                "leaf_value=") else line for line in lines)
    # without tree_sizes (the blocks' lengths changed), LightGBM reads the trees in order
    head = "\n".join(line for line in head.split("\n") if not line.startswith("tree_sizes="))
    zeroed = head + "\n" + "\n\n\n".join(blocks)
    original = lightgbm.Booster(model_str=zeroed)
    result = prune(zeroed)
    assert (result.trees_before, result.trees_after) == (30, 27)
    pruned = lightgbm.Booster(model_str=result.text)
    assert pruned.num_trees() == 27
    np.testing.assert_allclose(pruned.predict(X), original.predict(X), rtol=0, atol=1e-9)


def test_histogram_gradient_boosting_is_truncated_not_pruned(
        caplog: pytest.LogCaptureFixture) -> None:
    teacher = pipeline("hist_gradient_boosting", 20)
    X_val, y_val = _validation()
    with caplog.at_level(logging.INFO, "forgeline.optimization"):
        candidates = tree_candidates(teacher, X_val, y_val, "binary", "roc_auc")
    assert [c.params for c in candidates] == [{"trees": 2}, {"trees": 5}, {"trees": 10}]
    assert {c.technique for c in candidates} == {"truncation"}
    assert "no pruning for HistGradientBoostingClassifier" in caplog.text
    final = candidates[0].model.steps[-1][1]
    assert final.n_iter_ == 2 and teacher.steps[-1][1].n_iter_ == 20
    codes = teacher[:-1].transform(X_val)
    second = list(teacher.steps[-1][1].staged_decision_function(codes))[1]  # after 2 rounds
    np.testing.assert_allclose(final.decision_function(codes), second, rtol=0, atol=1e-12)


def test_other_models_get_no_tree_candidate(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "forgeline.optimization"):
        assert tree_candidates(pipeline("logistic_regression"), *_validation(), "binary",
                               None) == []
    assert "not LightGBM nor a histogram gradient boosting" in caplog.text


def test_a_pruned_variant_is_packaged_and_served_by_onnx_runtime(tmp_path: Path) -> None:
    from forgeline.data.inference import infer_schema
    from forgeline.packaging import Signature, load_package, save_package
    from forgeline.packaging.predictor import Predictor
    from forgeline.serving.runtime import select_runtime

    [pruned] = [c for c in tree_candidates(pipeline(), *_validation(), "binary", None)
                if c.technique == "pruning"]
    data = frame()
    signature = Signature.from_frame(data[FEATURES], infer_schema(data, "label"), "binary",
                                     [0, 1])
    save_package(tmp_path / "pkg", pruned.model, signature, profile={}, metrics={}, card="")
    runtime = select_runtime(Predictor(load_package(tmp_path / "pkg")))
    assert runtime.name == "onnxruntime"  # a plain LGBMClassifier: converted, parity checked
