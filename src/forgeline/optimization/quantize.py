"""Quantization: an int8 copy of a neural model (``forgeline optimize``).

The candidate is the teacher's pipeline with its final estimator replaced by the
estimator's own ``quantized()`` copy (the PyTorch MLP of ``training/mlp.py``: its ONNX
graph with int8 weights, through ONNX Runtime's dynamic quantization). Models without
that method (trees, linear models) give no candidate. The optimize workflow measures the
score, latency and size; nothing is measured or registered here.
"""

from __future__ import annotations

from typing import Any

from forgeline.optimization.candidate import Candidate, with_final
from forgeline.packaging.package import final_estimator

__all__ = ["quantize_candidates"]


def quantize_candidates(model: Any) -> list[Candidate]:
    """The int8 variant of ``model`` (a fitted Pipeline), or none when its final
    estimator cannot be quantized."""
    final = final_estimator(model)
    if not callable(getattr(final, "quantized", None)):
        return []
    int8 = final.quantized()
    variant = with_final(model, int8)  # the preprocessing is shared, not refitted
    before, after = len(getattr(final, "onnx_model_", b"")), len(getattr(int8, "onnx_model_",
                                                                          b""))
    detail = "int8 weights (ONNX Runtime dynamic quantization)"
    if before and after:
        detail += f": network {before / 1024:.0f} KiB -> {after / 1024:.0f} KiB"
    return [Candidate(name="int8", technique="quantization", model=variant,
                      params={"precision": "int8", "method": "dynamic"}, detail=detail)]
