"""The Open Inference Protocol (KServe v2 / Triton) routes, so those clients work unchanged.

One input tensor per signature column (shape ``[n]`` or ``[n, 1]``), outputs ``predict``
(shape ``[n]``) and, for classifiers, ``predict_proba`` (shape ``[n, k]``, data flattened
row-major). Errors answer ``{"error": "..."}`` as the protocol says.

Tensors come as JSON ``data``, or in the binary tensor data extension that
``tritonclient.http`` uses by default (:mod:`forgeline.serving.oip_tensors`), the two
mixed in one request if the client likes; outputs are answered in binary when the request
asks (``binary_data`` on an output, ``binary_data_output`` on the request). A request
without the ``Inference-Header-Content-Length`` header takes the JSON path, unchanged.
The gRPC service (:mod:`forgeline.serving.oip_grpc`) shares the checks and the outputs.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from starlette.responses import Response

from forgeline.errors import InvalidInput
from forgeline.serving.config import ServeConfig
from forgeline.serving.http import (
    BodyTooLarge,
    check_auth,
    error_response,
    json_response,
    read_json,
)
from forgeline.serving.http import request_id as header_request_id
from forgeline.serving.models import ServedModel
from forgeline.serving.oip_protocol import (
    ALL_OUTPUTS,
    NUMERIC,
    OUTPUTS,
    Columns,
    Requested,
    Rows,
    check_outputs,
    column_datatype,
    find_model,
    model_metadata,
    output_tensors,
    server_metadata,
    tensor_name,
)
from forgeline.serving.oip_tensors import (
    HEADER_LENGTH,
    binary_response,
    decode,
    encode,
    split_body,
)
from forgeline.serving.payload import kind_of
from forgeline.serving.runtime_base import Prediction
from forgeline.serving.scoring import Scorer, json_array

__all__ = ["column_datatype", "model_metadata", "oip_router", "parse_inputs"]


def _flatten(data: list[Any]) -> list[Any]:
    if not any(isinstance(v, list) for v in data):
        return data
    flat: list[Any] = []
    for value in data:
        flat.extend(_flatten(value) if isinstance(value, list) else [value])
    return flat


def _check_values(i: int, name: str, datatype: str, data: list[Any]) -> None:
    """Input ``i``'s data must be what the datatype says (null allowed: a missing value)."""
    if datatype == "BYTES":
        return
    kind = np.asarray(data).dtype.kind if data else "f"
    if (datatype == "BOOL" and kind == "b") or (datatype in NUMERIC and kind in "iuf"):
        return
    for j, value in enumerate(data):
        ok = value is None or (isinstance(value, bool) if datatype == "BOOL" else
                               isinstance(value, int | float) and not isinstance(value, bool))
        if not ok:
            raise InvalidInput(f"{tensor_name(i, name)}: datatype {datatype} but data[{j}] is "
                               f"{kind_of(value)} ({value!r}).",
                               hint="Send the values as the datatype says, or change it.")


