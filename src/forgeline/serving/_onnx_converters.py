"""The converters :mod:`forgeline.serving.onnx` adds to skl2onnx (see its docstring):
Forgeline's own transformers, the scikit-learn parts whose skl2onnx converters lack
something or differ from scikit-learn, and float64 thresholds for tree ensembles.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any

import numpy as np

from forgeline.packaging.transformers import AsText, Categories, DatetimeParts

__all__ = ["register_converters"]

_REGISTER_LOCK = threading.Lock()
_registered = False


def register_converters() -> None:
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
    _split_categories_in_hist_trees()
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


def _split_categories_in_hist_trees() -> None:
    """HistGradientBoosting's splits on categories, which skl2onnx writes as thresholds.

    A categorical node sends a row left when its category is in the node's set (a bitset
    of raw category values) and a missing value the way ``missing_go_to_left`` says. ONNX
    trees compare one value per node, so the node becomes a chain of ``BRANCH_EQ`` nodes,
    one per category in the set: equal goes left, otherwise on to the next, and after the
    last one right; a missing value goes left at the first node or passes every node to
    the right. Trees without categorical nodes are written by skl2onnx's own function.
    """
    from skl2onnx.common.tree_ensemble import add_node
    from skl2onnx.operator_converters import random_forest

    plain = random_forest.add_tree_to_attribute_pairs_hist_gradient_boosting
    if getattr(plain, "_forgeline", False):
        return

    def add_tree(attr_pairs: Any, is_classifier: bool, tree: Any, tree_id: int,
                 tree_weight: float, weight_id_bias: int, leaf_weights_are_counts: bool,
                 adjust_threshold_for_sklearn: bool = False, dtype: Any = None) -> None:
        nodes = tree.nodes
        if not nodes["is_categorical"].any():
            plain(attr_pairs, is_classifier, tree, tree_id, tree_weight, weight_id_bias,
                  leaf_weights_are_counts, adjust_threshold_for_sklearn, dtype=dtype)
            return
        bits = np.unpackbits(tree.raw_left_cat_bitsets.view(np.uint8), axis=1,
                             bitorder="little")  # row: bit c set = category c goes left
        fresh = len(nodes)  # ids for the chains' extra nodes

        def node(node_id: int, feature: int, mode: str, value: float, left: int,
                 right: int, weights: Any, missing_left: bool) -> None:
            add_node(attr_pairs, is_classifier, tree_id, tree_weight, node_id, feature,
                     mode, value, left, right, weights, weight_id_bias,
                     leaf_weights_are_counts, adjust_threshold_for_sklearn and
                     mode == "BRANCH_LEQ", dtype, int(missing_left))

        for i, n in enumerate(nodes):
            if n["is_leaf"]:
                node(i, 0, "LEAF", 0.0, 0, 0, n["value"], False)
            elif not n["is_categorical"]:
                node(i, int(n["feature_idx"]), "BRANCH_LEQ", float(n["num_threshold"]),
                     int(n["left"]), int(n["right"]), n["value"],
                     bool(n["missing_go_to_left"]))
            else:
                going_left = np.flatnonzero(bits[n["bitset_idx"]])
                ids = [i, *range(fresh, fresh + len(going_left) - 1)]
                fresh += len(going_left) - 1
                for k, category in enumerate(going_left):
                    after = ids[k + 1] if k + 1 < len(ids) else int(n["right"])
                    node(ids[k], int(n["feature_idx"]), "BRANCH_EQ", float(category),
                         int(n["left"]), after, n["value"],
                         k == 0 and bool(n["missing_go_to_left"]))

    add_tree._forgeline = True  # type: ignore[attr-defined]
    random_forest.add_tree_to_attribute_pairs_hist_gradient_boosting = add_tree


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
    parts = len(operator.raw_operator.parts)
    operator.outputs[0].type = DoubleTensorType([None, None if width is None
                                                 else width * parts])


def _convert_datetime(scope: Any, operator: Any, container: Any) -> None:
    """Seconds since the epoch (float64, NaN: missing) -> the six calendar parts, and the
    days elapsed since the epoch when the transformer has them."""
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
    calendar = [g.op("Cast", part, to=TensorProto.DOUBLE)
                for part in (year, month, day, weekday, hour, weekend)]
    if len(operator.raw_operator.parts) > len(calendar):  # the days elapsed, fractional
        calendar.append(g.op("Div", seconds, g.const(86400.0, f64)))
    parts = [g.op("Reshape", g.op("Where", missing, nan, part), shape3) for part in calendar]
    g.op("Reshape", g.op("Concat", *parts, axis=2), i([-1, width * len(calendar)]),
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
