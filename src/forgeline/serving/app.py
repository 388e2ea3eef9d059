"""The FastAPI app of the model server: ``/predict``, OIP v2, ``/metrics``, the docs.

    app = create_app(ServeConfig("fraud@champion"))  # loads the model(s) now
    uvicorn.run(app)

``create_app_from_env`` builds the same app from ``FORGELINE_SERVE_CONFIG``; uvicorn calls
it in each worker process when there are several.

Start-up (the lifespan) starts one micro-batcher per model, the registry watcher, the
OIP v2 gRPC server when ``listener.grpc_port`` is set (on this event loop, sharing the
batchers: :mod:`forgeline.serving.oip_grpc.service`) and the background jobs a caller
attached (``background``; a flow that also monitors the predictions attaches its monitor
this way, without serving knowing it); shutdown (after uvicorn has stopped accepting and
finished the requests in flight) stops the gRPC server (its calls in flight finish), the
jobs, lets queued batches and shadow predictions finish, then flushes the prediction log.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from forgeline.serving.config import ServeConfig
from forgeline.serving.explaining import explain_flag, explanation_payload
from forgeline.serving.http import (
    RequestMiddleware,
    check_auth,
    error_response,
    json_response,
    read_json,
    request_id,
)
from forgeline.serving.metrics import CONTENT_TYPE_LATEST, ServingMetrics, value_buckets
from forgeline.serving.models import Deployment, ServedModel
from forgeline.serving.oip import oip_router
from forgeline.serving.openapi import ErrorBody, ExplainResponse, PredictResponse, install_openapi
from forgeline.serving.payload import predict_rows
from forgeline.serving.scoring import PredictionSink, Scorer, json_array
from forgeline.version import __version__

if TYPE_CHECKING:
    from forgeline.packaging.explain import Explanation
    from forgeline.serving.oip_grpc.service import GrpcServer
    from forgeline.tracking.client import Client

__all__ = ["BackgroundJob", "JobFactory", "ServingState", "create_app", "create_app_from_env"]

log = logging.getLogger("forgeline.serving")
INLINE_EXPLAIN_ROWS = 8  # more rows go to a thread: the loop is not held past ~5 ms

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in (
        (400, "The body or a value is wrong; the message names the field."),
        (401, "A bearer token is required (the server was started with one)."),
        (413, "The body is larger than the server's limit (max_body_bytes)."),
        (500, "The model failed unexpectedly; the server stays up."))}


class BackgroundJob(abc.ABC):
    """Work an app runs beside its requests, in a thread of its own, from start-up to
    shutdown (the periodic monitor, say). Requests never wait for it."""

    @abc.abstractmethod
    def start(self) -> None:
        """Start; called once the models are loaded, before the first request."""

    @abc.abstractmethod
    def stop(self) -> object:
        """Stop after the work in progress; called from a worker thread at shutdown, once
        the requests in flight are answered and before the prediction log is flushed."""

    def halt_on_stop_signals(self) -> None:  # noqa: B027 - optional, nothing by default
        """Start nothing new once the process is told to stop (SIGTERM, SIGINT). Called
        from the main thread when the server is the process's only job."""


@dataclass
class ServingState:
    """Everything one app holds; ``app.state.forgeline``."""

    config: ServeConfig
    deployment: Deployment
    metrics: ServingMetrics
    scorer: Scorer
    prediction_log: PredictionSink | None = None
    ready: bool = False
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)
    jobs: list[BackgroundJob] = field(default_factory=list, repr=False)
    own_process: bool = False  # the server is the process's only job (tune its GC)
    grpc: GrpcServer | None = field(default=None, repr=False)  # while it runs

    @property
    def grpc_port(self) -> int | None:
        """The port the OIP v2 gRPC service listens on; None when there is none."""
        return None if self.grpc is None else self.grpc.port


