"""skl2onnx converters for estimators that carry their own ONNX graph (the PyTorch MLP of
``training/mlp.py``, float32 or int8).

Such an estimator keeps ``onnx_model_``: a serialised ONNX model with one float32 input
(rows x the preprocessor's columns) and one output, the class probabilities in
``classes_`` order (classifiers) or the values as rows x 1 (regressors). Its graph is
inlined after the preprocessing graph: a Cast to float32, then its nodes and
initializers under fresh names, then the outputs skl2onnx expects (the label is the
argmax's class). Serving does not import training (stages never import each other), so
the converter is registered for the estimator's type when :func:`register_stored_graph`
meets one, recognised by the attribute.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

__all__ = ["carries_graph", "register_stored_graph"]

_LOCK = threading.Lock()
_registered: set[type] = set()


def carries_graph(estimator: Any) -> bool:
    return isinstance(getattr(estimator, "onnx_model_", None), bytes)


def register_stored_graph(estimator: Any) -> None:
    """Register the converter for ``type(estimator)`` when it carries its own graph."""
    if not carries_graph(estimator):
        return
    kind = type(estimator)
    with _LOCK:
        if kind in _registered:
            return
        from skl2onnx import update_registered_converter
        from skl2onnx.common.shape_calculator import (
            calculate_linear_classifier_output_shapes,
            calculate_linear_regressor_output_shapes,
        )

        if hasattr(estimator, "classes_"):
            update_registered_converter(kind, f"Forgeline{kind.__name__}",
                                        calculate_linear_classifier_output_shapes, _convert,
                                        options={"zipmap": [True, False, "columns"],
                                                 "nocl": [True, False]})
        else:
            update_registered_converter(kind, f"Forgeline{kind.__name__}",
                                        calculate_linear_regressor_output_shapes, _convert)
        _registered.add(kind)


def _convert(scope: Any, operator: Any, container: Any) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    estimator = operator.raw_operator
    model = onnx.load_from_string(estimator.onnx_model_)
    graph = model.graph
    versions = {entry.domain: entry.version for entry in model.opset_import}
    features = scope.get_unique_variable_name("stored_graph_input")
    container.add_node("Cast", [operator.inputs[0].full_name], [features],
                       to=TensorProto.FLOAT, name=scope.get_unique_operator_name("Cast"))
    renamed = {graph.input[0].name: features}

    def name(original: str) -> str:
        if not original:  # an optional input left out
            return ""
        if original not in renamed:
            renamed[original] = scope.get_unique_variable_name(f"stored_{original}")
        return renamed[original]

    for tensor in graph.initializer:
        values = numpy_helper.to_array(tensor)
        container.add_initializer(name(tensor.name), tensor.data_type, list(tensor.dims),
                                  numpy_helper.from_array(values, name(tensor.name)))
    for node in graph.node:
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        inputs = [name(i) for i in node.input]
        while inputs and not inputs[-1]:  # optional inputs left out at the end (Clip's
            inputs.pop()  # max): skl2onnx's ordering takes "" for a tensor no node makes
        container.add_node(node.op_type, inputs,
                           [name(o) for o in node.output], op_domain=node.domain,
                           op_version=versions.get(node.domain or "", versions.get("")),
                           name=scope.get_unique_operator_name(f"stored_{node.op_type}"),
                           **attributes)
    result = name(graph.output[0].name)
    # the output skl2onnx declared (float64 for a regressor fed float64): cast to its type
    output = operator.outputs[0 if not hasattr(estimator, "classes_") else 1]
    container.add_node("Cast", [result], [output.full_name],
                       to=output.type.to_onnx_type().tensor_type.elem_type,
                       name=scope.get_unique_operator_name("Cast"))
    if not hasattr(estimator, "classes_"):
        return
    index = scope.get_unique_variable_name("stored_argmax")
    container.add_node("ArgMax", [result], [index], axis=1, keepdims=0,
                       name=scope.get_unique_operator_name("ArgMax"))
    classes = np.asarray(estimator.classes_)
    table = scope.get_unique_variable_name("stored_classes")
    if classes.dtype.kind in "iub":
        container.add_initializer(table, TensorProto.INT64, [len(classes)],
                                  classes.astype(np.int64).tolist())
    else:
        container.add_initializer(table, TensorProto.STRING, [len(classes)],
                                  [str(c).encode() for c in classes])
    container.add_node("Gather", [table, index], [operator.outputs[0].full_name], axis=0,
                       name=scope.get_unique_operator_name("Gather"))
