"""OIP v2 with Triton's own, unmodified clients: ``tritonclient.http`` with its defaults
(binary tensors both ways) and ``tritonclient.grpc``, against a live server on loopback."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from forgeline.packaging import load_model
from forgeline.serving.config import Batching, Listener
from forgeline.tracking.client import Client
from tests.serving.conftest import FEATURES, MemoryLog, TrainedStore, make_frame, metric

grpcclient = pytest.importorskip("tritonclient.grpc")
httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402 - after the skip


def _expected(trained: TrainedStore, frame: pd.DataFrame, ref: str = "fraud@champion"
              ) -> tuple[np.ndarray, np.ndarray]:
    model = load_model(ref, Client(trained.uri), trained.cache)
    return model.predict_proba(frame).to_numpy(), model.predict(frame)


def _inputs(module: Any, frame: pd.DataFrame, *, binary: bool = True,
            shape_2d: bool = False) -> list[Any]:
    """FP64, INT64 and BYTES tensors of ``frame``'s columns, as the client builds them."""
    arrays = [("amount", "FP64", frame["amount"].to_numpy(np.float64)),
              ("items", "INT64", frame["items"].to_numpy(np.int64)),
              ("country", "BYTES", frame["country"].to_numpy(object))]
    tensors = []
    for name, datatype, values in arrays:
        values = values.reshape(-1, 1) if shape_2d else values
        tensor = module.InferInput(name, list(values.shape), datatype)
        if module is httpclient:
            tensor.set_data_from_numpy(values, binary_data=binary)
        else:
            tensor.set_data_from_numpy(values)
        tensors.append(tensor)
    return tensors


def _frame(rows: int, seed: int = 7) -> pd.DataFrame:
    return make_frame(rows, seed)[FEATURES]


def test_the_http_client_with_its_defaults(serve: Any, trained: TrainedStore) -> None:
    server = serve(shadow="fraud@challenger")  # version 2 is served too, answers nothing
    client = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("fraud") and client.is_model_ready("fraud", "2")
        assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
        meta = client.get_model_metadata("fraud")
        assert [(t["name"], t["datatype"]) for t in meta["inputs"]] == [
            ("amount", "FP64"), ("items", "INT64"), ("country", "BYTES")]
        # a few rows (records inside) and many (a frame inside), [n] and [n, 1]
        for rows, shape_2d in ((8, False), (3, True), (300, False)):
            frame = _frame(rows)
            proba, labels = _expected(trained, frame)
            result = client.infer("fraud", _inputs(httpclient, frame, shape_2d=shape_2d),
                                  request_id=f"r{rows}")
            outputs = {o["name"]: o for o in result.get_response()["outputs"]}
            assert all("binary_data_size" in o["parameters"] for o in outputs.values())
            assert np.array_equal(result.as_numpy("predict_proba"), proba)
            assert np.array_equal(result.as_numpy("predict"), labels)
            assert result.get_response()["id"] == f"r{rows}"
        # one output asked for, in binary (the client's default), from version 2
        frame = _frame(5)
        result = client.infer("fraud", _inputs(httpclient, frame), model_version="2",
                              outputs=[httpclient.InferRequestedOutput("predict_proba")])
        assert [o["name"] for o in result.get_response()["outputs"]] == ["predict_proba"]
        assert result.get_response()["model_version"] == "2"
        assert np.array_equal(result.as_numpy("predict_proba"),
                              _expected(trained, frame, "fraud/2")[0])
    finally:
        client.close()


def test_the_http_client_mixes_json_and_binary(serve: Any, trained: TrainedStore) -> None:
    server = serve()
    frame = _frame(6)
    proba, labels = _expected(trained, frame)
    client = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    try:
        inputs = _inputs(httpclient, frame)
        inputs[1].set_data_from_numpy(frame["items"].to_numpy(np.int64), binary_data=False)
        outputs = [httpclient.InferRequestedOutput("predict", binary_data=False),
                   httpclient.InferRequestedOutput("predict_proba", binary_data=True)]
        result = client.infer("fraud", inputs, outputs=outputs)
        predict, probabilities = result.get_response()["outputs"]
        assert predict["data"] == labels.tolist() and "parameters" not in predict
        assert probabilities["parameters"]["binary_data_size"] == proba.size * 8
        assert np.array_equal(result.as_numpy("predict_proba"), proba)
        # all JSON, as before
        result = client.infer("fraud", _inputs(httpclient, frame, binary=False),
                              outputs=[httpclient.InferRequestedOutput("predict_proba",
                                                                       binary_data=False)])
        assert np.array_equal(result.as_numpy("predict_proba"), proba)
    finally:
        client.close()


def test_http_client_errors_and_the_token(serve: Any, trained: TrainedStore) -> None:
    server = serve(listener=Listener(token="s3cret"))
    frame = _frame(2)
    client = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    auth = {"Authorization": "Bearer s3cret"}
    try:
        with pytest.raises(InferenceServerException) as refused:
            client.infer("fraud", _inputs(httpclient, frame))
        assert refused.value.status() == "401" and "bearer token" in refused.value.message()
        with pytest.raises(InferenceServerException) as missing:
            client.infer("fraud", _inputs(httpclient, frame)[:2], headers=auth)
        assert missing.value.status() == "400"
        assert "missing column 'country'" in missing.value.message()
        with pytest.raises(InferenceServerException) as ghost:
            client.infer("ghost", _inputs(httpclient, frame), headers=auth)
        assert ghost.value.status() == "404" and "No model 'ghost'" in ghost.value.message()
        result = client.infer("fraud", _inputs(httpclient, frame), headers=auth)
        assert np.array_equal(result.as_numpy("predict_proba"), _expected(trained, frame)[0])
    finally:
        client.close()