class ServingApp(FastAPI):
    """FastAPI, with :class:`RequestMiddleware` in front of everything it does.

    The middleware gives each HTTP request its id and metrics, and answers the hot routes
    itself by calling their endpoints (:class:`~forgeline.serving.http.RawRequest`), so a
    prediction does not pay for FastAPI's middleware stack, routing and dependencies.
    """

    requests: RequestMiddleware | None = None

    async def fastapi_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.requests is not None:
            await self.requests(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


# Builds one background job for an app, from its state (models, metrics, prediction log).
JobFactory = Callable[[ServingState], BackgroundJob]


def create_app(config: ServeConfig, *, client: Client | None = None,
               prediction_log: PredictionSink | None = None, own_process: bool = False,
               background: Sequence[JobFactory] = ()) -> FastAPI:
    """The server app for ``config``; loads the models before returning.

    Args:
        config: what to serve and how.
        client: the registry; ``Client(config.store_uri)`` when None.
        prediction_log: receives one record per prediction (see :class:`PredictionSink`).
        own_process: the app is all this process does (``forgeline serve``): the loaded
            models are moved out of the garbage collector's sight (``gc.freeze``), so
            its full passes no longer stop requests for hundreds of milliseconds.
        background: each called once with the app's state, now; the jobs they return
            are started with the app and stopped at its shutdown.

    Raises:
        ForgelineError: a model reference cannot be resolved or loaded, or a background
            job cannot be built for this deployment; ``InvalidSetting`` when a gRPC port
            is set and grpcio is missing.
    """
    if config.listener.grpc_port is not None:
        from forgeline.serving import oip_grpc

        oip_grpc.load()  # grpcio is there: fail now, not at start-up
    deployment = Deployment(config, client)
    if prediction_log is None and config.log_predictions and deployment.primary.version:
        from forgeline.config import hash_key
        from forgeline.serving.predlog import PredictionLog
        from forgeline.store.predictions import prediction_log_root

        settings = deployment.client.settings
        personal = {name for m in deployment.models.values()
                    for name in (m.predictor.privacy.get("columns") or {})}
        prediction_log = PredictionLog(prediction_log_root(settings),
                                       deployment.primary.name, personal=personal,
                                       hash_key=hash_key(settings))
    metrics = ServingMetrics(value_buckets(deployment.primary.predictor.profile),
                             llm=any(m.llm for m in deployment.models.values()))
    scorer = Scorer(deployment, metrics, prediction_log)
    state = ServingState(config, deployment, metrics, scorer, prediction_log,
                         own_process=own_process)
    state.jobs = [make(state) for make in background]
    primary = deployment.primary
    app = ServingApp(title=f"{primary.name} - Forgeline model server",
                     version=__version__, lifespan=partial(_lifespan, state=state))
    app.state.forgeline = state

    @app.get("/", summary="What this server serves", include_in_schema=False)
    async def index() -> Response:
        return json_response({"models": {ref: m.label for ref, m in deployment.models.items()},
                              "predict": "/predict", "docs": "/docs", "metrics": "/metrics",
                              "oip": f"/v2/models/{deployment.primary.name}"})

    @app.post("/predict", summary="Predict", response_model=None,
              responses={200: {"model": PredictResponse}, **_ERRORS})
    async def predict(request: Request) -> Response:  # or a RawRequest (see RequestMiddleware)
        """Predict for records or columnar rows (the body schema is the model's signature)."""
        rid = request_id(request)
        try:
            check_auth(request, config.listener.token)
            body = await read_json(request, config.listener.max_body_bytes)
            rows = predict_rows(body)
            wanted = explain_flag(body)
            scored = await scorer.score(rows, rid)
            explained = await _explain(scored.model, rows) if wanted else None
        except Exception as e:
            return error_response(e, request_id=rid)
        model, prediction = scored.model, scored.prediction
        payload: dict[str, Any] = {"model": model.name, "version": model.version,
                                   "runtime": model.runtime.name, "request_id": rid,
                                   "predictions": json_array(prediction.labels)}
        if prediction.proba is not None:
            payload["probabilities"] = json_array(prediction.proba)
            payload["classes"] = list(model.signature.classes
                                      or range(prediction.proba.shape[1]))
        if explained is not None:
            payload.update(explanation_payload(explained))
        return json_response(payload)

    @app.post("/explain", summary="Explain predictions", response_model=None,
              responses={200: {"model": ExplainResponse}, **_ERRORS,
                         422: {"model": ErrorBody,
                               "description": "The model cannot be explained."}})
    async def explain(request: Request) -> Response:  # or a RawRequest, as /predict
        """Each input column's contribution to the model's output, the base value, the
        units and the top reasons in words, per row (same body as ``/predict``)."""
        rid = request_id(request)
        try:
            check_auth(request, config.listener.token)
            rows = predict_rows(await read_json(request, config.listener.max_body_bytes))
            model, _ = deployment.route(rid)
            explained = await _explain(model, rows)
        except Exception as e:
            return error_response(e, request_id=rid)
        return json_response({"model": model.name, "version": model.version,
                              "request_id": rid, **explanation_payload(explained)})

    # every request gets an id and metrics first; /predict, the hot route, is answered
    # right there, past FastAPI's middleware, routing and dependency machinery
    app.requests = RequestMiddleware(app.fastapi_app, metrics, {("POST", "/predict"): predict,
                                                                ("POST", "/explain"): explain})

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus() -> Response:
        await metrics.settle()
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(oip_router(scorer, config, lambda: state.ready))
    install_openapi(app, deployment)
    return app


async def _explain(model: ServedModel, rows: Any) -> Explanation:
    """The model's explanation of ``rows``: in a thread while building the explainer
    (importing shap) or for the model-agnostic method, which take long enough to hold up
    other requests; on the event loop once it reads trees or coefficients (one row in ~2 ms,
    where the hop to a thread would add a third)."""
    model.acquire()  # keeps this version alive through a swap until we are done
    try:
        if model.explains_inline and len(rows) <= INLINE_EXPLAIN_ROWS:
            return model.explain(rows)
        return await asyncio.to_thread(model.explain, rows)
    finally:
        model.release()


def create_app_from_env() -> FastAPI:
    """:func:`create_app` for the settings in ``FORGELINE_SERVE_CONFIG`` (worker processes)."""
    return create_app(ServeConfig.from_env(), own_process=True)


# -- start-up and shutdown ------------------------------------------------------------------
def _model_labels(model: ServedModel) -> tuple[str, int | None, str]:
    return model.name, model.version, model.runtime.name


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI, state: ServingState) -> AsyncIterator[None]:
    deployment, metrics = state.deployment, state.metrics

    def on_swap(ref: str, old: ServedModel, new: ServedModel) -> None:
        if state.own_process:
            gc.freeze()  # the new model too (no collection: it would stop requests)
        metrics.switches.labels(ref).inc()
        metrics.set_model(*_model_labels(new), loaded=True)
        if all(_model_labels(m) != _model_labels(old) for m in deployment.models.values()):
            metrics.set_model(*_model_labels(old), loaded=False)

    deployment.start(state.scorer.on_batch)
    deployment.on_swap(on_swap)
    for model in deployment.models.values():
        metrics.set_model(*_model_labels(model), loaded=True)
    if state.config.watch:
        state.watcher = asyncio.get_running_loop().create_task(
            deployment.watch(state.config.watch_interval_s), name="forgeline-watch")
    if state.config.listener.grpc_port is not None:
        from forgeline.serving import oip_grpc

        state.grpc = await oip_grpc.load().start(state.scorer, state.config,
                                                 lambda: state.ready, metrics)
    for job in state.jobs:
        job.start()  # a thread of its own; requests never wait for it
        if state.own_process:
            job.halt_on_stop_signals()
    if state.own_process:  # everything loaded so far lives as long as the server
        gc.collect()
        gc.freeze()
        # background threads (prediction log, metrics) hand the GIL back to the event
        # loop after 1 ms instead of 5: shorter stalls for the requests in flight
        sys.setswitchinterval(0.001)
    state.ready = True
    try:
        yield
    finally:
        state.ready = False
        await _shutdown(state)


async def _shutdown(state: ServingState) -> None:
    if state.grpc is not None:
        await state.grpc.stop(state.config.listener.graceful_timeout_s)
        state.grpc = None
    for job in state.jobs:
        try:
            await asyncio.to_thread(job.stop)
        except Exception:
            log.exception("stopping a background job failed")
    if state.watcher is not None:
        state.watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await state.watcher
    await state.scorer.drain(max(state.config.listener.graceful_timeout_s, 1.0))
    await state.deployment.stop()
    flush = getattr(state.prediction_log, "flush", None)
    if callable(flush):
        try:
            await asyncio.to_thread(flush)
        except Exception:
            log.exception("flushing the prediction log failed")
    state.metrics.close()
    state.metrics.process_exit()
    log.info("stopped serving %s", state.config.model)
