"""What every runtime shares: :class:`Prediction`, the :class:`Runtime` contract and the
names a server or batch scorer may ask for (:data:`RUNTIMES`).

A module of its own so that the runtimes (:mod:`forgeline.serving.runtime`,
:mod:`forgeline.serving.onnx`) and the modules that only carry predictions (batching,
metrics, scoring, the prediction log) import the types without importing each other.
It imports nothing heavy: numpy, pandas and the signature are named in annotations only.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from forgeline.packaging.signature import Signature

__all__ = ["RUNTIMES", "Prediction", "Runtime"]

# What select_runtime accepts: "auto" (ONNX Runtime when it reproduces the native model),
# "native" or "onnx".
RUNTIMES = ("auto", "native", "onnx")


@dataclass(frozen=True, slots=True)
class Prediction:
    """What a runtime returns for a batch of rows."""

    labels: np.ndarray  # class labels (classifiers) or values (regression), one per row
    proba: np.ndarray | None  # rows x classes in signature.classes order; None for regression


class Runtime(abc.ABC):
    """Predictions for validated frames; safe to call from one thread at a time.

    Attributes:
        name: ``"native"`` or ``"onnxruntime"``.
        signature: the model's input and output schema.
        detail: why this runtime serves (set by ``select_runtime``).
    """

    name: str
    signature: Signature
    detail: str = ""

    @abc.abstractmethod
    def predict(self, frame: pd.DataFrame) -> Prediction:
        """Labels (and class probabilities for classifiers) for every row of ``frame``."""
