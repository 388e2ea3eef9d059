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
- ``DatetimeParts``: seconds since the epoch in, year, month, day, weekday, hour and the
  weekend flag out, by integer arithmetic (days -> civil date, H. Hinnant's algorithm).
- ``SimpleImputer`` with ``add_indicator``; ``OneHotEncoder`` with infrequent categories
  and unknown values; ``TargetEncoder`` (multiclass too, float64 encodings); TF-IDF's
  sublinear ``1 + log(tf)`` (skl2onnx writes ``log(1 + tf)``).
- trees (HistGradientBoosting, RandomForest, LightGBM): thresholds kept in float64
  (``*_as_tensor``) so that a value equal to a threshold goes the way scikit-learn sends
  it; RandomForest's input rounded to float32 first, as scikit-learn's trees do.

Whatever converts is still served only after :func:`~forgeline.serving.runtime.
select_runtime` has compared it with the native pipeline on a sample.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import inspect
import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgeline.errors import InvalidInput
from forgeline.packaging._coerce import column_values
from forgeline.packaging.package import MODEL_FILE
from forgeline.packaging.predictor import Predictor
from forgeline.serving.runtime import Prediction, Runtime
from forgeline.training.features import MISSING, AsText, Categories, DatetimeParts

__all__ = ["CACHE_DIR", "NotConvertible", "OnnxRuntime", "convert", "load_onnx_runtime"]

log = logging.getLogger("forgeline.serving")

CACHE_DIR = ".onnx-cache"  # inside the package directory; not listed in its manifest
_CONVERTER_VERSION = 2  # bump when the graphs this module writes change
_INPUTS_KEY = "forgeline.inputs"  # metadata: [[input name, [model column, ...]], ...]
_NUMBERS, _STRINGS = "numbers", "strings"  # the graph's inputs
_NUMBER, _CATEGORY, _DATETIME = "number", "category", "datetime"
_TEXT, _LOWER_TEXT = "text", "lower-text"  # lower-text: the vectorizer lowercases
_NUMERIC_MODES = (_NUMBER, _DATETIME)
_PARTS = 6  # DatetimeParts: year, month, day, day of week, hour, weekend
_REGISTER_LOCK = threading.Lock()
_registered = False


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
        import onnxruntime as ort

        self.signature = predictor.signature
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # the server batches requests; one core per call
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 4  # failures raise; the log would repeat them
        self._session = ort.InferenceSession(onnx_bytes, options,
                                             providers=["CPUExecutionProvider"])
        layout = json.loads(self._session.get_modelmeta().custom_metadata_map[_INPUTS_KEY])
        modes = _input_modes(predictor.model, predictor.signature)
        position = {name: i for i, name in enumerate(self.signature.names)}
        self._inputs = []
        for name, columns in layout:
            feeders = [(position[c], _FEEDERS[modes[c]]) for c in columns]
            plain = all(modes[c] == _NUMBER for c in columns)  # numbers as they come
            if plain and columns == self.signature.names:
                plain = "frame"  # the frame is this block: DataFrame.to_numpy, ~2 us
            self._inputs.append((name, np.float64 if name == _NUMBERS else object, feeders,
                                 plain))
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
        feed = {name: _block(frame, dtype, feeders, plain)
                for name, dtype, feeders, plain in self._inputs}
        result = np.asarray(self._session.run(self._outputs, feed)[0], dtype=np.float64)
        if self._classes is not None:
            return Prediction(self._classes[result.argmax(axis=1)], result)
        return Prediction(result.reshape(-1), None)


def _block(frame: pd.DataFrame, dtype: Any, feeders: list[tuple[int, Any]],
           plain: bool | str) -> np.ndarray:
    """One graph input: the given columns of ``frame``, side by side."""
    if plain == "frame":
        try:
            return frame.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            pass
    if plain:  # one numpy call for numeric columns (a loop costs ~1 us per column)
        try:
            return np.ascontiguousarray(np.array(
                [column_values(frame, i) for i, _ in feeders], dtype=np.float64).T)
        except (TypeError, ValueError):  # an extension array numpy cannot take as is
            pass
    block = np.empty((len(frame), len(feeders)), dtype=dtype)
    for j, (i, feeder) in enumerate(feeders):
        block[:, j] = feeder(column_values(frame, i))
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
    path = _cache_path(predictor)
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
        _write_cache(path, onnx_bytes)
    return runtime


def convert(predictor: Predictor) -> bytes:
    """The whole pipeline as a serialised ONNX model.

    Raises:
        NotConvertible: a converter is missing for some step, or conversion failed.
    """
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
    except ImportError as e:
        raise NotConvertible(f"the ONNX converters are not installed ({e.name}).",
                             hint="pip install 'forgeline[onnx]'") from e
    _register_converters()
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
    # Text arrives lowercased by Python (see _input_modes): ONNX Runtime's lowercasing
    # needs an installed locale, which slim images lack, and knows less of Unicode.
    options: dict[int, dict[str, Any]] = {id(v): {"locale": "C"} for v in _vectorizers(model)}
    if signature.is_classifier:
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

    found, todo = [], [model]
    while todo:
        part = todo.pop()
        if isinstance(part, CountVectorizer):  # TfidfVectorizer is one
            found.append(part)
        todo += [step for _, step in getattr(part, "steps", ())]
        todo += [step for _, step, _ in getattr(part, "transformers_", ())]
    return found


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


def _epoch_seconds(values: Any) -> np.ndarray:
    """Whole seconds since 1970-01-01 UTC (floor), as float64; NaN where missing."""
    if not (isinstance(values, np.ndarray) and values.dtype.kind == "M"):
        series = pd.Series(values, copy=False)
        if not pd.api.types.is_datetime64_any_dtype(series.dtype):
            series = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
        if getattr(series.dtype, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        values = series.to_numpy(dtype="datetime64[ns]")
    seconds = values.astype("datetime64[s]")  # numpy floors towards minus infinity
    out = seconds.astype(np.int64).astype(np.float64)
    out[np.isnat(seconds)] = np.nan
    return out


_FEEDERS = {_NUMBER: _numbers, _CATEGORY: lambda v: _strings(v, MISSING),
            _TEXT: lambda v: _strings(v, ""), _LOWER_TEXT: lambda v: _strings(v, "", True),
            _DATETIME: _epoch_seconds}


# -- cache ------------------------------------------------------------------------------
def _cache_path(predictor: Predictor) -> Path | None:
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
    return Path(predictor.path) / CACHE_DIR / f"{key}.onnx"


def _write_cache(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(exist_ok=True)
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as e:  # a read-only package: keep the graph in memory only
        log.info("not caching the ONNX model at %s: %s", path, e)
        tmp.unlink(missing_ok=True)


# -- converters -------------------------------------------------------------------------
def _register_converters() -> None:
    global _registered
    with _REGISTER_LOCK:
        if _registered:
            return
        from skl2onnx import update_registered_converter
        from skl2onnx.common._registration import get_shape_calculator
        from sklearn.feature_extraction.text import TfidfTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import OneHotEncoder, TargetEncoder

        update_registered_converter(Categories, "ForgelineCategories", _same_shape,
                                    _convert_identity)
        update_registered_converter(AsText, "ForgelineAsText", _same_shape,
                                    _convert_identity)
        update_registered_converter(DatetimeParts, "ForgelineDatetimeParts",
                                    _datetime_shape, _convert_datetime)
        update_registered_converter(SimpleImputer, "SklearnSimpleImputer", _imputer_shape,
                                    _convert_imputer)
        update_registered_converter(TfidfTransformer, "SklearnTfidfTransformer",
                                    get_shape_calculator("SklearnTfidfTransformer"),
                                    _convert_tfidf, options={"nan": [True, False]})
        update_registered_converter(OneHotEncoder, "SklearnOneHotEncoder",
                                    _one_hot_shape, _convert_one_hot)
        update_registered_converter(TargetEncoder, "SklearnTargetEncoder",
                                    _target_encoder_shape, _convert_target_encoder)
        _register_tree_converters()
        _registered = True


def _register_tree_converters() -> None:
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes as classifier_shape,
    )
    from skl2onnx.common.shape_calculator import (
        calculate_linear_regressor_output_shapes as regressor_shape,
    )
    from skl2onnx.operator_converters.random_forest import (
        convert_sklearn_random_forest_classifier as classifier,
    )
    from skl2onnx.operator_converters.random_forest import (
        convert_sklearn_random_forest_regressor_converter as regressor,
    )
    from sklearn import ensemble

    classes = {"zipmap": [True, False, "columns"], "raw_scores": [True, False],
               "nocl": [True, False], "output_class_labels": [False, True]}
    paths = {"decision_path": [True, False], "decision_leaf": [True, False]}
    for model, function, shape, options, float32_inputs in (
            (ensemble.HistGradientBoostingClassifier, classifier, classifier_shape, classes,
             False),
            (ensemble.HistGradientBoostingRegressor, regressor, regressor_shape, None, False),
            (ensemble.RandomForestClassifier, classifier, classifier_shape,
             {**classes, **paths}, True),
            (ensemble.RandomForestRegressor, regressor, regressor_shape, paths, True)):
        _wrap_tree_converter(model, f"Sklearn{model.__name__}", function, shape, options,
                             float32_inputs)
    try:
        import lightgbm
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import (
            convert_lightgbm,
        )
    except ImportError:
        return
    _wrap_tree_converter(lightgbm.LGBMClassifier, "LightGbmLGBMClassifier", convert_lightgbm,
                         classifier_shape, {"nocl": [True, False],
                                            "zipmap": [True, False, "columns"]})
    _wrap_tree_converter(lightgbm.LGBMRegressor, "LightGbmLGBMRegressor", convert_lightgbm,
                         regressor_shape, {"split": None})


class _TreeContainer:
    """The container a tree converter writes into, made to reproduce scikit-learn exactly.

    - numpy integers and booleans in list attributes become ints (scikit-learn 1.6+ keeps
      HistGradientBoosting node ids as uint32 and flags as bool; ``onnx.helper`` refuses
      them in a list of mixed types);
    - on float64 input, thresholds and weights go into the ``*_as_tensor`` double
      attributes instead of float32 ones: a value equal to a threshold (an integer
      feature, a category's encoding) then goes the same way as in scikit-learn;
    - ``float32_inputs``: the input is rounded to float32 first, as RandomForest does.
    """

    _DOUBLE = ("nodes_values", "base_values", "target_weights", "class_weights")

    def __init__(self, container: Any, scope: Any, double: bool,
                 float32_inputs: bool) -> None:
        self._container, self._scope = container, scope
        self._double, self._float32_inputs = double, float32_inputs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def add_node(self, op_type: str, inputs: Any, outputs: Any, **attrs: Any) -> Any:
        from onnx import TensorProto, numpy_helper

        for key, value in attrs.items():
            if isinstance(value, list):
                attrs[key] = [int(v) if isinstance(v, np.integer | np.bool_ | bool) else v
                              for v in value]
        if self._double and op_type.startswith("TreeEnsemble"):
            for key in self._DOUBLE:
                if key in attrs:
                    attrs[f"{key}_as_tensor"] = numpy_helper.from_array(
                        np.asarray(attrs.pop(key), dtype=np.float64).ravel())
            attrs["op_version"] = 3
            if self._float32_inputs:
                g = _Graph(self._scope, self._container)
                inputs = g.op("Cast", g.op("Cast", inputs if isinstance(inputs, str)
                                           else inputs[0], to=TensorProto.FLOAT),
                              to=TensorProto.DOUBLE)
        return self._container.add_node(op_type, inputs, outputs, **attrs)


def _wrap_tree_converter(model: Any, alias: str, function: Any, shape: Any,
                         options: Any, float32_inputs: bool = False) -> None:
    """Register ``function`` for ``model`` through a :class:`_TreeContainer`."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    def calculate(operator: Any) -> None:
        shape(operator)
        for variable in operator.outputs:  # ONNX Runtime's tree ops answer float32
            if isinstance(variable.type, DoubleTensorType):
                variable.type = FloatTensorType(variable.type.shape)

    def convert(scope: Any, operator: Any, container: Any) -> None:
        double = isinstance(operator.inputs[0].type, DoubleTensorType)
        wrapped = _TreeContainer(container, scope, double, float32_inputs)
        if double and "op_version" in inspect.signature(function).parameters:
            function(scope, operator, wrapped, op_version=3)  # keeps float64 thresholds
        else:
            function(scope, operator, wrapped)

    update_registered_converter(model, alias, calculate, convert, options=options)


class _Graph:
    """A few lines of ONNX inside a converter: constants and nodes with fresh names."""

    def __init__(self, scope: Any, container: Any) -> None:
        self.scope, self.container = scope, container

    def const(self, value: Any, dtype: Any) -> str:
        from onnx.helper import np_dtype_to_tensor_dtype

        array = np.asarray(value, dtype=dtype)
        name = self.scope.get_unique_variable_name("const")
        self.container.add_initializer(name, np_dtype_to_tensor_dtype(array.dtype),
                                       list(array.shape), array.ravel().tolist())
        return name

    def op(self, op_type: str, *inputs: str, out: str | None = None,
           domain: str | None = None, version: int | None = None, **attrs: Any) -> str:
        out = out or self.scope.get_unique_variable_name(op_type.lower())
        extra = {"op_domain": domain, "op_version": version} if domain else {}
        self.container.add_node(op_type, list(inputs), [out], **extra,
                                name=self.scope.get_unique_operator_name(op_type), **attrs)
        return out


def _width(operator: Any) -> int | None:
    widths = [v.type.shape[1] if len(v.type.shape) > 1 else 1 for v in operator.inputs]
    return None if any(w is None for w in widths) else sum(widths)


def _joined(scope: Any, operator: Any, container: Any) -> str:
    from skl2onnx.operator_converters.common import concatenate_variables

    return concatenate_variables(scope, operator.inputs, container)


def _same_shape(operator: Any) -> None:
    operator.outputs[0].type = operator.inputs[0].type.__class__([None, _width(operator)])


def _convert_identity(scope: Any, operator: Any, container: Any) -> None:
    _Graph(scope, container).op("Identity", _joined(scope, operator, container),
                                out=operator.outputs[0].full_name)


def _datetime_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType

    width = _width(operator)
    operator.outputs[0].type = DoubleTensorType([None, None if width is None
                                                 else width * _PARTS])


def _convert_datetime(scope: Any, operator: Any, container: Any) -> None:
    """Seconds since the epoch (float64, NaN: missing) -> the six calendar parts."""
    from onnx import TensorProto

    g = _Graph(scope, container)
    f64, i64 = np.float64, np.int64

    def i(value: int) -> str:
        return g.const(value, i64)

    def div(a: str, b: int) -> str:  # integer division; every operand here is >= 0
        return g.op("Div", a, i(b))

    x = _joined(scope, operator, container)
    missing = g.op("IsNaN", x)
    seconds = g.op("Where", missing, g.const(0.0, f64), x)
    days_f = g.op("Floor", g.op("Div", seconds, g.const(86400.0, f64)))
    of_day = g.op("Sub", seconds, g.op("Mul", days_f, g.const(86400.0, f64)))
    hour = g.op("Floor", g.op("Div", of_day, g.const(3600.0, f64)))
    days = g.op("Cast", days_f, to=TensorProto.INT64)
    z = g.op("Add", days, i(719468))  # days since 0000-03-01
    era = div(z, 146097)
    doe = g.op("Sub", z, g.op("Mul", era, i(146097)))
    yoe = div(g.op("Sub", g.op("Add", g.op("Sub", doe, div(doe, 1460)), div(doe, 36524)),
                   div(doe, 146096)), 365)
    doy = g.op("Sub", doe, g.op("Add", g.op("Mul", yoe, i(365)),
                                g.op("Sub", div(yoe, 4), div(yoe, 100))))
    mp = div(g.op("Add", g.op("Mul", doy, i(5)), i(2)), 153)
    day = g.op("Add", g.op("Sub", doy, div(g.op("Add", g.op("Mul", mp, i(153)), i(2)), 5)),
               i(1))
    month = g.op("Where", g.op("Less", mp, i(10)), g.op("Add", mp, i(3)),
                 g.op("Sub", mp, i(9)))
    year = g.op("Add", g.op("Add", yoe, g.op("Mul", era, i(400))),
                g.op("Cast", g.op("LessOrEqual", month, i(2)), to=TensorProto.INT64))
    weekday = g.op("Mod", g.op("Add", days, i(3)), i(7))  # 1970-01-01 was a Thursday
    weekend = g.op("Cast", g.op("GreaterOrEqual", weekday, i(5)), to=TensorProto.INT64)
    width = len(operator.raw_operator.columns_)  # -1 cannot stand for 0 rows: use widths
    nan, shape3 = g.const(np.nan, f64), i([-1, width, 1])
    parts = [g.op("Reshape", g.op("Where", missing, nan, g.op(
        "Cast", part, to=TensorProto.DOUBLE)), shape3)
        for part in (year, month, day, weekday, hour, weekend)]
    g.op("Reshape", g.op("Concat", *parts, axis=2), i([-1, width * _PARTS]),
         out=operator.outputs[0].full_name)


def _imputer_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import StringTensorType
    from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes

    if isinstance(operator.inputs[0].type, StringTensorType):
        calculate_sklearn_imputer_output_shapes(operator)
        return
    op = operator.raw_operator
    stats = np.asarray(op.statistics_, dtype=np.float64)
    kept = len(stats) if op.keep_empty_features else int((~np.isnan(stats)).sum())
    flags = len(op.indicator_.features_) if op.add_indicator else 0
    operator.outputs[0].type = operator.inputs[0].type.__class__([None, kept + flags])


def _convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    """SimpleImputer on numbers, ``add_indicator`` included."""
    from onnx.helper import np_dtype_to_tensor_dtype
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer

    op = operator.raw_operator
    if isinstance(operator.inputs[0].type, StringTensorType):
        if op.add_indicator:
            raise NotImplementedError("SimpleImputer(add_indicator=True) on strings")
        convert_sklearn_imputer(scope, operator, container)
        return
    g = _Graph(scope, container)
    dtype = np.float64 if isinstance(operator.inputs[0].type, DoubleTensorType) else np.float32
    x = _joined(scope, operator, container)
    marker = op.missing_values
    if isinstance(marker, float) and np.isnan(marker):
        mask = g.op("IsNaN", x)
    elif isinstance(marker, int | float):
        mask = g.op("Equal", x, g.const(marker, dtype))
    else:
        raise NotImplementedError(f"SimpleImputer(missing_values={marker!r})")
    stats = np.asarray(op.statistics_, dtype=np.float64)
    filled = g.op("Where", mask, g.const(stats.astype(dtype), dtype), x)
    kept = np.flatnonzero(~np.isnan(stats))
    if not op.keep_empty_features and len(kept) < len(stats):
        filled = g.op("Gather", filled, g.const(kept, np.int64), axis=1)
    pieces = [filled]
    if op.add_indicator and len(op.indicator_.features_):
        flags = g.op("Gather", mask, g.const(op.indicator_.features_, np.int64), axis=1)
        pieces.append(g.op("Cast", flags, to=np_dtype_to_tensor_dtype(np.dtype(dtype))))
    g.op("Concat" if len(pieces) > 1 else "Identity", *pieces,
         out=operator.outputs[0].full_name, **({"axis": 1} if len(pieces) > 1 else {}))


def _target_outputs(op: Any) -> int:
    return len(op.classes_) if op.target_type_ == "multiclass" else 1


def _target_encoder_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType

    op = operator.raw_operator
    operator.outputs[0].type = DoubleTensorType([None, len(op.categories_) *
                                                 _target_outputs(op)])


def _convert_target_encoder(scope: Any, operator: Any, container: Any) -> None:
    """TargetEncoder on strings: one LabelEncoder per feature (and class, if multiclass).

    The LabelEncoder gives each category its position; the float64 encodings are then
    gathered from a table, which keeps scikit-learn's precision (LabelEncoder's own
    values are float32 until ai.onnx.ml 4, which skl2onnx does not write yet).
    """
    from skl2onnx.common.data_types import StringTensorType

    op = operator.raw_operator
    if not isinstance(operator.inputs[0].type, StringTensorType):
        raise NotImplementedError("TargetEncoder on non-string categories")
    g = _Graph(scope, container)
    x = _joined(scope, operator, container)
    per_feature = _target_outputs(op)
    means = np.atleast_1d(np.asarray(op.target_mean_, dtype=np.float64))
    columns = []
    for i, categories in enumerate(op.categories_):
        column = g.op("Gather", x, g.const([i], np.int64), axis=1)
        keys = [str(c) for c in categories]
        position = g.op("LabelEncoder", column, domain="ai.onnx.ml", version=2,
                        keys_strings=keys, values_int64s=list(range(len(keys))),
                        default_int64=len(keys))  # unseen: the last entry, the mean
        for j in range(per_feature):
            table = np.append(np.asarray(op.encodings_[i * per_feature + j], np.float64),
                              means[j])
            columns.append(g.op("Gather", g.const(table, np.float64), position))
    g.op("Concat", *columns, axis=1, out=operator.outputs[0].full_name)


def _one_hot_width(op: Any, i: int) -> int:
    return len(op._compute_transformed_categories(i))


def _one_hot_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
    from skl2onnx.shape_calculators.one_hot_encoder import (
        calculate_sklearn_one_hot_encoder_output_shapes,
    )

    if not isinstance(operator.inputs[0].type, StringTensorType):
        calculate_sklearn_one_hot_encoder_output_shapes(operator)
        return
    op = operator.raw_operator
    width = sum(_one_hot_width(op, i) for i in range(len(op.categories_)))
    operator.outputs[0].type = DoubleTensorType([None, width])


def _convert_one_hot(scope: Any, operator: Any, container: Any) -> None:
    """OneHotEncoder on strings, infrequent categories and unknown values as scikit-learn.

    Each category gets its output column (infrequent ones share the last); an unseen value
    goes to the infrequent column where ``handle_unknown="infrequent_if_exist"`` and one
    exists, else to no column (all zeros).
    """
    from onnx import TensorProto
    from skl2onnx.common.data_types import StringTensorType
    from skl2onnx.operator_converters.one_hot_encoder import convert_sklearn_one_hot_encoder

    op = operator.raw_operator
    if not isinstance(operator.inputs[0].type, StringTensorType):
        convert_sklearn_one_hot_encoder(scope, operator, container)
        return
    if op.handle_unknown == "error" or getattr(op, "drop_idx_", None) is not None:
        raise NotImplementedError("OneHotEncoder with drop or handle_unknown='error'")
    g = _Graph(scope, container)
    x = _joined(scope, operator, container)
    mappings = getattr(op, "_default_to_infrequent_mappings", None) or [None] * len(
        op.categories_)
    columns = []
    for i, categories in enumerate(op.categories_):
        width = _one_hot_width(op, i)
        if width == 0:
            continue
        mapping = mappings[i]
        positions = np.arange(len(categories)) if mapping is None else np.asarray(mapping)
        unknown = width - 1 if (mapping is not None and op.handle_unknown ==
                                "infrequent_if_exist") else -1
        position = g.op("LabelEncoder", g.op("Gather", x, g.const([i], np.int64), axis=1),
                        domain="ai.onnx.ml", version=2,
                        keys_strings=[str(c) for c in categories],
                        values_int64s=[int(p) for p in positions], default_int64=unknown)
        hot = g.op("Equal", position, g.const(np.arange(width), np.int64))
        columns.append(g.op("Cast", hot, to=TensorProto.DOUBLE))
    g.op("Concat" if len(columns) > 1 else "Identity", *columns,
         out=operator.outputs[0].full_name, **({"axis": 1} if len(columns) > 1 else {}))


def _convert_tfidf(scope: Any, operator: Any, container: Any) -> None:
    """TF-IDF weighting of counts: ``1 + log(tf)`` when sublinear (skl2onnx writes
    ``log(1 + tf)``), times idf, then the row norm (rows of zeros stay zeros)."""
    from onnx.helper import tensor_dtype_to_np_dtype
    from skl2onnx.common.data_types import guess_proto_type

    op = operator.raw_operator
    if container.get_options(op, {"nan": False}).get("nan"):
        raise NotImplementedError("TfidfTransformer with the 'nan' option")
    g = _Graph(scope, container)
    dtype = tensor_dtype_to_np_dtype(guess_proto_type(operator.inputs[0].type))
    x = operator.inputs[0].full_name
    zero, one = g.const(0, dtype), g.const(1, dtype)
    if op.sublinear_tf:
        x = g.op("Where", g.op("Greater", x, zero), g.op("Add", g.op("Log", x), one), x)
    if op.use_idf:
        x = g.op("Mul", x, g.const(op.idf_, dtype))
    if op.norm in ("l1", "l2"):
        norm = (g.op("Sqrt", g.op("ReduceSumSquare", x, axes=[1], keepdims=1))
                if op.norm == "l2" else g.op("ReduceL1", x, axes=[1], keepdims=1))
        x = g.op("Div", x, g.op("Where", g.op("Equal", norm, zero), one, norm))
    g.op("Identity", x, out=operator.outputs[0].full_name)
