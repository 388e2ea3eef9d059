"""ONNX Runtime for Forgeline pipelines: convert the whole pipeline, cache it, serve it.

The fitted pipeline (the ``features`` ColumnTransformer, then the estimator) becomes one
ONNX graph with one input per model column: numbers and dates as float64, categories and
text as strings. skl2onnx converts scikit-learn's parts and onnxmltools' converter
LightGBM; this module adds or replaces the converters where they lack something or
differ from scikit-learn:

- ``Categories``, ``AsText``: :class:`OnnxRuntime` applies their rule while building the
  inputs (missing -> ``"__missing__"`` / ``""``, values -> ``str``; text lowercased when
  the vectoriser lowercases, as ONNX Runtime's lowercasing needs a system locale); in the
  graph they are identities.
- ``DatetimeParts``: seconds since the epoch in, year, month, day, weekday, hour, the
  weekend flag out, by integer arithmetic (days -> civil date, H. Hinnant's algorithm),
  and the days elapsed since the epoch.
- ``SimpleImputer`` with ``add_indicator``; ``OneHotEncoder`` with infrequent categories
  and unknown values; ``TargetEncoder`` (multiclass too, float64 encodings); TF-IDF's
  sublinear ``1 + log(tf)`` (skl2onnx writes ``log(1 + tf)``).
- trees (HistGradientBoosting, RandomForest, LightGBM): thresholds kept in float64
  (``*_as_tensor``) so that a value equal to a threshold goes the way scikit-learn sends
  it; RandomForest's input rounded to float32 first, as scikit-learn's trees do.
- estimators that carry their own ONNX graph (``onnx_model_``: the PyTorch MLP, float32
  or int8): the graph is inlined after the preprocessing (``serving/_onnx_stored.py``).

A text's sentence embedding (``TextEmbeddings``, a transformer network) is not converted:
such a pipeline is served natively, and :class:`NotConvertible` names the column.

The converters live in :mod:`forgeline.serving._onnx_converters`. Whatever converts is
still served only after :func:`~forgeline.serving.runtime.select_runtime` has compared
it with the native pipeline on a sample.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgeline.errors import InvalidInput
from forgeline.packaging.coercion import Part, column_values, rows_of
from forgeline.packaging.embeddings import TextEmbeddings
from forgeline.packaging.llm_features import LLMFeatures
from forgeline.packaging.package import MODEL_FILE, pipeline_parts
from forgeline.packaging.predictor import Predictor
from forgeline.packaging.transformers import MISSING, AsText, Categories, DatetimeParts
from forgeline.serving._onnx_converters import register_converters
from forgeline.serving._onnx_stored import register_stored_graph
from forgeline.serving.runtime_base import Prediction, Runtime
from forgeline.util.files import atomic_write

__all__ = ["CACHE_DIR", "NotConvertible", "OnnxRuntime", "convert", "load_onnx_runtime"]

log = logging.getLogger("forgeline.serving")

CACHE_DIR = ".onnx-cache"  # inside the package directory; not listed in its manifest
_CONVERTER_VERSION = 3  # bump when the graphs this module writes change
_INPUTS_KEY = "forgeline.inputs"  # metadata: [[input name, [model column, ...]], ...]
_NUMBERS, _STRINGS = "numbers", "strings"  # the graph's inputs
_NUMBER, _CATEGORY, _DATETIME = "number", "category", "datetime"
_TEXT, _LOWER_TEXT = "text", "lower-text"  # lower-text: the vectorizer lowercases
_NUMERIC_MODES = (_NUMBER, _DATETIME)


class NotConvertible(InvalidInput):
    """The model cannot be served by ONNX Runtime; the message says why."""


class OnnxRuntime(Runtime):
    """Predictions from an ONNX graph of the whole pipeline (one thread per session).

    Args:
        predictor: the loaded model the graph was converted from.
        onnx_bytes: the serialised ONNX model.
    """

    name = "onnxruntime"

    def __init__(self, predictor: Predictor, onnx_bytes: bytes) -> None:
        self.signature = predictor.signature
        self._session = open_session(onnx_bytes)
        self._inputs = input_plan(self._session, predictor)
        classes = getattr(predictor.model, "classes_", None)
        self._classes = None if classes is None else np.asarray(classes)
        # classifiers: the probabilities only; labels are their argmax, as natively
        outputs = self._session.get_outputs()
        self._outputs = [outputs[1 if self._classes is not None else 0].name]
        self.onnx_bytes = onnx_bytes

    def predict(self, frame: pd.DataFrame) -> Prediction:
        if not len(frame):  # some operators refuse empty tensors
            if self._classes is None:
                return Prediction(np.empty(0, dtype=np.float64), None)
            return Prediction(self._classes[:0], np.empty((0, len(self._classes))))
        result = np.asarray(self._session.run(self._outputs, feed(frame, self._inputs))[0],
                            dtype=np.float64)
        if self._classes is not None:
            return Prediction(self._classes[result.argmax(axis=1)], result)
        return Prediction(result.reshape(-1), None)


def open_session(onnx_bytes: bytes) -> Any:
    """An ONNX Runtime session on one thread (the server batches requests: one core a call)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 4  # failures raise; the log would repeat them
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def input_plan(session: Any, predictor: Predictor) -> list[tuple[str, Any, Any, Any]]:
    """How a graph written by :func:`convert` is fed from a validated frame: per input, its
    name, dtype, ``(column position, feeder)`` pairs and whether its numbers pass as they
    are (see :func:`feed`)."""
    layout = json.loads(session.get_modelmeta().custom_metadata_map[_INPUTS_KEY])
    modes = _input_modes(predictor.model, predictor.signature)
    names = predictor.signature.names
    position = {name: i for i, name in enumerate(names)}
    inputs = []
    for name, columns in layout:
        feeders = [(position[c], _FEEDERS[modes[c]]) for c in columns]
        plain: bool | str = all(modes[c] == _NUMBER for c in columns)  # numbers as they come
        if plain and columns == names:
            plain = "frame"  # the frame is this block: DataFrame.to_numpy, ~2 us
        inputs.append((name, np.float64 if name == _NUMBERS else object, feeders, plain))
    return inputs


