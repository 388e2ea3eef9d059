"""Explanations on the model server: the ``explain`` switch of ``/predict`` and the answer.

The explaining itself is :mod:`forgeline.packaging.explain`; a served model builds its
explainer on the first request that asks (:meth:`ServedModel.explain`, with
:func:`build_explainer`), so plain predictions never pay for it. A served explainer
preprocesses rows through ONNX Runtime where that reproduces scikit-learn's matrix exactly
(:mod:`forgeline.serving.onnx_features`), which takes a single row from 10-25 ms to about
0.1; each answer's ``preprocessing`` says which was used. Explanations are of the native
model: with the ONNX runtime serving, contributions add up to the native model's output,
which the ONNX one matches to the tolerance the runtime was checked against.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from forgeline.errors import InvalidInput
from forgeline.serving.payload import kind_of

if TYPE_CHECKING:
    from forgeline.packaging.explain import Explainer, Explanation
    from forgeline.packaging.predictor import Predictor

__all__ = ["TOP_REASONS", "build_explainer", "explain_flag", "explanation_payload"]

log = logging.getLogger("forgeline.serving")

TOP_REASONS = 3


def build_explainer(predictor: Predictor, label: str) -> Explainer:
    """The explainer of a served model: its preprocessing through ONNX Runtime where that
    reproduces scikit-learn's exactly (:mod:`forgeline.serving.onnx_features`; one row in
    ~0.1 ms instead of 10-25), else scikit-learn's; the log says which and why.

    Raises:
        NotExplainable: a model Forgeline cannot explain.
    """
    from forgeline.packaging.explain import Explainer

    explainer = Explainer(predictor)  # refuses what it cannot explain before converting
    if explainer.reads_matrix:
        from forgeline.serving.onnx_features import onnx_features

        features, detail = onnx_features(predictor)
        if features is not None:
            explainer.use_preprocessing(features.transform, "onnxruntime")
        log.info("explaining %s with %s (preprocessing %s)", label, explainer.method, detail)
    return explainer


def explain_flag(body: Any) -> bool:
    """Whether a ``/predict`` body asks for explanations (``"explain": true``).

    Raises:
        InvalidInput: ``explain`` is there but not a boolean.
    """
    value = body.get("explain", False) if isinstance(body, Mapping) else False
    if not isinstance(value, bool):
        raise InvalidInput(f'"explain" must be true or false, got {kind_of(value)}.',
                           hint='Send "explain": true to get explanations with predictions.')
    return value


def explanation_payload(explanation: Explanation) -> dict[str, Any]:
    """The JSON part of an answer that explains: units, method and one entry per row."""
    return {"units": explanation.units, "method": explanation.method,
            "preprocessing": explanation.preprocessing,
            "explanations": explanation.records(TOP_REASONS)}
