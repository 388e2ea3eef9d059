"""The binary tensor data extension over HTTP, byte by byte: layouts, mixes and every way
a body can lie about its sizes (each a 400 naming what is wrong; the server stays up)."""

from __future__ import annotations

import struct
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from forgeline.errors import InvalidInput
from forgeline.packaging import load_model
from forgeline.serving.config import Listener
from forgeline.serving.oip_tensors import decode, encode, split_body
from forgeline.tracking.client import Client
from tests.serving.conftest import TrainedStore

ROWS = [{"amount": 12.5, "items": 3, "country": "FR"},
        {"amount": 250.0, "items": 1, "country": "US"}]


def _bytes_tensor(texts: list[str]) -> bytes:
    return b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts)


def _raw(rows: list[dict[str, Any]]) -> dict[str, bytes]:
    return {"amount": np.array([r["amount"] for r in rows], "<f8").tobytes(),
            "items": np.array([r["items"] for r in rows], "<i8").tobytes(),
            "country": _bytes_tensor([r["country"] for r in rows])}


def _body(header: dict[str, Any], *parts: bytes, length: int | None = None
          ) -> tuple[bytes, dict[str, str]]:
    head = orjson.dumps(header)
    return head + b"".join(parts), {
        "Inference-Header-Content-Length": str(len(head) if length is None else length)}


def _binary_inputs(rows: list[dict[str, Any]], **sizes: int) -> tuple[list[dict[str, Any]],
                                                                     list[bytes]]:
    raw = _raw(rows)
    tensors = [{"name": name, "shape": [len(rows)], "datatype": datatype,
                "parameters": {"binary_data_size": sizes.get(name, len(raw[name]))}}
               for name, datatype in (("amount", "FP64"), ("items", "INT64"),
                                      ("country", "BYTES"))]
    return tensors, [raw["amount"], raw["items"], raw["country"]]


def _answer(response: httpx.Response) -> tuple[dict[str, Any], bytes]:
    length = int(response.headers["inference-header-content-length"])
    return orjson.loads(response.content[:length]), response.content[length:]


