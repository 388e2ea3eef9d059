"""The Open Inference Protocol (KServe v2 / Triton) routes, so those clients work unchanged.

One input tensor per signature column (shape ``[n]`` or ``[n, 1]``), outputs ``predict``
(shape ``[n]``) and, for classifiers, ``predict_proba`` (shape ``[n, k]``, data flattened
row-major). Errors answer ``{"error": "..."}`` as the protocol says.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Request
from starlette.responses import Response

from forgeline.errors import InvalidInput, NotFound
from forgeline.serving.config import ServeConfig
from forgeline.serving.http import check_auth, error_response, json_response, read_json
from forgeline.serving.http import request_id as header_request_id
from forgeline.serving.models import ServedModel
from forgeline.serving.payload import kind_of
from forgeline.serving.scoring import Scorer, json_array
from forgeline.version import __version__

__all__ = ["column_datatype", "oip_router", "parse_inputs"]

_NUMERIC = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16",
            "UINT32", "UINT64"}
DATATYPES = _NUMERIC | {"BOOL", "BYTES"}
_FEW_ROWS = 64
_BY_DTYPE = {"float64": "FP64", "float32": "FP32", "float16": "FP16", "int64": "INT64",
             "int32": "INT32", "int16": "INT16", "int8": "INT8", "uint64": "UINT64",
             "uint32": "UINT32", "uint16": "UINT16", "uint8": "UINT8", "bool": "BOOL",
             "boolean": "BOOL"}
OUTPUTS = ("predict", "predict_proba")


def column_datatype(dtype: str) -> str:
    """The OIP datatype of a training dtype (``float64`` -> ``FP64``; text -> ``BYTES``)."""
    return _BY_DTYPE.get(dtype.lower(), "BYTES")


def _array_datatype(values: np.ndarray) -> str:
    if values.dtype != object:
        return _BY_DTYPE.get(values.dtype.name, "BYTES")
    first = next((v for v in values.tolist() if v is not None), None)
    if isinstance(first, bool):
        return "BOOL"
    return "INT64" if isinstance(first, int) else "FP64" if isinstance(first, float) else "BYTES"


def _flatten(data: list[Any]) -> list[Any]:
    if not any(isinstance(v, list) for v in data):
        return data
    flat: list[Any] = []
    for value in data:
        flat.extend(_flatten(value) if isinstance(value, list) else [value])
    return flat


def _check_values(where: str, datatype: str, data: list[Any]) -> None:
    """The data must be what the datatype says (null allowed: a missing value)."""
    if datatype == "BYTES":
        return
    kind = np.asarray(data).dtype.kind if data else "f"
    if (datatype == "BOOL" and kind == "b") or (datatype in _NUMERIC and kind in "iuf"):
        return
    for i, value in enumerate(data):
        ok = value is None or (isinstance(value, bool) if datatype == "BOOL" else
                               isinstance(value, int | float) and not isinstance(value, bool))
        if not ok:
            raise InvalidInput(f"{where}: datatype {datatype} but data[{i}] is "
                               f"{kind_of(value)} ({value!r}).",
                               hint="Send the values as the datatype says, or change it.")


def parse_inputs(body: Any) -> tuple[list[Mapping[str, Any]] | pd.DataFrame, list[str] | None]:
    """The rows of an OIP inference request, and the outputs it asks for (None: all).

    Raises:
        InvalidInput: naming the tensor (``inputs[1] ('amount')``) or field that is wrong.
    """
    if not isinstance(body, Mapping):
        raise InvalidInput(f"The inference request must be a JSON object, got {kind_of(body)}.")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput('"inputs" must be a non-empty array of tensors '
                           '{"name", "shape", "datatype", "data"}.')
    columns: dict[str, list[Any]] = {}
    rows = -1
    for i, tensor in enumerate(inputs):
        if not isinstance(tensor, Mapping) or not isinstance(tensor.get("name"), str):
            raise InvalidInput(f"inputs[{i}] must be an object with a string \"name\".")
        where = f"inputs[{i}] ({tensor['name']!r})"
        datatype, shape, data = tensor.get("datatype"), tensor.get("shape"), tensor.get("data")
        if datatype not in DATATYPES:
            raise InvalidInput(f"{where}: unknown datatype {datatype!r}.",
                               hint=f"Use one of {', '.join(sorted(DATATYPES))}.")
        if (not isinstance(shape, list) or not shape or len(shape) > 2 or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
                or (len(shape) == 2 and shape[1] != 1)):
            raise InvalidInput(f"{where}: shape must be [n] or [n, 1] (one value per row), "
                               f"got {shape!r}.")
        if not isinstance(data, list):
            raise InvalidInput(f"{where}: data must be an array, got {kind_of(data)}.")
        data = _flatten(data)
        if len(data) != math.prod(shape):
            raise InvalidInput(f"{where}: shape {shape} needs {math.prod(shape)} values, data "
                               f"has {len(data)}.")
        if rows >= 0 and shape[0] != rows:
            raise InvalidInput(f"{where}: {shape[0]} rows, but the tensors before have {rows}.",
                               hint="Every input tensor holds one value per row.")
        if tensor["name"] in columns:
            raise InvalidInput(f"{where}: input {tensor['name']!r} is given twice.")
        _check_values(where, datatype, data)
        rows = shape[0]
        columns[tensor["name"]] = data
    if rows == 0:
        raise InvalidInput("The input tensors have no rows: send at least one.")
    return _rows(columns, rows), _requested(body.get("outputs"))


def _rows(columns: dict[str, list[Any]], rows: int) -> list[Mapping[str, Any]] | pd.DataFrame:
    if rows <= _FEW_ROWS:
        names = list(columns)
        return [dict(zip(names, values, strict=True))
                for values in zip(*columns.values(), strict=True)]
    return pd.DataFrame(columns)


def _requested(outputs: Any) -> list[str] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(
            isinstance(o, Mapping) and isinstance(o.get("name"), str) for o in outputs):
        raise InvalidInput('"outputs" must be an array of objects with a "name".')
    names = [o["name"] for o in outputs]
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown:
        raise InvalidInput(f"Unknown output {unknown[0]!r}.",
                           hint=f"Outputs: {', '.join(OUTPUTS)}.")
    return names


def model_metadata(model: ServedModel, versions: list[str]) -> dict[str, Any]:
    """The OIP model metadata of ``model``, from its signature."""
    signature = model.signature
    outputs: list[dict[str, Any]] = [{"name": "predict", "shape": [-1], "datatype": (
        _array_datatype(np.asarray(signature.classes, dtype=object))
        if signature.is_classifier and signature.classes else "FP64")}]
    parameters: dict[str, Any] = {"runtime": model.runtime.name, "task": signature.task,
                                  "version": "" if model.version is None else str(model.version)}
    if signature.is_classifier:
        classes = list(signature.classes or ())
        outputs.append({"name": "predict_proba", "shape": [-1, len(classes)], "datatype": "FP64"})
        parameters["classes"] = classes
    return {"name": model.name, "versions": versions,
            "platform": str(model.predictor.package.flavor),
            "inputs": [{"name": c.name, "datatype": column_datatype(c.dtype), "shape": [-1]}
                       for c in signature.inputs],
            "outputs": outputs, "parameters": parameters}


def oip_router(scorer: Scorer, config: ServeConfig, is_ready: Callable[[], bool]) -> APIRouter:
    """The ``/v2`` routes over ``scorer``'s deployment."""
    router = APIRouter(prefix="/v2", tags=["Open Inference Protocol v2"])
    deployment = scorer.deployment

    def find(name: str, version: str | None) -> ServedModel:
        model = deployment.lookup(name, version)
        if model is None:
            what = f"{name!r}" if version is None else f"{name!r} version {version!r}"
            served = sorted({m.label for m in deployment.models.values()})
            raise NotFound(f"No model {what} is served here.", hint=f"Served: {', '.join(served)}.")
        return model

    @router.get("", summary="Server metadata")
    async def server_metadata() -> Response:
        return json_response({"name": "forgeline", "version": __version__,
                              "extensions": []})

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
            body = await read_json(request, config.listener.max_body_bytes)
            rows, wanted = parse_inputs(body)
            model = find(name, version)  # again: a swap may have happened while reading
            if wanted is not None and "predict_proba" in wanted and not \
                    model.signature.is_classifier:
                raise InvalidInput("Output 'predict_proba' needs a classifier; this model is a "
                                   f"{model.signature.task} model.")
            if isinstance(body.get("id"), str) and body["id"]:
                rid = body["id"]
            routed = version is None and model is deployment.primary
            scored = await scorer.score(rows, rid, None if routed else model,
                                        "primary" if model is deployment.primary else "direct")
            return json_response(_infer_response(scored.model, scored.prediction, rid, wanted,
                                                 body.get("id")))
        except Exception as e:
            return error_response(e, request_id=rid, oip=True)

    for path, summary, handler, method in (
            ("", "Model metadata", metadata, "GET"),
            ("/ready", "Model readiness", model_ready, "GET"),
            ("/infer", "Inference (one tensor per input column)", infer, "POST")):
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


def _infer_response(model: ServedModel, prediction: Any, rid: str, wanted: list[str] | None,
                    given_id: Any) -> dict[str, Any]:
    labels = prediction.labels
    outputs: list[dict[str, Any]] = []
    if wanted is None or "predict" in wanted:
        outputs.append({"name": "predict", "shape": [len(labels)],
                        "datatype": _array_datatype(labels), "data": json_array(labels)})
    proba = prediction.proba
    if proba is not None and (wanted is None or "predict_proba" in wanted):
        outputs.append({"name": "predict_proba", "shape": list(proba.shape),
                        "datatype": "FP32" if proba.dtype == np.float32 else "FP64",
                        "data": json_array(np.ascontiguousarray(proba).ravel())})
    response: dict[str, Any] = {
        "model_name": model.name,
        "model_version": "" if model.version is None else str(model.version),
        "id": given_id if isinstance(given_id, str) and given_id else rid,
        "parameters": {"runtime": model.runtime.name, "request_id": rid},
        "outputs": outputs}
    return response