def feed(part: Part, inputs: list[tuple[str, Any, Any, Any]]) -> dict[str, Any]:
    """The graph's inputs for a validated frame or its columns (a :data:`Part`), by an
    :func:`input_plan`."""
    return {name: _block(part, dtype, feeders, plain)
            for name, dtype, feeders, plain in inputs}


def _block(part: Part, dtype: Any, feeders: list[tuple[int, Any]],
           plain: bool | str) -> np.ndarray:
    """One graph input: the given columns of ``part``, side by side."""
    if plain == "frame" and isinstance(part, pd.DataFrame):
        try:
            return part.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            pass
    if plain:  # one numpy call for numeric columns (a loop costs ~1 us per column)
        try:
            return np.ascontiguousarray(np.array(
                [column_values(part, i) for i, _ in feeders], dtype=np.float64).T)
        except (TypeError, ValueError):  # an extension array numpy cannot take as is
            pass
    block = np.empty((rows_of(part), len(feeders)), dtype=dtype)
    for j, (i, feeder) in enumerate(feeders):
        block[:, j] = feeder(column_values(part, i))
    return block


def load_onnx_runtime(predictor: Predictor) -> OnnxRuntime:
    """An :class:`OnnxRuntime` for ``predictor``, converting it unless a cached graph exists.

    The graph is cached as ``<package>/.onnx-cache/<key>.onnx``, keyed by the model file's
    sha256 and the converter versions; where the package directory is read-only it stays
    in memory only.

    Raises:
        NotConvertible: the converters are not installed or cannot convert the model.
    """
    try:
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise NotConvertible("ONNX Runtime is not installed.",
                             hint="pip install 'forgeline[onnx]'") from e
    path = cache_path(predictor)
    if path is not None and path.is_file():
        try:
            return OnnxRuntime(predictor, path.read_bytes())
        except Exception as e:  # a damaged cache file: convert again
            log.warning("ignoring the cached ONNX model %s: %s", path, e)
    onnx_bytes = convert(predictor)
    try:
        runtime = OnnxRuntime(predictor, onnx_bytes)
    except Exception as e:  # ONNX Runtime refuses the graph (an operator it lacks)
        raise NotConvertible(f"ONNX Runtime cannot load the converted model: {e}") from e
    if path is not None:
        write_cache(path, onnx_bytes)
    return runtime


