"""The gRPC service beyond what tritonclient sends: the wire format against Triton's own
proto, typed contents, malformed raw contents, limits, ``forgeline serve --grpc-port``, and
a server without gRPC never importing grpcio."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from forgeline.packaging import load_model
from forgeline.serving.config import Listener
from forgeline.tracking.client import Client
from tests.serving.conftest import FEATURES, TrainedStore, make_frame

grpc = pytest.importorskip("grpc")
grpcclient = pytest.importorskip("tritonclient.grpc")
from forgeline.serving.oip_grpc import grpc_predict_v2_pb2 as pb  # noqa: E402
from forgeline.serving.oip_grpc import grpc_predict_v2_pb2_grpc as pb_grpc  # noqa: E402

ROWS = [{"amount": 12.5, "items": 3, "country": "FR"},
        {"amount": 250.0, "items": 1, "country": "US"}]


def _fields(message: Any) -> dict[str, tuple[int, int, bool, str]]:
    return {f.name: (f.number, f.type, f.is_repeated,
                     f.message_type.name if f.message_type else "")
            for f in message.fields}


def test_the_messages_are_tritons_on_the_wire() -> None:
    """Every field of ours is Triton's (number, type, repeated), in every message the six
    calls use, and the service has the same path and types: their clients talk to us."""
    from tritonclient.grpc import service_pb2 as triton

    ours_service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    theirs_service = triton.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert ours_service.full_name == theirs_service.full_name == "inference.GRPCInferenceService"
    pending = []
    for method in ours_service.methods:
        theirs = theirs_service.methods_by_name[method.name]
        assert (method.input_type.full_name, method.output_type.full_name) == (
            theirs.input_type.full_name, theirs.output_type.full_name)
        pending += [(method.input_type, theirs.input_type),
                    (method.output_type, theirs.output_type)]
    seen = set()
    while pending:
        ours, theirs = pending.pop()
        if ours.full_name in seen:
            continue
        seen.add(ours.full_name)
        mine, their = _fields(ours), _fields(theirs)
        assert {name: their.get(name) for name in mine} == mine, ours.full_name
        pending += [(f.message_type, theirs.fields_by_name[f.name].message_type)
                    for f in ours.fields if f.message_type]
    assert {"inference.ModelInferRequest.InferInputTensor",
            "inference.InferTensorContents"} <= seen


@pytest.fixture
def stub(serve: Any) -> Any:
    server = serve(listener=Listener(grpc_port=0, max_body_bytes=4096))
    with grpc.insecure_channel(f"127.0.0.1:{server.state.grpc_port}") as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def _request(raw: bool = True, **change: bytes) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="fraud", id="k1")
    values = {"amount": np.array([r["amount"] for r in ROWS], "<f8").tobytes(),
              "items": np.array([r["items"] for r in ROWS], "<i8").tobytes(),
              "country": b"".join(struct.pack("<I", 2) + r["country"].encode() for r in ROWS)}
    for name, datatype in (("amount", "FP64"), ("items", "INT64"), ("country", "BYTES")):
        tensor = request.inputs.add(name=name, datatype=datatype, shape=[len(ROWS)])
        if raw:
            request.raw_input_contents.append(change.get(name, values[name]))
        elif datatype == "FP64":
            tensor.contents.fp64_contents.extend(r[name] for r in ROWS)
        elif datatype == "INT64":
            tensor.contents.int64_contents.extend(r[name] for r in ROWS)
        else:
            tensor.contents.bytes_contents.extend(r[name].encode() for r in ROWS)
    return request


def test_typed_contents_and_raw_contents(stub: Any, trained: TrainedStore) -> None:
    expected = load_model("fraud@champion", Client(trained.uri), trained.cache
                          ).predict_proba(ROWS).to_numpy()
    for raw in (True, False):  # KServe's clients send typed contents
        answer = stub.ModelInfer(_request(raw))
        assert (answer.id, answer.model_name, answer.model_version) == ("k1", "fraud", "1")
        assert [(o.name, o.datatype, list(o.shape)) for o in answer.outputs] == [
            ("predict", "INT64", [2]), ("predict_proba", "FP64", [2, 2])]
        assert np.array_equal(np.frombuffer(answer.raw_output_contents[1], "<f8").reshape(2, 2),
                              expected)
        assert np.array_equal(np.frombuffer(answer.raw_output_contents[0], "<i8"),
                              expected.argmax(axis=1))


def test_malformed_requests_are_invalid_argument(stub: Any) -> None:
    overrun = struct.pack("<I", 2) + b"FR" + struct.pack("<I", 9) + b"US"
    fp16 = _request(raw=False)
    fp16.inputs[0].datatype = "FP16"
    both = _request()
    both.inputs[0].contents.fp64_contents.append(1.0)
    fewer = _request()
    del fewer.raw_input_contents[2]
    typed = _request(raw=False)
    typed.inputs[1].contents.int64_contents.append(5)
    empty = pb.ModelInferRequest(model_name="fraud")
    cases = [
        (_request(country=overrun), "inputs[2] ('country'): BYTES element 1 says 9 bytes, "
                                    "but only 2 are left"),
        (_request(amount=b"\x00" * 12), "inputs[0] ('amount'): shape [2] of FP64 is 16 "
                                        "bytes, its binary data has 12"),
        (fewer, "raw_input_contents has 2 entries for 3 inputs"),
        (both, "inputs[0] ('amount'): contents are given as well as raw_input_contents"),
        (fp16, "inputs[0] ('amount'): FP16 values have no contents field"),
        (typed, "inputs[1] ('items'): shape [2] needs 2 values, contents.int64_contents "
                "has 3"),
        (empty, "inputs must be a non-empty list"),
    ]
    for request, fragment in cases:
        with pytest.raises(grpc.RpcError) as error:
            stub.ModelInfer(request)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, fragment
        assert fragment in error.value.details(), error.value.details()
    big = _request(amount=b"\x00" * 8000)  # over max_body_bytes (4096)
    with pytest.raises(grpc.RpcError) as error:
        stub.ModelInfer(big)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert stub.ModelInfer(_request()).id == "k1"  # and the server is still up


FORGELINE = Path(sys.executable).with_name("forgeline")


def test_forgeline_serve_grpc_port(trained: TrainedStore, tmp_path: Path) -> None:
    """The real command, two workers: the summary names the gRPC address; both answer."""
    from tests.serving.test_serve_cli import _server

    with _server(trained, tmp_path, "--grpc-port", "0", "--workers", "2") as (process, _, _):
        line = next(line for line in process.stdout or () if "grpc" in line)
        port = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert port, line
        frame = make_frame(5, 3)[FEATURES]
        expected = load_model("fraud@champion", Client(trained.uri), trained.cache
                              ).predict_proba(frame).to_numpy()
        for _ in range(4):  # new connections: either worker may answer
            client = grpcclient.InferenceServerClient(f"127.0.0.1:{port.group(1)}")
            try:
                inputs = []
                for name, datatype, values in (
                        ("amount", "FP64", frame["amount"].to_numpy(np.float64)),
                        ("items", "INT64", frame["items"].to_numpy(np.int64)),
                        ("country", "BYTES", frame["country"].to_numpy(object))):
                    inputs.append(grpcclient.InferInput(name, [len(frame)], datatype))
                    inputs[-1].set_data_from_numpy(values)
                result = client.infer("fraud", inputs)
                assert np.array_equal(result.as_numpy("predict_proba"), expected)
            finally:
                client.close()


def test_grpc_port_mistakes_are_one_line(trained: TrainedStore, monkeypatch: Any) -> None:
    from typer.testing import CliRunner

    from forgeline.cli import app

    def run(*args: str) -> Any:
        return CliRunner().invoke(app, ["--store", trained.uri, "serve", "fraud@champion",
                                        *args])

    done = run("--port", "8123", "--grpc-port", "8123")
    assert done.exit_code == 2 and done.stderr.count("\n") == 1, done.output
    assert "--grpc-port and --port are both 8123" in done.stderr
    # grpcio missing: one line that says what to install
    monkeypatch.setitem(sys.modules, "grpc", None)
    for name in [m for m in sys.modules if m.startswith("forgeline.serving.oip_grpc.")]:
        monkeypatch.delitem(sys.modules, name)
    done = run("--port", "0", "--grpc-port", "0")
    assert done.exit_code == 2 and done.stderr.count("\n") == 1, done.output
    assert done.stderr.startswith("error: --grpc-port needs grpcio and protobuf, which are not "
                                  "installed. Install them: pip install 'forgeline[grpc]'.")
    assert done.stdout == ""


def test_serving_without_grpc_never_imports_it(trained: TrainedStore, tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from forgeline.cli import app\n"
        "from forgeline.workflows.serve import create_app, prepare\n"
        "from forgeline.serving.config import ServeConfig\n"
        f"app = create_app(ServeConfig('fraud@champion', store_uri={trained.uri!r}, "
        f"cache_dir={str(tmp_path)!r}, runtime='native', log_predictions=False))\n"
        "assert app.state.forgeline.grpc is None\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'tritonclient')"
        " or 'oip_grpc' in m))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