def test_binary_requests_and_outputs(serve: Any, trained: TrainedStore) -> None:
    server = serve()
    expected = load_model("fraud@champion", Client(trained.uri), trained.cache
                          ).predict_proba(ROWS).to_numpy()
    tensors, parts = _binary_inputs(ROWS)
    with httpx.Client(base_url=server.url) as http:
        # request-level binary_data_output: every output in binary, in order
        content, headers = _body({"inputs": tensors, "parameters": {"binary_data_output": True}},
                                 *parts)
        answer = http.post("/v2/models/fraud/infer", content=content, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/octet-stream"
        header, data = _answer(answer)
        predict, proba = header["outputs"]
        assert predict == {"name": "predict", "shape": [2], "datatype": "INT64",
                           "parameters": {"binary_data_size": 16}}
        assert proba["parameters"] == {"binary_data_size": 32} and "data" not in proba
        assert np.array_equal(np.frombuffer(data[:16], "<i8"), expected.argmax(axis=1))
        assert np.array_equal(np.frombuffer(data[16:], "<f8").reshape(2, 2), expected)
        # binary inputs, JSON outputs (nobody asked for binary ones): a plain JSON answer
        content, headers = _body({"inputs": tensors}, *parts)
        answer = http.post("/v2/models/fraud/infer", content=content, headers=headers)
        assert "inference-header-content-length" not in answer.headers
        assert np.array_equal(np.array(answer.json()["outputs"][1]["data"]), expected.ravel())
        # one JSON input among binary ones; one output binary, the other JSON
        mixed = [tensors[0], {"name": "items", "shape": [2], "datatype": "INT64",
                              "data": [r["items"] for r in ROWS]}, tensors[2]]
        content, headers = _body({"inputs": mixed, "outputs": [
            {"name": "predict_proba", "parameters": {"binary_data": True}},
            {"name": "predict"}]}, parts[0], parts[2])
        header, data = _answer(http.post("/v2/models/fraud/infer", content=content,
                                         headers=headers))
        assert [o["name"] for o in header["outputs"]] == ["predict", "predict_proba"]
        assert header["outputs"][0]["data"] == expected.argmax(axis=1).tolist()
        assert np.array_equal(np.frombuffer(data, "<f8").reshape(2, 2), expected)
        # an output's own binary_data: false wins over the request's binary_data_output
        content, headers = _body({"inputs": tensors, "parameters": {"binary_data_output": True},
                                  "outputs": [{"name": "predict",
                                               "parameters": {"binary_data": False}}]}, *parts)
        answer = http.post("/v2/models/fraud/infer", content=content, headers=headers)
        assert answer.json()["outputs"][0]["data"] == expected.argmax(axis=1).tolist()


def test_binary_mistakes_are_400s_naming_the_input(serve: Any) -> None:
    server = serve()
    tensors, parts = _binary_inputs(ROWS)
    amount, items, country = parts
    header = {"inputs": tensors}
    cut = _bytes_tensor(["FR"]) + struct.pack("<I", 50) + b"US"  # says 50 bytes, has 2
    half = _bytes_tensor(["FR"]) + b"\x02\x00"  # a length cut off
    cases: list[tuple[bytes, dict[str, str], str]] = [
        (*_body(header, *parts, length=10_000),
         "Inference-Header-Content-Length is 10000 bytes, beyond the body"),
        (*_body(header, *parts, length=5), "The JSON part of the body (its first 5 bytes"),
        (_body(header, *parts)[0], {"Inference-Header-Content-Length": "x1"},
         "Inference-Header-Content-Length must be a whole number"),
        (*_body(header, amount, items), "inputs[2] ('country'): binary_data_size is 12 bytes, "
                                        "but only 0 are left"),
        (*_body(header, *parts, b"extra"), "inputs[2] ('country'): the inputs' "
                                           "binary_data_size add up to 44 bytes, but 49 follow"),
        (*_body({"inputs": _binary_inputs(ROWS, amount=8)[0]}, amount[:8], items, country),
         "inputs[0] ('amount'): shape [2] of FP64 is 16 bytes, its binary data has 8"),
        (*_body({"inputs": _binary_inputs(ROWS, country=len(cut))[0]}, amount, items, cut),
         "inputs[2] ('country'): BYTES element 1 says 50 bytes, but only 2 are left"),
        (*_body({"inputs": _binary_inputs(ROWS, country=len(half))[0]}, amount, items, half),
         "inputs[2] ('country'): BYTES element 1 has 2 bytes left for its 4-byte length"),
        (*_body({"inputs": _binary_inputs(ROWS, country=6)[0]}, amount, items,
                _bytes_tensor(["FR"])),
         "inputs[2] ('country'): shape needs 2 BYTES elements, its binary data has 1"),
        (*_body({"inputs": _binary_inputs(ROWS, country=11)[0]}, amount, items,
                struct.pack("<I", 2) + b"\xff\xfe" + _bytes_tensor(["x"])),
         "inputs[2] ('country'): BYTES element 0 is not UTF-8 text"),
        (*_body({"inputs": [{**tensors[0], "parameters": {"binary_data_size": -1}},
                            *tensors[1:]]}, *parts),
         "inputs[0] ('amount'): binary_data_size must be a whole number of bytes, got -1"),
        (orjson.dumps(header), {}, "inputs[0] ('amount'): binary_data_size is given, but the "
                                   "request has no binary data"),
        (*_body({"inputs": tensors, "parameters": {"binary_data_output": "yes"}}, *parts),
         '"binary_data_output" must be true or false'),
        (*_body({"inputs": tensors, "outputs": [{"name": "predict", "parameters": {
            "binary_data": 1}}]}, *parts), "outputs[0] ('predict'): binary_data must be true"),
    ]
    with httpx.Client(base_url=server.url) as http:
        for content, headers, fragment in cases:
            answer = http.post("/v2/models/fraud/infer", content=content, headers=headers)
            assert answer.status_code == 400, (fragment, answer.text)
            error = answer.json()
            assert list(error) == ["error"] and fragment in error["error"], (fragment, error)
        content, headers = _body(header, *parts)
        assert http.post("/v2/models/fraud/infer", content=content,
                         headers=headers).status_code == 200
        big = serve(listener=Listener(max_body_bytes=64))
        answer = httpx.post(f"{big.url}/v2/models/fraud/infer", content=content,
                            headers=headers)
        assert answer.status_code == 413 and "max_body_bytes" in answer.json()["error"]


@pytest.mark.parametrize(("datatype", "values"), [
    ("FP64", np.array([1.5, -2.0, np.nan])), ("FP32", np.array([1.5, 2.25], np.float32)),
    ("FP16", np.array([0.5, 8.0], np.float16)), ("INT8", np.array([-3, 4], np.int8)),
    ("INT16", np.array([-300, 4], np.int16)), ("INT32", np.array([1 << 30, -1], np.int32)),
    ("INT64", np.array([1 << 40, -1])), ("UINT8", np.array([0, 255], np.uint8)),
    ("UINT16", np.array([65535], np.uint16)), ("UINT32", np.array([1 << 31], np.uint32)),
    ("UINT64", np.array([1 << 63], np.uint64)), ("BOOL", np.array([True, False, True])),
    ("BYTES", np.array(["FR", "", "Zürich"], dtype=object))])
def test_the_codec_round_trips_every_datatype(datatype: str, values: np.ndarray) -> None:
    raw = encode(datatype, values)
    got = decode("t", datatype, [len(values)], raw)
    if datatype == "BYTES":
        assert got == values.tolist()
        assert raw[:4] == struct.pack("<I", 2) and raw[4:6] == b"FR"
    else:
        assert np.array_equal(np.asarray(got), values, equal_nan=datatype.startswith("FP"))
        assert raw == values.astype(values.dtype.newbyteorder("<")).tobytes()


def test_split_body() -> None:
    header, rest = split_body(b'{"inputs": []}\x01\x02', "14")
    assert header == {"inputs": []} and bytes(rest) == b"\x01\x02"
    with pytest.raises(InvalidInput, match="beyond the body"):
        split_body(b"{}", "3")