def convert(predictor: Predictor, *, features_only: bool = False) -> bytes:
    """The whole pipeline as a serialised ONNX model; with ``features_only``, its
    preprocessing alone (the ColumnTransformer), whose one output is the matrix the
    estimator takes.

    Raises:
        NotConvertible: a converter is missing for some step, or conversion failed.
    """
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
    except ImportError as e:
        raise NotConvertible(f"the ONNX converters are not installed ({e.name}).",
                             hint="pip install 'forgeline[onnx]'") from e
    register_converters()
    model, signature = predictor.model, predictor.signature
    modes = _input_modes(model, signature)
    # Two inputs, whatever the number of columns: per-input overhead dominates one row.
    layout = [(_NUMBERS, [c for c in signature.names if modes.get(c) in _NUMERIC_MODES]),
              (_STRINGS, [c for c in signature.names if c in modes and
                          modes[c] not in _NUMERIC_MODES])]
    layout = [(name, columns) for name, columns in layout if columns]
    kinds = {_NUMBERS: DoubleTensorType, _STRINGS: StringTensorType}
    types = [(name, kinds[name]([None, len(columns)])) for name, columns in layout]
    position = {c: i for i, c in enumerate(c for _, columns in layout for c in columns)}
    estimator = model.steps[-1][1] if hasattr(model, "steps") else model
    register_stored_graph(estimator)  # e.g. the PyTorch MLP: its graph is inlined
    if features_only:
        if not (hasattr(model, "steps") and len(model.steps) > 1):
            raise NotConvertible("the model has no preprocessing step of its own.")
        model = copy.copy(model)
        model.steps = model.steps[:1]
    # Text arrives lowercased by Python (see _input_modes): ONNX Runtime's lowercasing
    # needs an installed locale, which slim images lack, and knows less of Unicode.
    options: dict[int, dict[str, Any]] = {id(v): {"locale": "C"} for v in _vectorizers(model)}
    if signature.is_classifier and not features_only:
        options[id(estimator)] = {"zipmap": False}
    try:
        graph = convert_sklearn(_by_position(model, signature.names, position),
                                initial_types=types, options=options,
                                target_opset={"": 17, "ai.onnx.ml": 3})
    except Exception as e:  # skl2onnx raises many types: every one means "cannot convert"
        message = str(e).strip()[-600:] or type(e).__name__
        raise NotConvertible(f"ONNX conversion failed: {message}") from e
    entry = graph.metadata_props.add()
    entry.key, entry.value = _INPUTS_KEY, json.dumps(layout)
    return graph.SerializeToString()


def _by_position(model: Any, names: list[str], position: dict[str, int]) -> Any:
    """A shallow copy of the pipeline whose ColumnTransformer selects columns by their
    position in the graph's inputs (numbers, then strings) instead of by name."""
    from sklearn.compose import ColumnTransformer

    steps = getattr(model, "steps", None)
    features = steps[0][1] if steps else None
    if not isinstance(features, ColumnTransformer):
        return model  # numbers only, in signature order

    def where(column: Any) -> int:
        return position[names[column] if isinstance(column, int | np.integer) else column]

    selected = copy.copy(features)
    selected.transformers_ = [
        (name, transformer, columns) if isinstance(transformer, str) and
        transformer == "drop" else (name, transformer, where(columns) if isinstance(
            columns, str | int | np.integer) else [where(c) for c in columns])
        for name, transformer, columns in features.transformers_]
    copied = copy.copy(model)
    copied.steps = [(steps[0][0], selected), *steps[1:]]
    return copied


