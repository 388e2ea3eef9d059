"""Explanations on the model server: the ``explain`` switch of ``/predict`` and the answer.

The explaining itself is :mod:`forgeline.packaging.explain`; a served model builds its
explainer on the first request that asks (:meth:`ServedModel.explain`), so plain
predictions never pay for it. Explanations are of the native model: with the ONNX runtime
serving, contributions add up to the native model's output, which the ONNX one matches
to the tolerance the runtime was checked against.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from forgeline.errors import InvalidInput
from forgeline.serving.payload import kind_of

if TYPE_CHECKING:
    from forgeline.packaging.explain import Explanation

__all__ = ["TOP_REASONS", "explain_flag", "explanation_payload"]

TOP_REASONS = 3


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
            "explanations": explanation.records(TOP_REASONS)}
