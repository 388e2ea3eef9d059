"""The OIP v2 gRPC service, in the HTTP server's process and on its event loop.

:func:`start` runs a ``grpc.aio`` server on the event loop uvicorn runs the app on,
called from the app's start-up. Its calls go through the same :class:`Scorer` as the
HTTP routes, so they share the models' micro-batchers (a gRPC request and an HTTP one can
be scored in one model call), the shadow, the canary routing, the prediction log and the
metrics, with no thread or process in between: a ``ModelInfer`` awaits the batcher's
future just as ``POST /predict`` does. (A gRPC server on a thread of its own would need
its own event loop and a hop between the two loops for every request; a separate process
would need its own copy of the models and its own batches.)

With several workers each worker process serves gRPC on the same port (``SO_REUSEPORT``:
the kernel spreads the connections), just as they share the HTTP socket.

- Inputs come as ``raw_input_contents`` (what ``tritonclient.grpc`` sends) or as typed
  ``contents``; outputs are answered as ``raw_output_contents``, one per output.
- With a bearer token, ``ModelInfer`` needs the metadata ``authorization: Bearer <token>``
  (health and metadata calls are open, as over HTTP).
- Errors are gRPC status codes with the message the HTTP routes would give: 400 ->
  ``INVALID_ARGUMENT``, 401 -> ``UNAUTHENTICATED``, 404 -> ``NOT_FOUND``... (see
  :data:`CODES`); a message larger than ``max_body_bytes`` is ``RESOURCE_EXHAUSTED``.
- Each call is counted in ``forgeline_requests_total`` and timed in
  ``forgeline_request_duration_seconds`` with ``method="GRPC"``, its route being the
  gRPC method's path, its status the HTTP status of the same outcome.
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio

from forgeline.errors import ForgelineError, InvalidInput
from forgeline.serving.config import ServeConfig
from forgeline.serving.http import Unauthorized, new_request_id, status_of
from forgeline.serving.metrics import ServingMetrics
from forgeline.serving.oip_grpc import grpc_predict_v2_pb2 as pb
from forgeline.serving.oip_grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from forgeline.serving.oip_protocol import (
    OUTPUTS,
    Columns,
    Requested,
    Rows,
    check_outputs,
    find_model,
    model_metadata,
    output_tensors,
    server_metadata,
    tensor_name,
)
from forgeline.serving.oip_tensors import decode, encode
from forgeline.serving.scoring import Scorer

__all__ = ["CODES", "SERVICE", "GrpcServer", "InferenceService", "parse_request", "start"]

log = logging.getLogger("forgeline.serving")

SERVICE = "inference.GRPCInferenceService"
# the gRPC status of each HTTP status the server answers; anything else is INTERNAL
CODES: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED, 404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ALREADY_EXISTS, 413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    422: grpc.StatusCode.INVALID_ARGUMENT, 503: grpc.StatusCode.UNAVAILABLE}
# where the values of each datatype are in InferTensorContents (FP16 has no field: raw only)
_CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
             "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
             "UINT16": "uint_contents", "UINT32": "uint_contents",
             "UINT64": "uint64_contents", "FP32": "fp32_contents", "FP64": "fp64_contents",
             "BYTES": "bytes_contents"}


def parse_request(request: pb.ModelInferRequest) -> tuple[Rows, Requested]:
    """The rows of a ``ModelInferRequest``, and the outputs it asks for.

    Raises:
        InvalidInput: naming the tensor (``inputs[1] ('amount')``) or field that is wrong.
    """
    if not request.inputs:
        raise InvalidInput("inputs must be a non-empty list of tensors (name, datatype, "
                           "shape, and contents or raw_input_contents).")
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput(f"raw_input_contents has {len(raw)} entries for "
                           f"{len(request.inputs)} inputs.",
                           hint="Give one entry per input, in the order of the inputs.")
    columns = Columns()
    for i, tensor in enumerate(request.inputs):
        shape = list(tensor.shape)
        columns.check(i, tensor.name, tensor.datatype, shape)
        where = tensor_name(i, tensor.name)
        if raw:
            if tensor.HasField("contents"):
                raise InvalidInput(f"{where}: contents are given as well as "
                                   "raw_input_contents.", hint="Send one or the other.")
            values: Any = decode(where, tensor.datatype, shape, raw[i])
        else:
            values = _contents(where, tensor.datatype, shape, tensor.contents)
        columns.add_array(i, tensor.name, shape[0], values)
    names = tuple(output.name for output in request.outputs) or None
    unknown = [n for n in names or () if n not in OUTPUTS]
    if unknown:
        raise InvalidInput(f"Unknown output {unknown[0]!r}.",
                           hint=f"Outputs: {', '.join(OUTPUTS)}.")
    return columns.to_rows(), Requested(names)


def _contents(where: str, datatype: str, shape: list[int], contents: Any) -> list[Any]:
    name = _CONTENTS.get(datatype)
    if name is None:
        raise InvalidInput(f"{where}: {datatype} values have no contents field; send them in "
                           "raw_input_contents.")
    values = list(getattr(contents, name))
    if len(values) != math.prod(shape):
        raise InvalidInput(f"{where}: shape {shape} needs {math.prod(shape)} values, "
                           f"contents.{name} has {len(values)}.")
    if datatype != "BYTES":
        return values
    try:
        return [value.decode() for value in values]
    except UnicodeDecodeError as e:
        raise InvalidInput(f"{where}: a BYTES element is not UTF-8 text ({e.reason}).") from None


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    """The six calls of ``inference.GRPCInferenceService`` over ``scorer``'s deployment.

    Args:
        scorer: scores requests (the app's, shared with the HTTP routes).
        config: the server's settings (the bearer token).
        is_ready: whether the server is ready (the app's state).
        metrics: where each call is counted and timed.
    """

    def __init__(self, scorer: Scorer, config: ServeConfig, is_ready: Callable[[], bool],
                 metrics: ServingMetrics) -> None:
        self.scorer = scorer
        self.deployment = scorer.deployment
        self.token = config.listener.token
        self.is_ready = is_ready
        self.metrics = metrics

    async def ServerLive(self, request: pb.ServerLiveRequest, context: aio.ServicerContext
                         ) -> pb.ServerLiveResponse:
        return await self._answer("ServerLive", context, self._live)

    async def ServerReady(self, request: pb.ServerReadyRequest, context: aio.ServicerContext
                          ) -> pb.ServerReadyResponse:
        return await self._answer("ServerReady", context, self._ready)

    async def ModelReady(self, request: pb.ModelReadyRequest, context: aio.ServicerContext
                         ) -> pb.ModelReadyResponse:
        return await self._answer("ModelReady", context, self._model_ready, request)

    async def ServerMetadata(self, request: pb.ServerMetadataRequest,
                             context: aio.ServicerContext) -> pb.ServerMetadataResponse:
        return await self._answer("ServerMetadata", context, self._server_metadata)

    async def ModelMetadata(self, request: pb.ModelMetadataRequest,
                            context: aio.ServicerContext) -> pb.ModelMetadataResponse:
        return await self._answer("ModelMetadata", context, self._model_metadata, request)

    async def ModelInfer(self, request: pb.ModelInferRequest, context: aio.ServicerContext
                         ) -> pb.ModelInferResponse:
        return await self._answer("ModelInfer", context, self._infer, request, context)

    # -- the calls ----------------------------------------------------------------------
    async def _live(self) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def _ready(self) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.is_ready())

    async def _model_ready(self, request: pb.ModelReadyRequest) -> pb.ModelReadyResponse:
        find_model(self.deployment, request.name, request.version or None)
        return pb.ModelReadyResponse(ready=self.is_ready())

    async def _server_metadata(self) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(**server_metadata())

    async def _model_metadata(self, request: pb.ModelMetadataRequest
                              ) -> pb.ModelMetadataResponse:
        model = find_model(self.deployment, request.name, request.version or None)
        meta = model_metadata(model, self.deployment.versions(request.name))
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta["name"], versions=meta["versions"], platform=meta["platform"],
            inputs=[tensor(**t) for t in meta["inputs"]],
            outputs=[tensor(**t) for t in meta["outputs"]])

    async def _infer(self, request: pb.ModelInferRequest, context: aio.ServicerContext
                     ) -> pb.ModelInferResponse:
        self._check_token(context)
        version = request.model_version or None
        find_model(self.deployment, request.model_name, version)  # NOT_FOUND before parsing
        rows, requested = parse_request(request)
        model = find_model(self.deployment, request.model_name, version)
        check_outputs(model, requested)
        rid = request.id or new_request_id()
        primary = self.deployment.primary
        routed = version is None and model is primary
        scored = await self.scorer.score(rows, rid, None if routed else model,
                                         "primary" if model is primary else "direct")
        served = scored.model
        response = pb.ModelInferResponse(
            model_name=served.name, id=rid,
            model_version="" if served.version is None else str(served.version))
        response.parameters["runtime"].string_param = served.runtime.name
        response.parameters["request_id"].string_param = rid
        for name, datatype, shape, values in output_tensors(scored.prediction, requested):
            response.outputs.add(name=name, datatype=datatype, shape=shape)
            response.raw_output_contents.append(encode(datatype, values))
        return response

    def _check_token(self, context: aio.ServicerContext) -> None:
        if self.token is None:
            return
        given = next((str(value) for key, value in context.invocation_metadata() or ()
                      if key == "authorization"), "")
        scheme, _, value = given.partition(" ")
        # compare_digest: the time taken does not tell how much of the token was right
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                value.strip().encode("utf-8"), self.token.encode("utf-8")):
            raise Unauthorized("Missing or invalid bearer token.",
                               hint="Send the metadata authorization: Bearer <token>.")

    async def _answer(self, method: str, context: aio.ServicerContext,
                      call: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """``call(*args)``'s answer; an error aborts the call with its status and message."""
        started = time.perf_counter()
        route = f"/{SERVICE}/{method}"
        try:
            answer = await call(*args)
        except Exception as e:
            if isinstance(e, ForgelineError):
                status, message = status_of(e), str(e)
            else:
                log.error("gRPC %s failed: %s: %s", method, type(e).__name__, e, exc_info=e)
                status = 500
                message = f"The model failed on this request ({type(e).__name__}: {e})."
            self.metrics.observe_request(route, "GRPC", status, time.perf_counter() - started)
            await context.abort(CODES.get(status, grpc.StatusCode.INTERNAL), message)
        self.metrics.observe_request(route, "GRPC", 200, time.perf_counter() - started)
        return answer


@dataclass
class GrpcServer:
    """A running gRPC server and the port it listens on."""

    server: aio.Server
    port: int

    async def stop(self, grace_s: float) -> None:
        """Refuse new calls; let those in flight finish for up to ``grace_s`` seconds."""
        await self.server.stop(grace_s)


async def start(scorer: Scorer, config: ServeConfig, is_ready: Callable[[], bool],
                metrics: ServingMetrics) -> GrpcServer:
    """Serve OIP v2 over gRPC on ``config.listener``'s host and ``grpc_port``, on the running
    event loop.

    Raises:
        InvalidInput: the port cannot be bound.
    """
    listener = config.listener
    options = [("grpc.max_receive_message_length", listener.max_body_bytes),
               ("grpc.max_send_message_length", -1),
               # several workers share the port, as they share the HTTP socket; one alone
               # must not silently share it with another server
               ("grpc.so_reuseport", 1 if listener.workers > 1 else 0)]
    server = aio.server(options=options)
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(
        InferenceService(scorer, config, is_ready, metrics), server)
    host = f"[{listener.host}]" if ":" in listener.host else listener.host
    address = f"{host}:{listener.grpc_port}"
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as e:  # grpcio raises where older versions returned 0
        raise InvalidInput(f"Cannot listen for gRPC on {address}: {e}.",
                           hint="Choose another port.") from None
    if not port:
        raise InvalidInput(f"Cannot listen for gRPC on {address}.", hint="Choose another port.")
    await server.start()
    log.info("serving OIP v2 over gRPC on %s:%d", host, port)
    return GrpcServer(server, port)