# -- inputs ---------------------------------------------------------------------------
def _input_modes(model: Any, signature: Any) -> dict[str, str]:
    """How each model column enters the graph, from the step that first reads it."""
    from sklearn.compose import ColumnTransformer

    steps = getattr(model, "steps", None)
    features = steps[0][1] if steps else None
    kinds = {c.name: c.kind for c in signature.inputs}
    if not isinstance(features, ColumnTransformer):
        if all(kind == "numeric" for kind in kinds.values()):
            return dict.fromkeys(kinds, _NUMBER)
        raise NotConvertible("the pipeline does not start with a ColumnTransformer and has "
                             "non-numeric inputs.")
    modes: dict[str, str] = {}
    names = signature.names
    for _, transformer, columns in features.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        first = transformer.steps[0][1] if hasattr(transformer, "steps") else transformer
        selected = [columns] if isinstance(columns, str | int) else list(columns)
        if isinstance(first, LLMFeatures):  # an HTTP call per row, no ONNX operator
            raise NotConvertible(f"column {', '.join(map(str, selected))} is asked about by "
                                 f"an LLM ({first.model}), which an ONNX graph cannot call.")
        if isinstance(first, TextEmbeddings):  # a transformer network, not a converter
            raise NotConvertible(f"column {', '.join(map(str, selected))} is encoded by the "
                                 f"sentence-embedding model {first.model}, which has no "
                                 "ONNX converter here.")
        for column in selected:
            column = names[column] if isinstance(column, int | np.integer) else str(column)
            mode = (_CATEGORY if isinstance(first, Categories) else _text_mode(
                transformer) if isinstance(first, AsText) else _DATETIME if isinstance(
                first, DatetimeParts) else {"numeric": _NUMBER}.get(kinds.get(column, ""),
                                                                   _CATEGORY))
            if modes.setdefault(column, mode) != mode:
                raise NotConvertible(f"column {column!r} is read as both {modes[column]} "
                                     f"and {mode}.")
    return modes


def _text_mode(transformer: Any) -> str:
    after = transformer.steps[1][1] if len(getattr(transformer, "steps", ())) > 1 else None
    return _LOWER_TEXT if getattr(after, "lowercase", False) else _TEXT


def _vectorizers(model: Any) -> list[Any]:
    from sklearn.feature_extraction.text import CountVectorizer

    # TfidfVectorizer is a CountVectorizer
    return [part for part in pipeline_parts(model) if isinstance(part, CountVectorizer)]


def _numbers(values: Any) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype.kind in "iufb":
        return values
    return pd.Series(values, copy=False).to_numpy(dtype=np.float64, na_value=np.nan)


def _strings(values: Any, missing: str, lower: bool = False) -> np.ndarray:
    obj = np.asarray(values, dtype=object)
    null = pd.isna(obj)
    out = obj.astype(str)
    if lower:
        out = np.char.lower(out)
    if null.any():
        out = out.astype(object)
        out[null] = missing
    return out


def as_datetime64(values: Any) -> np.ndarray:
    """Datetimes as numpy's naive UTC datetime64 (NaT where missing), in their own unit
    when they are numpy's already, else in nanoseconds."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        return values
    if isinstance(getattr(values, "dtype", None), np.dtype) and values.dtype.kind == "M":
        return np.asarray(values)  # a naive pandas DatetimeArray: its numpy array, ~1 us
    series = pd.Series(values, copy=False)
    if not pd.api.types.is_datetime64_any_dtype(series.dtype):
        series = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
    if getattr(series.dtype, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return series.to_numpy(dtype="datetime64[ns]")


def _epoch_seconds(values: Any) -> np.ndarray:
    """Whole seconds since 1970-01-01 UTC (floor), as float64; NaN where missing."""
    seconds = as_datetime64(values).astype("datetime64[s]")  # floors towards minus infinity
    out = seconds.astype(np.int64).astype(np.float64)
    out[np.isnat(seconds)] = np.nan
    return out


_FEEDERS = {_NUMBER: _numbers, _CATEGORY: lambda v: _strings(v, MISSING),
            _TEXT: lambda v: _strings(v, ""), _LOWER_TEXT: lambda v: _strings(v, "", True),
            _DATETIME: _epoch_seconds}


# -- cache ------------------------------------------------------------------------------
def cache_path(predictor: Predictor, suffix: str = "") -> Path | None:
    digest = predictor.manifest.get("files", {}).get(MODEL_FILE)
    if not digest or predictor.path is None:
        return None
    versions = []
    for dist in ("skl2onnx", "onnxmltools", "onnx"):
        try:
            versions.append(importlib.metadata.version(dist))
        except importlib.metadata.PackageNotFoundError:
            versions.append("-")
    key = hashlib.sha256(f"{digest}|{'|'.join(versions)}|{_CONVERTER_VERSION}".encode()
                         ).hexdigest()[:24]
    return Path(predictor.path) / CACHE_DIR / f"{key}{suffix}.onnx"


def write_cache(path: Path, data: bytes) -> None:
    try:
        atomic_write(path, data)
    except OSError as e:  # a read-only package: keep the graph in memory only
        log.info("not caching the ONNX model at %s: %s", path, e)


# -- converters -------------------------------------------------------------------------