def parse_inputs(body: Any, binary: memoryview | None = None) -> tuple[Rows, Requested]:
    """The rows of an OIP inference request, and the outputs it asks for.

    Args:
        body: the JSON request (the JSON part of a binary one).
        binary: the bytes after the JSON part of a binary request; None for plain JSON.

    Raises:
        InvalidInput: naming the tensor (``inputs[1] ('amount')``) or field that is wrong.
    """
    if not isinstance(body, Mapping):
        raise InvalidInput(f"The inference request must be a JSON object, got {kind_of(body)}.")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput('"inputs" must be a non-empty array of tensors '
                           '{"name", "shape", "datatype", "data"}.')
    columns = Columns()
    offset, last = 0, ""
    for i, tensor in enumerate(inputs):
        if not isinstance(tensor, Mapping) or not isinstance(tensor.get("name"), str):
            raise InvalidInput(f"inputs[{i}] must be an object with a string \"name\".")
        name, datatype, shape = tensor["name"], tensor.get("datatype"), tensor.get("shape")
        columns.check(i, name, datatype, shape)
        parameters = tensor.get("parameters")  # a dict: orjson's
        size = parameters.get("binary_data_size") if type(parameters) is dict else None
        if size is None:  # the JSON path: kept as lean as before the binary one existed
            data = tensor.get("data")
            if not isinstance(data, list):
                raise InvalidInput(f"{tensor_name(i, name)}: data must be an array, got "
                                   f"{kind_of(data)}.")
            data = _flatten(data)
            if len(data) != math.prod(shape):
                raise InvalidInput(f"{tensor_name(i, name)}: shape {shape} needs "
                                   f"{math.prod(shape)} values, data has {len(data)}.")
            columns.add(i, name, shape[0], data)
            _check_values(i, name, datatype, data)
        else:
            last = tensor_name(i, name)
            columns.add_array(i, name, shape[0],
                              _binary_data(last, datatype, shape, size, binary, offset))
            offset += size
    if binary is not None and offset != len(binary):
        raise InvalidInput(f"{last or 'inputs'}: the inputs' binary_data_size add up to {offset} "
                           f"bytes, but {len(binary)} follow the JSON part of the body.",
                           hint="Give each binary input its binary_data_size, and send their "
                                "bytes in the order of the inputs.")
    return columns.to_rows(), _requested(body.get("outputs"), body.get("parameters"))


def _binary_data(where: str, datatype: str, shape: list[int], size: Any,
                 binary: memoryview | None, offset: int) -> np.ndarray | list[str]:
    if binary is None:
        raise InvalidInput(f"{where}: binary_data_size is given, but the request has no "
                           f"binary data (no {HEADER_LENGTH} header).",
                           hint="Send the header with the size of the JSON part, or the "
                                "values as \"data\".")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidInput(f"{where}: binary_data_size must be a whole number of bytes, got "
                           f"{size!r}.")
    if size > len(binary) - offset:
        raise InvalidInput(f"{where}: binary_data_size is {size} bytes, but only "
                           f"{len(binary) - offset} are left after the inputs before it.",
                           hint="Check each input's binary_data_size against its bytes.")
    return decode(where, datatype, shape, binary[offset:offset + size])


def _requested(outputs: Any, parameters: Any) -> Requested:
    if outputs is None and parameters is None:
        return ALL_OUTPUTS
    default = False
    if parameters is not None:
        if not isinstance(parameters, Mapping):
            raise InvalidInput('"parameters" must be an object.')
        default = parameters.get("binary_data_output", False)
        if not isinstance(default, bool):
            raise InvalidInput(f'"binary_data_output" must be true or false, got {default!r}.')
    if outputs is None:
        return Requested(binary_default=default)
    if not isinstance(outputs, list) or not all(
            isinstance(o, Mapping) and isinstance(o.get("name"), str) for o in outputs):
        raise InvalidInput('"outputs" must be an array of objects with a "name".')
    names = tuple(o["name"] for o in outputs)
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown:
        raise InvalidInput(f"Unknown output {unknown[0]!r}.",
                           hint=f"Outputs: {', '.join(OUTPUTS)}.")
    binary: dict[str, bool] = {}
    for i, output in enumerate(outputs):
        own = output.get("parameters")
        if isinstance(own, Mapping) and "binary_data" in own:
            if not isinstance(own["binary_data"], bool):
                raise InvalidInput(f"outputs[{i}] ({output['name']!r}): binary_data must be "
                                   f"true or false, got {own['binary_data']!r}.")
            binary[output["name"]] = own["binary_data"]
    return Requested(names, binary, default)


