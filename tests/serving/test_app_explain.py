"""``POST /explain`` and ``"explain": true`` on ``/predict``, on a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from forgeline.packaging import load_model, save_package
from forgeline.packaging.explain import Explainer
from forgeline.tracking.client import Client
from tests.serving.conftest import FEATURES, TrainedStore

GOOD = {"amount": 2450.0, "items": 3, "country": "US"}


def _champion(trained: TrainedStore) -> Any:
    return load_model("fraud@champion", Client(trained.uri), trained.cache)


def test_explain_answers_contributions_that_add_up(serve: Any, trained: TrainedStore) -> None:
    server = serve()
    predictor = _champion(trained)
    rows = [GOOD, *trained.rows]
    # the logistic regression's log-odds, computed without the explainer
    log_odds = predictor.model.decision_function(predictor.prepare(rows))
    local = Explainer(predictor).explain(rows)
    columnar = {"columns": FEATURES, "data": [[r[c] for c in FEATURES] for r in rows]}
    with httpx.Client(base_url=server.url) as http:
        for body in ({"records": rows}, columnar):
            answer = http.post("/explain", json=body, headers={"X-Request-ID": "why-1"})
            assert answer.status_code == 200, answer.text
            got = answer.json()
            assert {k: got[k] for k in ("model", "version", "request_id", "units", "method",
                                        "preprocessing")
                    } == {"model": "fraud", "version": 1, "request_id": "why-1",
                          "units": "log-odds", "method": "linear",
                          "preprocessing": "onnxruntime"}
            assert len(got["explanations"]) == len(rows)
            for i, row in enumerate(got["explanations"]):
                assert list(row["contributions"]) == FEATURES
                total = row["base_value"] + sum(row["contributions"].values())
                assert total == pytest.approx(log_odds[i], abs=1e-6)
                assert row["output"] == pytest.approx(log_odds[i], abs=1e-6)
                assert row["class"] == 1 and len(row["reasons"]) == 3
                assert row["reasons"] == local.reasons(i)
                assert row["base_value"] == pytest.approx(local.base[i], abs=1e-12)
    first = got["explanations"][0]
    amount = first["contributions"]["amount"]
    assert any(r.startswith(f"amount 2,450 ({amount:+.2f})") for r in first["reasons"])


def test_predict_can_explain_and_keeps_its_answer(serve: Any, trained: TrainedStore) -> None:
    server = serve()
    with httpx.Client(base_url=server.url) as http:
        plain = http.post("/predict", json={"records": trained.rows}).json()
        assert "explanations" not in plain
        both = http.post("/predict", json={"records": trained.rows, "explain": True}).json()
        alone = http.post("/explain", json={"records": trained.rows}).json()
        off = http.post("/predict", json={"records": trained.rows, "explain": False}).json()
        bad = http.post("/predict", json={"records": trained.rows, "explain": "yes"})
    for key in ("predictions", "probabilities", "classes"):
        assert both[key] == plain[key] == off[key]
    assert "explanations" not in off
    assert both["explanations"] == alone["explanations"]
    assert both["units"] == "log-odds"
    assert bad.status_code == 400
    assert bad.json()["error"] == ('"explain" must be true or false, got a string. '
                                    'Send "explain": true to get explanations with predictions.')


def test_explain_refuses_bad_input_and_models_it_cannot_explain(
        serve: Any, trained: TrainedStore, tmp_path: Path) -> None:
    predictor = _champion(trained)
    features, model = predictor.model.steps
    odd = Pipeline([features, ("keep", "passthrough"), model])  # predicts, not explained
    path = save_package(tmp_path / "odd", odd, predictor.signature,
                        profile=predictor.profile, metrics=predictor.metrics, card="")
    server, odd_server = serve(), serve(str(path))
    with httpx.Client(base_url=server.url) as http:
        missing = http.post("/explain", json={"records": [{"amount": 1.0, "items": 2}]})
        assert missing.status_code == 400
        assert "missing column 'country'" in missing.json()["error"]
        empty = http.post("/explain", json={"rows": []})
        assert empty.status_code == 400 and 'no "records"' in empty.json()["error"]
    with httpx.Client(base_url=odd_server.url) as http:
        assert http.post("/predict", json={"records": [GOOD]}).status_code == 200
        for route, body in (("/explain", {"records": [GOOD]}),
                            ("/predict", {"records": [GOOD], "explain": True})):
            refused = http.post(route, json=body)
            assert refused.status_code == 422, refused.text
            error = refused.json()
            assert error["code"] == "NOT_EXPLAINABLE"
            assert error["error"].startswith("Cannot explain a Pipeline: only a pipeline of "
                                             "Forgeline's features and one model")


def test_the_explainer_is_built_only_when_asked(serve: Any, trained: TrainedStore) -> None:
    server = serve()
    model = server.state.deployment.primary
    with httpx.Client(base_url=server.url) as http:
        assert http.post("/predict", json={"records": trained.rows}).status_code == 200
        assert model._explainer is None
        assert http.post("/explain", json={"records": trained.rows}).status_code == 200
        built = model._explainer
        assert built is not None
        assert http.post("/explain", json={"records": trained.rows[:1]}).status_code == 200
        assert model._explainer is built
    assert np.isfinite(built._matrix).all()
