"""evaluate() on real small models: scores agree with scikit-learn's own functions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from forgeline.entities import MIN_SLICE_ROWS
from forgeline.errors import InvalidInput, InvalidSpec
from forgeline.training.evaluate import evaluate


@pytest.fixture(autouse=True)
def _one_thread():
    """HistGradientBoosting's OpenMP threads crawl on a busy shared machine; one is plenty."""
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


def _split(loader, seed: int = 0):
    X, y = loader(return_X_y=True, as_frame=True)
    return train_test_split(X, y, test_size=0.3, random_state=seed)


@pytest.fixture(scope="module")
def binary():
    X_train, X_test, y_train, y_test = _split(load_breast_cancer)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(X_train, y_train)
    return model, X_test, y_test


@pytest.fixture(scope="module")
def binary_eval(binary):
    model, X, y = binary
    return evaluate(model, X, y, "binary", importance_repeats=2)


def test_binary_metrics_match_sklearn(binary, binary_eval) -> None:
    model, X, y = binary
    p, pred = model.predict_proba(X)[:, 1], model.predict(X)
    expected = {
        "roc_auc": skm.roc_auc_score(y, p), "average_precision": skm.average_precision_score(y, p),
        "log_loss": skm.log_loss(y, model.predict_proba(X)), "brier": skm.brier_score_loss(y, p),
        "accuracy": skm.accuracy_score(y, pred), "f1": skm.f1_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "f1_macro": skm.f1_score(y, pred, average="macro"),
    }
    ev = binary_eval
    assert ev.metrics == pytest.approx(expected)
    assert (ev.task, ev.metric, ev.score) == ("binary", "roc_auc", expected["roc_auc"])
    assert ev.n_rows == len(X) and ev.classes == [0, 1] and ev.residuals is None
    assert ev.confusion == skm.confusion_matrix(y, pred).tolist()
    assert sum(map(sum, ev.confusion)) == len(X)


def test_binary_curves_are_monotone(binary_eval) -> None:
    roc, pr, cal = (binary_eval.curves[k] for k in ("roc", "pr", "calibration"))
    assert np.all(np.diff(roc["fpr"]) >= 0) and np.all(np.diff(roc["tpr"]) >= 0)
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0, 0, 1, 1)
    assert roc["auc"] == pytest.approx(binary_eval.metrics["roc_auc"])
    assert np.all(np.diff(pr["recall"]) <= 0)
    assert pr["average_precision"] == binary_eval.metrics["average_precision"]
    assert sum(cal["counts"]) == binary_eval.n_rows == sum(cal["hist_counts"])
    assert len(cal["counts"]) <= 10 and np.all(np.diff(cal["mean_predicted"]) > 0)
    assert all(0 <= f <= 1 for f in cal["fraction_positive"])


def test_curves_are_thinned_to_200_points() -> None:
    X, y = make_classification(n_samples=3000, n_features=5, flip_y=0.3, random_state=0)
    X = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    model = LogisticRegression().fit(X, y)
    ev = evaluate(model, X, pd.Series(y), "binary", importance_repeats=0)
    full_fpr, _, _ = skm.roc_curve(y, model.predict_proba(X)[:, 1])
    assert len(full_fpr) > 200
    for curve, keys in (("roc", ("fpr", "tpr")), ("pr", ("precision", "recall"))):
        assert all(len(ev.curves[curve][k]) <= 200 for k in keys)
    assert ev.curves["roc"]["fpr"][-1] == 1.0 and np.all(np.diff(ev.curves["roc"]["tpr"]) >= 0)
    assert ev.importance == []