def oip_router(scorer: Scorer, config: ServeConfig, is_ready: Callable[[], bool]) -> APIRouter:
    """The ``/v2`` routes over ``scorer``'s deployment."""
    router = APIRouter(prefix="/v2", tags=["Open Inference Protocol v2"])
    deployment = scorer.deployment
    limit = config.listener.max_body_bytes

    def find(name: str, version: str | None) -> ServedModel:
        return find_model(deployment, name, version)

    @router.get("", summary="Server metadata")
    async def server_info() -> Response:
        return json_response(server_metadata())

    @router.get("/health/live", summary="Liveness")
    async def live() -> Response:
        return json_response({"live": True})

    @router.get("/health/ready", summary="Readiness")
    async def ready() -> Response:
        ok = is_ready()
        return json_response({"ready": ok}, 200 if ok else 503)

    async def metadata(request: Request, name: str, version: str | None) -> Response:
        try:
            return json_response(model_metadata(find(name, version), deployment.versions(name)))
        except Exception as e:
            return error_response(e, request_id=header_request_id(request), oip=True)

    async def model_ready(request: Request, name: str, version: str | None) -> Response:
        try:
            model = find(name, version)
        except Exception as e:
            return error_response(e, request_id=header_request_id(request), oip=True)
        ok = is_ready()
        return json_response({"name": model.name, "ready": ok}, 200 if ok else 503)

    async def infer(request: Request, name: str, version: str | None) -> Response:
        rid = header_request_id(request)
        try:
            check_auth(request, config.listener.token)
            find(name, version)  # 404 before reading the body
            declared = request.headers.get(HEADER_LENGTH)
            if declared is None:
                body, binary = await read_json(request, limit), None
            else:  # the binary tensor data extension
                body, binary = split_body(await _read_body(request, limit), declared)
            rows, wanted = parse_inputs(body, binary)
            model = find(name, version)  # again: a swap may have happened while reading
            check_outputs(model, wanted)
            if isinstance(body.get("id"), str) and body["id"]:
                rid = body["id"]
            routed = version is None and model is deployment.primary
            scored = await scorer.score(rows, rid, None if routed else model,
                                        "primary" if model is deployment.primary else "direct")
            return _infer_response(scored.model, scored.prediction, rid, wanted,
                                   body.get("id"))
        except Exception as e:
            return error_response(e, request_id=rid, oip=True)

    for path, summary, handler, method in (
            ("", "Model metadata", metadata, "GET"),
            ("/ready", "Model readiness", model_ready, "GET"),
            ("/infer", "Inference (one tensor per input column; JSON or binary tensors)",
             infer, "POST")):
        router.add_api_route("/models/{name}" + path, _latest(handler), methods=[method],
                             summary=summary)
        router.add_api_route("/models/{name}/versions/{version}" + path, _versioned(handler),
                             methods=[method], summary=f"{summary}, one version")
    return router


Handler = Callable[[Request, str, "str | None"], Awaitable[Response]]


def _latest(handler: Handler) -> Callable[..., Awaitable[Response]]:
    async def endpoint(request: Request, name: str) -> Response:
        return await handler(request, name, None)

    endpoint.__name__ = handler.__name__
    return endpoint


def _versioned(handler: Handler) -> Callable[..., Awaitable[Response]]:
    async def endpoint(request: Request, name: str, version: str) -> Response:
        return await handler(request, name, version)

    endpoint.__name__ = f"{handler.__name__}_version"
    return endpoint


async def _read_body(request: Request, limit: int) -> bytes:
    """The raw body of a binary request, refusing bodies over ``limit`` bytes (413)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(_too_large(f"{declared} bytes", limit))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(_too_large("more than that", limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(given: str, limit: int) -> str:
    return (f"The request body is too large: {given}, the limit is {limit} bytes "
            "(max_body_bytes). Send fewer rows per request.")


def _infer_response(model: ServedModel, prediction: Prediction, rid: str,
                    wanted: Requested, given_id: Any) -> Response:
    outputs: list[dict[str, Any]] = []
    buffers: list[bytes] = []
    for name, datatype, shape, values in output_tensors(prediction, wanted):
        if wanted.is_binary(name):
            buffers.append(encode(datatype, values))
            outputs.append({"name": name, "shape": shape, "datatype": datatype,
                            "parameters": {"binary_data_size": len(buffers[-1])}})
        else:
            outputs.append({"name": name, "shape": shape, "datatype": datatype,
                            "data": json_array(values)})
    payload: dict[str, Any] = {
        "model_name": model.name,
        "model_version": "" if model.version is None else str(model.version),
        "id": given_id if isinstance(given_id, str) and given_id else rid,
        "parameters": {"runtime": model.runtime.name, "request_id": rid},
        "outputs": outputs}
    return binary_response(payload, buffers) if buffers else json_response(payload)
