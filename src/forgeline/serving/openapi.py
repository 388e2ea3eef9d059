"""OpenAPI documentation generated from the served model's signature.

The ``/predict`` request body is described by pydantic models built with
``pydantic.create_model`` from the signature's columns (types, descriptions, an example
record), so ``/docs`` shows exactly what this model takes. They are documentation only:
requests are parsed with orjson and checked by ``Signature.validate_records``, which is
faster than pydantic here and names the problem in the model's own terms.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import models_json_schema

from forgeline.packaging import InputColumn, Signature

if TYPE_CHECKING:
    from fastapi import FastAPI

    from forgeline.serving.models import Deployment, ServedModel

__all__ = ["ErrorBody", "ExplainResponse", "PredictResponse", "RowExplanation", "example_record",
           "install_openapi", "record_model"]

_SHOWN_CATEGORIES = 20
_REF = "#/components/schemas/{model}"


class PredictResponse(BaseModel):
    """The answer of ``POST /predict``."""

    model: str = Field(description="The model name.")
    version: int | None = Field(description="The model version that answered.")
    runtime: str = Field(description="The runtime that computed the predictions.")
    request_id: str = Field(description="The X-Request-ID given, or a new one.")
    predictions: list[Any] = Field(description="One label (or value) per input row.")
    probabilities: list[list[float]] | None = Field(
        None, description="Classifiers: one row of class probabilities per input row.")
    classes: list[Any] | None = Field(None, description="Classifiers: the probability "
                                      "columns' labels.")


class RowExplanation(BaseModel):
    """One row's explanation."""

    contributions: dict[str, float] = Field(description="Each input column's contribution.")
    base_value: float = Field(description="The model's average output the contributions "
                                          "start from.")
    output: float = Field(description="base_value plus the contributions: the model's output.")
    reasons: list[str] = Field(description='The top columns in words: "amount 2,450 (+0.31)".')
    class_: Any = Field(None, alias="class", description="Classifiers: the class explained.")


class ExplainResponse(BaseModel):
    """The answer of ``POST /explain`` (and its part of ``/predict`` with ``"explain": true``)."""

    model: str = Field(description="The model name.")
    version: int | None = Field(description="The model version that answered.")
    request_id: str = Field(description="The X-Request-ID given, or a new one.")
    units: str = Field(description='What the contributions are in: "log-odds", "logit", '
                                   '"probability" or "value".')
    method: str = Field(description="How they were computed.")
    preprocessing: str = Field(description='What transformed the rows for the model: '
                                           '"onnxruntime" (the single-row fast path, checked '
                                           'equal to scikit-learn) or "scikit-learn".')
    explanations: list[RowExplanation] = Field(description="One per input row.")


class ErrorBody(BaseModel):
    """An error: what was wrong, naming the field."""

    error: str
    code: str | None = None
    request_id: str | None = None


def _python_type(column: InputColumn, policy: str) -> Any:
    dtype = column.dtype.lower()
    if column.kind == "boolean" or dtype == "bool":
        return bool
    if dtype.startswith(("int", "uint")):
        return int
    if dtype.startswith("float"):
        return float
    if column.kind == "datetime" or dtype.startswith("datetime"):
        return dt.datetime
    if column.kind == "categorical" and column.categories and policy == "error":
        return Literal[tuple(column.categories)]
    return str


def _description(column: InputColumn, policy: str) -> str:
    text = f"{column.kind} ({column.dtype})"
    if column.minimum is not None and column.maximum is not None:
        text += f"; seen in training: {column.minimum:g} to {column.maximum:g}"
    if column.categories:
        shown = ", ".join(column.categories[:_SHOWN_CATEGORIES])
        more = len(column.categories) - _SHOWN_CATEGORIES
        text += f"; categories: {shown}{f' (+{more} more)' if more > 0 else ''}"
        text += ("; other values are refused" if policy == "error"
                 else "; other values are accepted and counted as unseen")
    return text + "; null: missing (imputed)"


def example_record(signature: Signature, profile: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
    """A plausible record: the training median or most frequent category of each column."""
    columns = (profile or {}).get("columns") or {}
    record: dict[str, Any] = {}
    for column in signature.inputs:
        stats = columns.get(column.name) or {}
        kind = _python_type(column, "allow")
        if kind is bool:
            value: Any = True
        elif kind in (int, float):
            median = (stats.get("quantiles") or {}).get("p50")
            if median is None and column.minimum is not None and column.maximum is not None:
                median = (column.minimum + column.maximum) / 2
            value = kind(median) if median is not None else kind(0)
        elif kind is dt.datetime:
            value = stats.get("max") or "2024-01-01T00:00:00"
        else:
            seen = list((stats.get("categories") or {}).keys()) or list(column.categories or ())
            value = seen[0] if seen else "text"
        record[column.name] = value
    return record


def record_model(signature: Signature, name: str,
                 example: dict[str, Any] | None = None) -> type[BaseModel]:
    """A pydantic model of one input record, for the docs (fields aliased to column names)."""
    fields: dict[str, Any] = {}
    for i, column in enumerate(signature.inputs):
        kind = _python_type(column, signature.unseen_categories)
        fields[f"f{i}"] = (kind | None, Field(..., alias=column.name,
                                               description=_description(
                                                   column, signature.unseen_categories)))
    config = ConfigDict(title=f"{name} record",
                        json_schema_extra={"examples": [example]} if example else None)
    return create_model(f"{name}_record", __config__=config, **fields)


def _schema_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name)


def request_body(model: ServedModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """The component schemas and the ``requestBody`` of ``POST /predict`` for ``model``."""
    name = _schema_name(model.name)
    example = example_record(model.signature, model.predictor.profile)
    record = record_model(model.signature, name, example)
    records_body = create_model(
        f"{name}_records_request", __config__=ConfigDict(title="records form"),
        records=(list[record], Field(..., min_length=1, description="One object per row.")))
    names = tuple(model.signature.names)
    columns_body = create_model(
        f"{name}_columns_request", __config__=ConfigDict(title="columns form"),
        columns=(list[Literal[names]] if names else list[str],  # type: ignore[valid-type]
                 Field(..., description="The column names, in the order of each data row.")),
        data=(list[list[Any]], Field(..., min_length=1, description="One array per row.")))
    refs, defs = models_json_schema([(records_body, "validation"), (columns_body, "validation")],
                                    ref_template=_REF)
    body = {"required": True, "content": {"application/json": {
        "schema": {"oneOf": [refs[(records_body, "validation")],
                             refs[(columns_body, "validation")]]},
        "examples": {
            "records": {"summary": "records", "value": {"records": [example]}},
            "columns": {"summary": "columns", "value": {
                "columns": list(example), "data": [list(example.values())]}}}}}}
    return defs.get("$defs", {}), body


def install_openapi(app: FastAPI, deployment: Deployment) -> None:
    """Generate ``/openapi.json`` from the primary model; regenerate after a swap."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            model = deployment.primary
            schema = get_openapi(
                title=f"{model.name} - Forgeline model server",
                version=str(model.version) if model.version is not None else "local",
                description=f"Serves `{deployment.config.model}` (now {model.label}, runtime "
                            f"{model.runtime.name}). `POST /predict` takes the columns "
                            "below; the Open Inference Protocol v2 lives under `/v2`.",
                routes=app.routes)
            components, body = request_body(model)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(components)
            predict = schema.get("paths", {}).get("/predict", {}).get("post")
            if predict is not None:
                predict["requestBody"] = body
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    deployment.on_swap(lambda ref, old, new: setattr(app, "openapi_schema", None))