def test_multiclass_metrics_and_per_class_roc() -> None:
    X_train, X_test, y_train, y_test = _split(load_iris)
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X_train, y_train)
    ev = evaluate(model, X_test, y_test, "multiclass", importance_repeats=2)
    proba, pred = model.predict_proba(X_test), model.predict(X_test)
    assert ev.metric == "f1_macro"
    assert ev.score == pytest.approx(skm.f1_score(y_test, pred, average="macro"))
    assert ev.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y_test, pred))
    assert ev.metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y_test, proba, multi_class="ovr"))
    assert ev.metrics["log_loss"] == pytest.approx(skm.log_loss(y_test, proba))
    assert set(ev.metrics) == {"roc_auc", "log_loss", "accuracy", "balanced_accuracy",
                               "f1_macro"}
    assert ev.confusion == skm.confusion_matrix(y_test, pred).tolist()
    assert [c["class"] for c in ev.curves["roc_ovr"]] == [0, 1, 2]
    for k, curve in enumerate(ev.curves["roc_ovr"]):
        assert curve["auc"] == pytest.approx(skm.roc_auc_score(y_test == k, proba[:, k]))
        assert np.all(np.diff(curve["fpr"]) >= 0) and np.all(np.diff(curve["tpr"]) >= 0)


def test_regression_metrics_and_residuals() -> None:
    X_train, X_test, y_train, y_test = _split(load_diabetes)
    model = HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(X_train, y_train)
    ev = evaluate(model, X_test, y_test, "regression", importance_repeats=2)
    pred = model.predict(X_test)
    assert ev.metric == "rmse" and ev.classes is None and ev.confusion is None
    assert ev.metrics == pytest.approx({"rmse": skm.root_mean_squared_error(y_test, pred),
                                        "mae": skm.mean_absolute_error(y_test, pred),
                                        "r2": skm.r2_score(y_test, pred)})
    res = ev.residuals
    assert res["y_true"] == pytest.approx(y_test.to_list())  # under 2000 rows: all, in order
    assert np.allclose(np.subtract(res["y_true"], res["y_pred"]), res["residual"])
    assert sum(res["hist_counts"]) == len(X_test)


def _planted(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"noise": rng.normal(size=n), "strong": rng.normal(size=n),
                      "cat": rng.choice(["a", "b", "c"], n), "weak": rng.normal(size=n)})
    return X, 3 * X["strong"].to_numpy() + 0.3 * X["weak"].to_numpy()


def test_importance_is_per_raw_column_and_ranks_the_planted_feature_first() -> None:
    X, signal = _planted(600)
    y = (signal + np.random.default_rng(1).normal(scale=0.5, size=len(X)) > 0).astype(int)
    model = make_pipeline(ColumnTransformer([("cat", OneHotEncoder(), ["cat"])],
                                            remainder=StandardScaler()),
                          LogisticRegression()).fit(X, y)
    ev = evaluate(model, X, pd.Series(y), "binary", importance_rows=300, importance_repeats=3)
    assert [r["feature"] for r in ev.importance][:2] == ["strong", "weak"]
    assert {r["feature"] for r in ev.importance} == set(X.columns)
    assert ev.importance[0]["mean"] > 0.2 and ev.importance[0]["std"] >= 0


class _Slow:
    """A model whose every prediction takes ``delay`` seconds: the cost of a wide pipeline."""

    def __init__(self, model, delay: float) -> None:
        self.model, self.delay, self.classes_ = model, delay, model.classes_

    def fit(self, X, y):  # permutation_importance never refits; here for the protocol
        return self

    def predict_proba(self, X):
        import time

        time.sleep(self.delay)
        return self.model.predict_proba(X)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def test_importance_fits_the_time_it_is_given() -> None:
    """With a time allowance, repeats and then rows are cut so importance ends in time (and
    the note says so); with too little, it is skipped and says why; without, nothing is cut."""
    import time

    X, signal = _planted(600)
    y = (signal > 0).astype(int)
    fitted = make_pipeline(ColumnTransformer([("cat", OneHotEncoder(), ["cat"])],
                                             remainder=StandardScaler()),
                           LogisticRegression()).fit(X, y)
    model = _Slow(fitted, 0.02)
    calls_per_repeat = X.shape[1]
    full = evaluate(model, X, pd.Series(y), "binary", importance_repeats=3)
    assert full.importance_note is None and len(full.importance) == X.shape[1]
    allowed = 0.02 * (calls_per_repeat + 2) * 1.5  # about one repeat and a half
    started = time.perf_counter()
    cut = evaluate(model, X, pd.Series(y), "binary", importance_repeats=3,
                   importance_seconds=allowed)
    assert cut.importance_note is not None and "cut to 1 repeat" in cut.importance_note
    assert cut.importance[0]["feature"] == "strong"
    assert time.perf_counter() - started < allowed + 1.0  # the evaluation's own predictions
    skipped = evaluate(model, X, pd.Series(y), "binary", importance_seconds=0.01)
    assert skipped.importance == [] and "skipped to stay in the time budget" in str(
        skipped.importance_note)


