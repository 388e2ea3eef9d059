"""Synthetic data with known shifts, a real model package built from it, and log files.

The training frame has 25 feature columns: 20 numeric of several shapes (normal,
log-normal, uniform, exponential, counts) and 5 categorical (one with 60 levels, so the
profile keeps its top 50 and an ``other`` bucket; one boolean). ``shifted=True`` moves 5
numeric columns (by 0.5 standard deviation, or by a 1.5x scale) and 2 categorical ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import forgeline as fl
from forgeline.data.profile import build_profile, reference_extras
from forgeline.data.schema import ColumnInfo, ColumnKind, Schema
from forgeline.packaging import Predictor, Signature, load_package, save_package
from forgeline.packaging.attributions import attribution_record, global_explanation
from forgeline.packaging.package import ATTRIBUTIONS_FILE

SHAPES = (["normal"] * 6 + ["lognormal"] * 4 + ["uniform"] * 4 + ["exponential"] * 3
          + ["counts"] * 3)
NUMERIC = [f"n{i}" for i in range(20)]
CATEGORICAL = ["c0", "c1", "c2", "c3", "flag"]
FEATURES = NUMERIC + CATEGORICAL
SHIFTED_NUMERIC = {"n0": "shift", "n1": "scale", "n6": "shift", "n10": "shift",
                   "n14": "scale"}
SHIFTED_CATEGORICAL = ("c0", "c1")
SHIFTED = set(SHIFTED_NUMERIC) | set(SHIFTED_CATEGORICAL)
TRAIN_ROWS = 20_000


def _numeric(shape: str, rng: np.random.Generator, n: int) -> np.ndarray:
    if shape == "normal":
        return rng.normal(10.0, 2.0, n)
    if shape == "lognormal":
        return rng.lognormal(1.0, 0.6, n)
    if shape == "uniform":
        return rng.uniform(0.0, 100.0, n)
    if shape == "exponential":
        return rng.exponential(5.0, n)
    return rng.poisson(3.0, n).astype("float64")


def _std(shape: str) -> float:
    return {"normal": 2.0, "lognormal": float(np.sqrt((np.exp(0.36) - 1) * np.exp(2.36))),
            "uniform": 100 / np.sqrt(12), "exponential": 5.0, "counts": np.sqrt(3.0)}[shape]


def make_frame(n: int, seed: int, shifted: bool = False) -> pd.DataFrame:
    """Features and a binary target ``y`` whose probability is known (``p_true``)."""
    rng = np.random.default_rng(seed)
    data = {}
    for name, shape in zip(NUMERIC, SHAPES, strict=True):
        values = _numeric(shape, rng, n)
        how = SHIFTED_NUMERIC.get(name) if shifted else None
        if how == "shift":
            values = values + 0.5 * _std(shape)
        elif how == "scale":
            values = values.mean() + (values - values.mean()) * 1.5
        data[name] = values
    p0 = np.array([0.4, 0.25, 0.15, 0.12, 0.08])
    data["c0"] = rng.choice(list("abcde"), n, p=p0[::-1] if shifted else p0)
    levels = [f"k{i}" for i in range(12)]
    p1 = np.full(12, 1 / 12)
    if shifted:
        p1 = np.r_[p1[:2] + 0.1, p1[2:] - 0.02]
    data["c1"] = rng.choice(levels, n, p=p1 / p1.sum())
    data["c2"] = rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2])
    weights = 1 / np.arange(1, 61)
    data["c3"] = rng.choice([f"m{i:02d}" for i in range(60)], n, p=weights / weights.sum())
    data["flag"] = rng.random(n) < 0.3
    frame = pd.DataFrame(data)
    logit = (frame["n0"] - 10) / 2 - (frame["n2"] - 10) / 2 + (frame["c0"] == "a") - 0.5
    frame["p_true"] = 1 / (1 + np.exp(-logit))
    frame["y"] = (rng.random(n) < frame["p_true"]).astype(int)
    return frame


def schema() -> Schema:
    kinds = {**dict.fromkeys(NUMERIC, ColumnKind.NUMERIC),
             **dict.fromkeys(CATEGORICAL, ColumnKind.CATEGORICAL), "flag": ColumnKind.BOOLEAN}
    return Schema(tuple(ColumnInfo(c, kinds[c], "float64", 0, 0.0) for c in FEATURES),
                  ColumnInfo("y", ColumnKind.CATEGORICAL, "int64", 2, 0.0))


@dataclass
class Model:
    path: Path
    predictor: Predictor
    train: pd.DataFrame
    test: pd.DataFrame


def build_package(directory: Path, train: pd.DataFrame, test: pd.DataFrame,
                  times: pd.Series | None = None) -> Path:
    """A packaged model; ``times``: the training rows' event-time column, recorded in the
    profile's ``time`` section as training does for a spec's ``data.time_column``."""
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)])
    model = Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=300))])
    model.fit(train[FEATURES], train["y"])
    s = schema()
    classes = list(model.classes_)
    profile = build_profile(train[[*FEATURES, "y"]], s)
    profile.update(reference_extras(model, train[FEATURES], test[FEATURES], s, "binary",
                                    classes, y_test=test["y"], profile=profile,
                                    times=times))
    proba = model.predict_proba(test[FEATURES])[:, 1]
    from sklearn.metrics import accuracy_score, roc_auc_score

    metrics = {"roc_auc": float(roc_auc_score(test["y"], proba)),
               "accuracy": float(accuracy_score(test["y"], proba >= 0.5))}
    signature = Signature.from_frame(train[FEATURES], s, "binary", classes)
    # the reference attributions, measured on the test rows as training does
    explained = global_explanation(model, test[FEATURES], background=train[FEATURES],
                                   interactions=False)
    return save_package(directory, model, signature, profile=profile, metrics=metrics,
                        card="# test model", extra_files={
                            ATTRIBUTIONS_FILE: json.dumps(attribution_record(explained))})


@pytest.fixture(scope="session")
def model(tmp_path_factory: pytest.TempPathFactory) -> Model:
    """A logistic regression trained on 20,000 synthetic rows, packaged with its profile."""
    train, test = make_frame(TRAIN_ROWS, 0), make_frame(5_000, 1)
    path = build_package(tmp_path_factory.mktemp("pkg") / "model", train, test)
    return Model(path, Predictor(load_package(path)), train, test)


@pytest.fixture(scope="session")
def event_model(tmp_path_factory: pytest.TempPathFactory) -> Model:
    """The same kind of model, trained on rows with an event-time column ``ts`` (120 days,
    not a feature), as the training flow packages a spec with ``data.time_column: ts``."""
    train, test = make_frame(TRAIN_ROWS, 0), make_frame(5_000, 1)
    train["ts"] = pd.Timestamp("2025-01-01") + pd.to_timedelta(
        np.linspace(0, 120 * 86400, len(train)), unit="s")
    path = build_package(tmp_path_factory.mktemp("pkg") / "model", train, test,
                         times=train["ts"])
    return Model(path, Predictor(load_package(path)), train, test)


def log_frame(model: Model, n: int, seed: int, *, shifted: bool = False, days: int = 3,
              start: str = "2025-03-01") -> tuple[pd.DataFrame, pd.Series]:
    """Rows as the prediction log holds them (ids, times, inputs, predictions), and the
    true labels that arrive later."""
    frame = make_frame(n, seed, shifted)
    X = frame[FEATURES]
    proba = model.predictor.model.predict_proba(X)
    out = pd.DataFrame({  # the columns and types of serving.predlog
        "request_id": [f"req-{seed}-{i}" for i in range(n)],
        "row": np.zeros(n, dtype="int32"),
        "ts": pd.Timestamp(start, tz="UTC") + pd.to_timedelta(
            np.linspace(0, days * 86400 - 1, n), unit="s"),
        "model_version": np.ones(n, dtype="int64"), "runtime": "native", "shadow": False})
    out = pd.concat([out, X.reset_index(drop=True)], axis=1)
    out["prediction"] = np.where(proba[:, 1] >= 0.5, 1, 0)
    out["proba_0"], out["proba_1"] = proba[:, 0], proba[:, 1]
    return out, frame["y"].rename("y")


def write_log(home: Path, name: str, frame: pd.DataFrame) -> Path:
    """Write ``frame`` as ``<home>/predictions/<name>/date=YYYY-MM-DD/part-0.parquet``,
    the prediction log's layout (written here so the tests do not need a server)."""
    root = home / "predictions" / name
    for day, part in frame.groupby(frame["ts"].dt.strftime("%Y-%m-%d")):
        folder = root / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        part.to_parquet(folder / "part-0.parquet", index=False)
    return root


@pytest.fixture
def registered(model: Model) -> Iterator[Path]:
    """``fraud@champion`` in the store of the working folder; returns the Forgeline home."""
    client = fl.Client()
    with client.start_run("fraud", name="train") as run:
        run.log_artifact(model.path, "model")
    client.register_model("fraud", run.run_id, "model", aliases=["champion"])
    yield Path(client.settings.home)


def recent_log(model: Model, seed: int, shifted: bool = False) -> pd.DataFrame:
    """3,000 logged predictions over the last 20 hours (``--since 24h`` finds them all)."""
    start = pd.Timestamp.now(tz="UTC").tz_localize(None) - pd.Timedelta(hours=20)
    log, _ = log_frame(model, 3_000, seed, shifted=shifted, days=0.75, start=str(start))
    return log
