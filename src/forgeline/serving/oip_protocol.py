"""What the Open Inference Protocol v2 says, whatever carries it (HTTP or gRPC).

The datatypes, the checks every input tensor must pass (:class:`Columns`), the outputs a
request asks for (:class:`Requested`) and how they are built from a prediction
(:func:`output_tensors`), and the server and model metadata. The HTTP routes
(:mod:`forgeline.serving.oip`) and the gRPC service (:mod:`forgeline.serving.oip_grpc`)
both use them, so a client gets the same answers and the same errors either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forgeline.errors import InvalidInput, NotFound
from forgeline.serving.models import Deployment, ServedModel
from forgeline.serving.oip_tensors import BINARY_EXTENSION
from forgeline.serving.runtime_base import Prediction
from forgeline.version import __version__

__all__ = ["ALL_OUTPUTS", "DATATYPES", "EXTENSIONS", "NUMERIC", "OUTPUTS", "Columns",
           "Requested", "Rows", "check_outputs", "column_datatype", "find_model",
           "model_metadata", "output_tensors", "server_metadata", "tensor_name"]

NUMERIC = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16",
           "UINT32", "UINT64"}
DATATYPES = NUMERIC | {"BOOL", "BYTES"}
_FEW_ROWS = 64
_BY_DTYPE = {"float64": "FP64", "float32": "FP32", "float16": "FP16", "int64": "INT64",
             "int32": "INT32", "int16": "INT16", "int8": "INT8", "uint64": "UINT64",
             "uint32": "UINT32", "uint16": "UINT16", "uint8": "UINT8", "bool": "BOOL",
             "boolean": "BOOL"}
OUTPUTS = ("predict", "predict_proba")
EXTENSIONS = (BINARY_EXTENSION,)
Rows = list[Mapping[str, Any]] | pd.DataFrame


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


@dataclass(frozen=True, slots=True)
class Requested:
    """The outputs a request asks for, and which of them to answer as binary data.

    Attributes:
        names: the outputs, in the order asked; None: all the model has.
        binary: each output's own ``binary_data`` setting, where given.
        binary_default: the request's ``binary_data_output`` (False when not given).
    """

    names: tuple[str, ...] | None = None
    binary: Mapping[str, bool] = field(default_factory=dict)
    binary_default: bool = False

    def wants(self, name: str) -> bool:
        return self.names is None or name in self.names

    def is_binary(self, name: str) -> bool:
        return self.binary.get(name, self.binary_default)


ALL_OUTPUTS = Requested()  # every output, none binary: what a request says by default


def tensor_name(i: int, name: str) -> str:
    """How messages name input ``i``: ``inputs[1] ('amount')``."""
    return f"inputs[{i}] ({name!r})"


class Columns:
    """Input tensors gathered into columns, with the checks every tensor must pass.

    Shared by the JSON and binary forms of the HTTP route and by gRPC, so all of them
    refuse the same mistakes with the same messages. Inputs are named by their position
    and name; the name in a message (:func:`tensor_name`) is only written when one fails.
    """

    def __init__(self) -> None:
        self.columns: dict[str, Sequence[Any]] = {}
        self.rows = -1

    @staticmethod
    def check(i: int, name: str, datatype: Any, shape: Any) -> None:
        """Input ``i``'s datatype is the protocol's and its shape ``[n]`` or ``[n, 1]``."""
        if datatype not in DATATYPES:
            raise InvalidInput(f"{tensor_name(i, name)}: unknown datatype {datatype!r}.",
                               hint=f"Use one of {', '.join(sorted(DATATYPES))}.")
        if (not isinstance(shape, list) or not shape or len(shape) > 2 or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
                or (len(shape) == 2 and shape[1] != 1)):
            raise InvalidInput(f"{tensor_name(i, name)}: shape must be [n] or [n, 1] (one value "
                               f"per row), got {shape!r}.")

    def add(self, i: int, name: str, rows: int, values: Sequence[Any]) -> None:
        """Add input ``i``, the column ``name`` of ``rows`` values (already checked against
        its shape)."""
        if self.rows >= 0 and rows != self.rows:
            raise InvalidInput(f"{tensor_name(i, name)}: {rows} rows, but the tensors before "
                               f"have {self.rows}.",
                               hint="Every input tensor holds one value per row.")
        if name in self.columns:
            raise InvalidInput(f"{tensor_name(i, name)}: input {name!r} is given twice.")
        self.rows = rows
        self.columns[name] = values

    def add_array(self, i: int, name: str, rows: int, values: np.ndarray | list[Any]) -> None:
        """:meth:`add` for decoded values (an array, or texts): a few rows become Python
        values, as records hold them."""
        if rows <= _FEW_ROWS and isinstance(values, np.ndarray):
            values = values.tolist()
        self.add(i, name, rows, values)

    def to_rows(self) -> Rows:
        """Records for a few rows (the cheapest to validate), else a frame."""
        if self.rows == 0:
            raise InvalidInput("The input tensors have no rows: send at least one.")
        if self.rows <= _FEW_ROWS:
            names = list(self.columns)
            return [dict(zip(names, values, strict=True))
                    for values in zip(*self.columns.values(), strict=True)]
        return pd.DataFrame(self.columns)


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


def server_metadata() -> dict[str, Any]:
    """The OIP server metadata: name, version and the protocol extensions supported."""
    return {"name": "forgeline", "version": __version__, "extensions": list(EXTENSIONS)}


def find_model(deployment: Deployment, name: str, version: str | None) -> ServedModel:
    """The served model ``name`` (at ``version``, or the one requests are routed to).

    Raises:
        NotFound: naming what is served.
    """
    model = deployment.lookup(name, version)
    if model is None:
        what = f"{name!r}" if version is None else f"{name!r} version {version!r}"
        served = sorted({m.label for m in deployment.models.values()})
        raise NotFound(f"No model {what} is served here.", hint=f"Served: {', '.join(served)}.")
    return model


def check_outputs(model: ServedModel, requested: Requested) -> None:
    """``predict_proba`` is asked of a classifier only.

    Raises:
        InvalidInput: it is asked of another model.
    """
    if requested.names is not None and "predict_proba" in requested.names and \
            not model.signature.is_classifier:
        raise InvalidInput("Output 'predict_proba' needs a classifier; this model is a "
                           f"{model.signature.task} model.")


def output_tensors(prediction: Prediction, requested: Requested
                   ) -> list[tuple[str, str, list[int], np.ndarray]]:
    """The outputs asked for, as ``(name, datatype, shape, values)``, values flattened."""
    labels = prediction.labels
    tensors: list[tuple[str, str, list[int], np.ndarray]] = []
    if requested.wants("predict"):
        tensors.append(("predict", _array_datatype(labels), [len(labels)], labels))
    proba = prediction.proba
    if proba is not None and requested.wants("predict_proba"):
        tensors.append(("predict_proba", "FP32" if proba.dtype == np.float32 else "FP64",
                        list(proba.shape), np.ascontiguousarray(proba).ravel()))
    return tensors