def test_the_grpc_client(serve: Any, trained: TrainedStore) -> None:
    server = serve(listener=Listener(grpc_port=0))
    assert server.state.grpc_port
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.state.grpc_port}")
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("fraud") and client.is_model_ready("fraud", "1")
        server_meta = client.get_server_metadata()
        assert server_meta.name == "forgeline"
        assert list(server_meta.extensions) == ["binary_tensor_data"]
        meta = client.get_model_metadata("fraud", as_json=True)
        assert meta["name"] == "fraud" and meta["versions"] == ["1"]
        assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [
            ("amount", "FP64", ["-1"]), ("items", "INT64", ["-1"]),
            ("country", "BYTES", ["-1"])]  # int64 fields are strings in JSON
        assert [t["name"] for t in meta["outputs"]] == ["predict", "predict_proba"]
        for rows, shape_2d in ((8, False), (4, True), (200, False)):
            frame = _frame(rows, seed=rows)
            proba, labels = _expected(trained, frame)
            result = client.infer("fraud", _inputs(grpcclient, frame, shape_2d=shape_2d),
                                  request_id=f"g{rows}")
            assert np.array_equal(result.as_numpy("predict_proba"), proba)
            assert np.array_equal(result.as_numpy("predict"), labels)
            response = result.get_response()
            assert (response.id, response.model_name, response.model_version) == (
                f"g{rows}", "fraud", "1")
            assert response.parameters["runtime"].string_param == "native"
        only = client.infer("fraud", _inputs(grpcclient, _frame(2)),
                            outputs=[grpcclient.InferRequestedOutput("predict")])
        assert [o.name for o in only.get_response().outputs] == ["predict"]
    finally:
        client.close()


def test_grpc_errors_are_status_codes(serve: Any, trained: TrainedStore) -> None:
    server = serve(listener=Listener(grpc_port=0, token="s3cret"))
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.state.grpc_port}")
    auth = {"authorization": "Bearer s3cret"}
    frame = _frame(3)
    try:
        cases = [
            ({}, "fraud", None, "StatusCode.UNAUTHENTICATED", "Missing or invalid bearer token"),
            ({"authorization": "Bearer nope"}, "fraud", None, "StatusCode.UNAUTHENTICATED",
             "bearer token"),
            (auth, "ghost", None, "StatusCode.NOT_FOUND", "No model 'ghost'"),
            (auth, "fraud", 2, "StatusCode.INVALID_ARGUMENT", "missing column 'country'"),
        ]
        for headers, model, keep, status, fragment in cases:
            inputs = _inputs(grpcclient, frame)[:keep]
            with pytest.raises(InferenceServerException) as error:
                client.infer(model, inputs, headers=headers)
            assert error.value.status() == status, (headers, model, error.value)
            assert fragment in error.value.message(), error.value.message()
        with pytest.raises(InferenceServerException) as wrong_output:
            client.infer("fraud", _inputs(grpcclient, frame), headers=auth,
                         outputs=[grpcclient.InferRequestedOutput("proba")])
        assert "Unknown output 'proba'" in wrong_output.value.message()
        with pytest.raises(InferenceServerException) as ghost:
            client.get_model_metadata("ghost")
        assert ghost.value.status() == "StatusCode.NOT_FOUND"
        # health and metadata need no token; the server is still up and answers
        assert client.is_server_ready() and client.get_model_metadata("fraud").name == "fraud"
        result = client.infer("fraud", _inputs(grpcclient, frame), headers=auth)
        assert np.array_equal(result.as_numpy("predict_proba"), _expected(trained, frame)[0])
    finally:
        client.close()


def test_concurrent_grpc_requests_share_model_calls(serve: Any, trained: TrainedStore) -> None:
    import tritonclient.grpc.aio as aioclient

    log = MemoryLog()
    # generous: the client shares our CPU
    server = serve(listener=Listener(grpc_port=0), batching=Batching(max_wait_ms=100), log=log)
    frame = _frame(8)
    proba, _ = _expected(trained, frame)

    async def burst() -> list[Any]:
        client = aioclient.InferenceServerClient(f"127.0.0.1:{server.state.grpc_port}")
        try:
            return await asyncio.gather(*(
                client.infer("fraud", _inputs(aioclient, frame.iloc[[i % 8]]),
                             request_id=f"c{i}") for i in range(32)))
        finally:
            await client.close()

    results = asyncio.run(burst())
    for i, result in enumerate(results):  # each request got its own row's answer
        assert np.array_equal(result.as_numpy("predict_proba")[0], proba[i % 8])
    text = httpx.get(f"{server.url}/metrics").text
    calls = metric(text, "forgeline_batch_size_rows_count", name="fraud", version="1")
    assert metric(text, "forgeline_batch_size_rows_sum", name="fraud", version="1") == 32
    assert calls < 32, f"no batching: {calls} model calls for 32 requests"
    assert metric(text, "forgeline_batch_size_rows_bucket", name="fraud", version="1",
                  le="1.0") < calls  # at least one call had more than one row
    assert metric(text, "forgeline_requests_total", method="GRPC", status="200",
                  route="/inference.GRPCInferenceService/ModelInfer") == 32
    assert sorted(r["request_id"] for r in log.records) == sorted(f"c{i}" for i in range(32))