def test_regression_importance_and_residual_sample_cap() -> None:
    X, signal = _planted(2500)
    X = X.drop(columns="cat")
    model = LinearRegression().fit(X, signal)
    ev = evaluate(model, X, pd.Series(signal), "regression", importance_rows=500,
                  importance_repeats=2)
    assert ev.importance[0]["feature"] == "strong"  # rmse: lower is better, still ranked first
    assert ev.importance[0]["mean"] > ev.importance[1]["mean"] > 0
    assert len(ev.residuals["y_true"]) == 2000 and sum(ev.residuals["hist_counts"]) == 2500


@pytest.fixture(scope="module")
def fair_case():
    """Group A: 80 of 100 positive, all easy. Group B: 20 of 100 positive, 10 of them on
    the negative side (the model misses them). So by hand: positive rate 0.8 vs 0.1,
    TPR 1 vs 0.5, FPR 0 vs 0, accuracy 1 vs 0.9."""
    rng = np.random.default_rng(0)
    pos, neg = rng.uniform(1, 2, 100), rng.uniform(-2, -1, 200)
    x = np.concatenate([pos[:80], neg[:20], pos[80:90], neg[20:30], neg[30:110], neg[110:115]])
    y = np.array([1] * 80 + [0] * 20 + [1] * 20 + [0] * 80 + [0] * 5)
    group = ["A"] * 100 + ["B"] * 100 + ["C"] * 5
    X = pd.DataFrame({"x": x})
    model = LogisticRegression().fit(X, y)
    assert (model.predict(X) == (x > 0)).all()  # the premise of the hand computation
    n = len(x)
    sensitive = pd.DataFrame({
        "group": group,
        "age": np.where(np.arange(n) % 7 == 0, np.nan, rng.integers(18, 90, n)),
        "site": np.where(y == 1, "x", np.where(np.arange(n) % 2 == 0, "y", "z")),
    }, index=X.index + 1000)  # positional alignment: the index of sensitive is not used
    return model, X, pd.Series(y), sensitive


def test_slices_and_fairness_report_a_known_gap(fair_case) -> None:
    model, X, y, sensitive = fair_case
    ev = evaluate(model, X, y, "binary", metric="accuracy", sensitive=sensitive,
                  importance_repeats=0)
    rows = {r["value"]: r for r in ev.slices["group"]}
    assert list(rows) == ["A", "B", "C"]
    assert (rows["A"]["n"], rows["B"]["n"], rows["C"]["n"]) == (100, 100, 5)
    assert rows["A"]["share"] == pytest.approx(100 / 205)
    assert rows["C"]["skipped"] and "accuracy" not in rows["C"] and MIN_SLICE_ROWS > 5
    a, b = rows["A"], rows["B"]
    assert (a["positive_rate"], a["tpr"], a["fpr"], a["accuracy"]) == (0.8, 1.0, 0.0, 1.0)
    assert (b["positive_rate"], b["tpr"], b["fpr"], b["accuracy"]) == (0.1, 0.5, 0.0, 0.9)
    assert {"roc_auc", "f1", "accuracy"} <= set(a)
    fair = ev.fairness["group"]
    assert fair["demographic_parity_difference"] == pytest.approx(0.7)
    assert fair["equalized_odds_difference"] == pytest.approx(0.5)
    assert fair["largest_gap"] == {"metric": "accuracy", "value": pytest.approx(0.1),
                                   "best_slice": "A", "worst_slice": "B"}
    assert (fair["n_slices"], fair["n_scored"]) == (3, 2)


