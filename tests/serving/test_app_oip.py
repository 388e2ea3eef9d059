"""The Open Inference Protocol v2 routes, as a KServe or Triton client calls them."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np

from forgeline.packaging import load_model
from forgeline.tracking.client import Client
from tests.serving.conftest import TrainedStore


def _tensors(rows: list[dict[str, Any]], shape_2d: bool = False) -> list[dict[str, Any]]:
    n = len(rows)
    shape = [n, 1] if shape_2d else [n]
    return [
        {"name": "amount", "shape": shape, "datatype": "FP64", "data": [r["amount"] for r in rows]},
        {"name": "items", "shape": shape, "datatype": "INT64", "data": [r["items"] for r in rows]},
        {"name": "country", "shape": shape, "datatype": "BYTES",
         "data": [[r["country"]] for r in rows] if shape_2d else [r["country"] for r in rows]},
    ]


def test_metadata_and_health(serve: Any) -> None:
    server = serve(canary="fraud@challenger", canary_percent=5)
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/v2/health/live").json() == {"live": True}
        assert http.get("/v2/health/ready").json() == {"ready": True}
        meta = http.get("/v2").json()
        assert meta["name"] == "forgeline" and meta["extensions"] == ["binary_tensor_data"]
        model = http.get("/v2/models/fraud").json()
        assert model["name"] == "fraud" and model["versions"] == ["1", "2"]
        assert model["platform"] == "sklearn"
        assert model["inputs"] == [{"name": "amount", "datatype": "FP64", "shape": [-1]},
                                   {"name": "items", "datatype": "INT64", "shape": [-1]},
                                   {"name": "country", "datatype": "BYTES", "shape": [-1]}]
        assert model["outputs"] == [{"name": "predict", "shape": [-1], "datatype": "INT64"},
                                    {"name": "predict_proba", "shape": [-1, 2],
                                     "datatype": "FP64"}]
        assert model["parameters"]["runtime"] == "native"
        assert model["parameters"]["classes"] == [0, 1]
        assert http.get("/v2/models/fraud/versions/2").json()["parameters"]["version"] == "2"
        assert http.get("/v2/models/fraud/ready").json() == {"name": "fraud", "ready": True}
        assert http.get("/v2/models/fraud/versions/1/ready").status_code == 200


def test_infer(serve: Any, trained: TrainedStore) -> None:
    server = serve()
    rows = trained.rows
    expected = load_model("fraud@champion", Client(trained.uri), trained.cache
                          ).predict_proba(rows).to_numpy()
    with httpx.Client(base_url=server.url) as http:
        for shape_2d in (False, True):
            answer = http.post("/v2/models/fraud/infer",
                               json={"id": "abc", "inputs": _tensors(rows, shape_2d)})
            assert answer.status_code == 200, answer.text
            got = answer.json()
            assert (got["model_name"], got["model_version"], got["id"]) == ("fraud", "1", "abc")
            assert got["parameters"]["runtime"] == "native"
            predict, proba = got["outputs"]
            assert (predict["name"], predict["shape"], predict["datatype"]) == (
                "predict", [len(rows)], "INT64")
            assert predict["data"] == expected.argmax(axis=1).tolist()
            assert (proba["name"], proba["shape"], proba["datatype"]) == (
                "predict_proba", [len(rows), 2], "FP64")
            assert np.array_equal(np.array(proba["data"]), expected.ravel())  # row-major
        only = http.post("/v2/models/fraud/versions/1/infer",
                         json={"inputs": _tensors(rows[:2]), "outputs": [{"name": "predict"}]})
        assert [o["name"] for o in only.json()["outputs"]] == ["predict"]
        assert only.json()["id"] == only.headers["x-request-id"]


def test_errors_use_the_oip_format(serve: Any, trained: TrainedStore) -> None:
    server = serve()
    good = _tensors(trained.rows[:2])
    cases = [
        ("GET", "/v2/models/ghost", None, 404, "No model 'ghost'"),
        ("GET", "/v2/models/ghost/ready", None, 404, "No model 'ghost'"),
        ("GET", "/v2/models/fraud/versions/9", None, 404, "version '9'"),
        ("POST", "/v2/models/ghost/infer", {"inputs": good}, 404, "No model 'ghost'"),
        ("POST", "/v2/models/fraud/infer", {"inputs": []}, 400, '"inputs"'),
        ("POST", "/v2/models/fraud/infer", {"inputs": good[:2]}, 400, "missing column 'country'"),
        ("POST", "/v2/models/fraud/infer",
         {"inputs": [{**good[0], "data": ["a", "b"]}, *good[1:]]}, 400,
         "inputs[0] ('amount'): datatype FP64 but data[0] is a string"),
        ("POST", "/v2/models/fraud/infer", {"inputs": [{**good[0], "shape": [3]}, *good[1:]]},
         400, "inputs[0] ('amount'): shape [3] needs 3 values, data has 2"),
        ("POST", "/v2/models/fraud/infer", {"inputs": [{**good[0], "datatype": "FLOAT"}]},
         400, "unknown datatype 'FLOAT'"),
        ("POST", "/v2/models/fraud/infer", {"inputs": [*good[:2], {**good[2], "shape": [1],
                                                                   "data": ["FR"]}]},
         400, "inputs[2] ('country'): 1 rows, but the tensors before have 2"),
        ("POST", "/v2/models/fraud/infer", {"inputs": good, "outputs": [{"name": "proba"}]},
         400, "Unknown output 'proba'"),
    ]
    with httpx.Client(base_url=server.url) as http:
        for method, path, body, status, fragment in cases:
            answer = http.request(method, path, json=body)
            assert answer.status_code == status, (path, answer.text)
            error = answer.json()
            assert list(error) == ["error"] and fragment in error["error"], (path, error)
        assert http.post("/v2/models/fraud/infer", content=b"[1,").status_code == 400
        assert http.post("/v2/models/fraud/infer", json={"inputs": good}).status_code == 200
