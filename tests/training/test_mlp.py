"""``models: [mlp]``: the PyTorch MLP trained from a spec on a small mixed table (a
category, missing values), packaged, loaded without torch objects, served by ONNX
Runtime through a real server, deterministic for a seed; and the message without torch."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

import forgeline as fl
from forgeline.data.inference import infer_schema
from forgeline.data.profile import build_profile
from forgeline.entities import Task
from forgeline.errors import InvalidSpec
from forgeline.packaging import Signature, load_model, save_package
from forgeline.packaging._trust import untrusted_types
from forgeline.serving.runtime import select_runtime
from forgeline.store import close_stores
from forgeline.training.plan import ModelPlan
from forgeline.workflows.train import TrainResult, train
from tests.cli.conftest import invoke
from tests.serving.conftest import TrainedStore, live_servers

torch = pytest.importorskip("torch")

FEATURES = ["amount", "country", "online"]
SMALL = {"width": 32, "depth": 2, "max_epochs": 15}


def table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # long-tailed and never negative: the network takes log1p of it (a Clip with no max in
    # the exported graph, which serving inlines)
    amount = rng.lognormal(3.5, 1.0, n)
    country = pd.Series(rng.choice(["FR", "DE", "US", "NG"], n)).where(rng.random(n) > 0.05)
    online = rng.random(n) > 0.5
    score = np.log(amount) + 1.5 * (country == "US") + online + rng.normal(0, 0.3, n)
    amount[::9] = np.nan  # missing after the label is drawn: the indicator carries nothing
    return pd.DataFrame({"amount": amount, "country": country, "online": online,
                         "y": (score > np.median(score)).astype(int)})


def spec(folder: Path, **extra: Any) -> dict[str, Any]:
    table(500, 0).to_csv(folder / "data.csv", index=False)
    return {"name": "net", "data": {"path": str(folder / "data.csv"), "target": "y"},
            "models": ["mlp"], "tuning": {"trials": 1, "cv_folds": 2},
            "register": {"alias": "champion"}, **extra}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainedStore, TrainResult]:
    """``net`` trained once with models: [mlp] into a store of its own."""
    base = tmp_path_factory.mktemp("mlp")
    root = base / "store"
    root.mkdir()
    result = train(spec(base), client=fl.Client(f"sqlite:///{root / 'forgeline.db'}"))
    close_stores()
    rows = table(12, 5)[FEATURES]
    rows = rows.astype(object).where(rows.notna(), None)
    return TrainedStore(root, base / "cache", rows.to_dict("records")), result


def test_a_spec_with_models_mlp_trains_and_registers_it(
        trained: tuple[TrainedStore, TrainResult]) -> None:
    store, result = trained
    assert result.model == "mlp" and result.model_version is not None
    assert result.score > 0.85  # ROC AUC on the test split: the table is easy
    model = load_model("net@champion", fl.Client(store.uri))
    net = model.model.steps[-1][1]
    assert type(net).__name__ == "MLPClassifier" and net.categorical_columns == [0, 1]
    assert net.device_ == ("cuda" if torch.cuda.is_available() else "cpu")
    assert 1 <= net.best_epoch_ <= net.n_epochs_ <= net.max_epochs
    proba = model.predict_proba(table(40, 3)[FEATURES])
    assert proba.shape == (40, 2) and np.allclose(proba.sum(axis=1), 1)


def test_the_package_holds_plain_data_and_round_trips(
        trained: tuple[TrainedStore, TrainResult], tmp_path: Path) -> None:
    store, _ = trained
    model = load_model("net@champion", fl.Client(store.uri))
    rows = table(60, 4)[FEATURES]
    before = model.predict_proba(rows)  # the session now exists: it must not be saved
    net = model.model.steps[-1][1]
    state = net.__getstate__()
    assert isinstance(state["onnx_model_"], bytes) and "_session" not in state
    assert {type(v).__name__ for v in state.values()} <= {
        "bytes", "str", "int", "float", "list", "tuple", "ndarray", "NoneType"}
    save_package(tmp_path / "again", model.model, model.signature, profile=model.profile,
                 metrics={}, card="")
    _, refused = untrusted_types(tmp_path / "again" / "model.skops")
    assert refused == []
    assert "onnxruntime==" in (tmp_path / "again" / "requirements.txt").read_text()
    again = load_model(tmp_path / "again")
    assert np.array_equal(again.predict_proba(rows), before)


def test_the_server_answers_what_load_model_predicts_with_onnx_runtime(
        trained: tuple[TrainedStore, TrainResult]) -> None:
    store, _ = trained
    expected = load_model("net@champion", fl.Client(store.uri)).predict_proba(
        pd.DataFrame(store.rows))
    with live_servers(store) as start:
        server = start("net@champion", runtime="auto")
        runtime = server.state.deployment.primary.runtime
        assert runtime.name == "onnxruntime", runtime.detail
        with httpx.Client(base_url=server.url) as http:
            answer = http.post("/predict", json={"records": store.rows})
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert got["runtime"] == "onnxruntime"
    assert np.allclose(np.array(got["probabilities"]), expected, atol=1e-4, rtol=0)


def test_same_seed_same_predictions_on_cpu() -> None:
    data = table(300, 1)
    schema = infer_schema(data, "y")
    for task, target in ((Task.BINARY, data.y), (Task.REGRESSION, data.amount.fillna(0) * 2)):
        frame = data.drop(columns=["amount"]) if task is Task.REGRESSION else data
        features = tuple(c for c in FEATURES if c in frame)
        plan = ModelPlan(task, schema, features, "accuracy" if task is Task.BINARY else "rmse",
                         7, False, device="cpu")
        first, second = (plan.pipeline("mlp", SMALL).fit(frame[list(features)], target)
                         for _ in range(2))
        predict = "predict_proba" if task is Task.BINARY else "predict"
        a, b = (getattr(p, predict)(frame[list(features)]) for p in (first, second))
        assert np.array_equal(a, b) and np.isfinite(a).all()
        assert first.steps[-1][1].onnx_model_ == second.steps[-1][1].onnx_model_


def test_a_regressor_is_served_by_onnx_runtime_too(tmp_path: Path) -> None:
    data = table(300, 2).drop(columns=["y"])
    data["y"] = data.amount.fillna(80) * 2 + 50 * (data.country == "US")
    schema = infer_schema(data, "y")
    plan = ModelPlan(Task.REGRESSION, schema, tuple(FEATURES), "rmse", 0, False)
    pipeline = plan.pipeline("mlp", SMALL).fit(data[FEATURES], data.y)
    signature = Signature.from_frame(data[FEATURES], schema, "regression", None)
    save_package(tmp_path / "reg", pipeline, signature, metrics={}, card="",
                 profile=build_profile(data, schema))
    model = load_model(tmp_path / "reg")
    runtime = select_runtime(model)
    assert runtime.name == "onnxruntime", runtime.detail
    frame = model.signature.validate(data[FEATURES].head(50))
    assert np.allclose(runtime.predict(frame).labels, model.predict(data[FEATURES].head(50)),
                       rtol=1e-4, atol=1e-3)


def test_without_torch_models_mlp_is_one_line_naming_the_extra(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else find_spec(name, *a))
    with pytest.raises(InvalidSpec) as raised:
        train(spec(tmp_path))
    assert "'mlp' needs the torch package" in raised.value.message
    assert "pip install 'forgeline[torch]'" in (raised.value.hint or "")
    assert fl.Client().list_registered_models() == []
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec(tmp_path)))
    result = invoke("train", str(tmp_path / "spec.yaml"))
    assert result.exit_code != 0 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'forgeline[torch]'" in lines[0], lines


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_device_cuda_without_a_gpu_is_refused_before_training(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match="torch sees no CUDA GPU") as raised:
        train(spec(tmp_path, device="cuda"))
    assert "device: auto" in (raised.value.hint or "")
    assert fl.Client().list_registered_models() == []


def test_the_exported_graph_computes_what_the_network_does() -> None:
    """Category codes (missing, unseen), a right-skewed column (log1p), missing numbers;
    each BatchNorm folded into its layer: ONNX Runtime's output is the network's."""
    from forgeline.training import _mlp_net as mlp_net
    from forgeline.training.mlp import _open_session

    rng = np.random.default_rng(0)
    n = 400
    X = np.column_stack([rng.integers(0, 6, n), rng.lognormal(3, 1.2, n),
                         rng.normal(size=n)]).astype(np.float32)
    X[::7, 0], X[::5, 1], X[::3, 2] = np.nan, np.nan, np.nan
    layout = mlp_net.Layout.of(X, 1, 3)
    assert layout.cardinalities == (6,) and layout.logs.tolist() == [True, False]
    assert layout.indicators == (0, 1)
    torch.manual_seed(0)
    net = mlp_net.Network(layout, 16, 2, 0.2, classify=True)
    net.train()
    net(torch.from_numpy(np.nan_to_num(X[:64])))  # BatchNorm statistics of their own
    net.eval()
    net.training_output = False
    probe = X[:50].copy()
    probe[:5, 0] = 9  # codes never seen: the unknown embedding
    session = _open_session(mlp_net.export_onnx(net, X.shape[1]))
    got = session.run(None, {"features": probe})[0]
    with torch.no_grad():
        want = net(torch.from_numpy(probe)).numpy()
    assert np.allclose(got, want, atol=1e-5) and np.allclose(got.sum(axis=1), 1, atol=1e-5)