def test_numeric_sensitive_column_is_cut_into_quartiles(fair_case) -> None:
    model, X, y, sensitive = fair_case
    ev = evaluate(model, X, y, "binary", sensitive=sensitive[["age"]], importance_repeats=0)
    values = [r["value"] for r in ev.slices["age"]]
    assert [v[:2] for v in values] == ["Q1", "Q2", "Q3", "Q4", "(m"]
    assert values[-1] == "(missing)"
    assert sum(r["n"] for r in ev.slices["age"]) == len(X)
    assert ev.slices["age"][-1]["n"] == int(sensitive["age"].isna().sum())
    level = pd.DataFrame({"level": np.array([10, 2, 1])[np.arange(len(X)) % 3]})
    ev = evaluate(model, X, y, "binary", sensitive=level, importance_repeats=0)
    assert [r["value"] for r in ev.slices["level"]] == ["1", "2", "10"]  # few values: as is


def test_undefined_slice_metrics_become_none_in_json(fair_case) -> None:
    model, X, y, sensitive = fair_case
    ev = evaluate(model, X, y, "binary", sensitive=sensitive, seed=3, importance_repeats=2)
    rows = {r["value"]: r for r in ev.slices["site"]}
    assert np.isnan(rows["y"]["roc_auc"]) and np.isnan(rows["y"]["tpr"])  # no positives
    data = ev.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["slices"]["site"][1]["roc_auc"] is None
    assert data == evaluate(model, X, y, "binary", sensitive=sensitive, seed=3,
                            importance_repeats=2).to_dict()


def test_same_seed_same_result(binary, binary_eval) -> None:
    model, X, y = binary
    again = evaluate(model, X, y, "binary", importance_repeats=2)
    assert again.to_dict() == binary_eval.to_dict()
    other = evaluate(model, X, y, "binary", importance_repeats=2, seed=1)
    assert other.importance != binary_eval.importance
    json.dumps(binary_eval.to_dict(), allow_nan=False)


def test_threshold_moves_the_labels(binary) -> None:
    model, X, y = binary
    ev = evaluate(model, X, y, "binary", threshold=0.9, importance_repeats=0)
    pred = (model.predict_proba(X)[:, 1] >= 0.9).astype(int)
    assert ev.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert ev.confusion == skm.confusion_matrix(y, pred).tolist()


def test_bad_input(binary) -> None:
    model, X, y = binary
    with pytest.raises(InvalidInput, match=r"^Unknown task 'ranking'\."):
        evaluate(model, X, y, "ranking")
    with pytest.raises(InvalidInput, match=r"^X has 171 rows and y has 170: they must be"):
        evaluate(model, X, y[:-1], "binary")
    with pytest.raises(InvalidInput, match=r"^sensitive has 3 rows and X has 171"):
        evaluate(model, X, y, "binary", sensitive=pd.DataFrame({"g": [1, 2, 3]}))
    with pytest.raises(InvalidInput, match=r"^threshold must lie strictly between 0 and 1"):
        evaluate(model, X, y, "binary", threshold=1.0)
    three = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, np.arange(len(X)) % 3)
    with pytest.raises(InvalidInput, match=r"^A binary model needs 2 classes in "
                                           r"model.classes_, found 3\."):
        evaluate(three, X, y, "binary")
    with pytest.raises(InvalidInput, match=r"^A binary model must have predict_proba; "
                                           r"LinearSVC has not"):
        evaluate(LinearSVC().fit(X, y), X, y, "binary")
    with pytest.raises(InvalidSpec, match=r"^Metric 'rmse' does not apply to a binary task\."):
        evaluate(model, X, y, "binary", metric="rmse")
    with pytest.raises(InvalidSpec, match=r"^Unknown metric 'auc'\."):
        evaluate(model, X, y, "binary", metric="auc")
