"""What actually computes predictions for the server and the batch scorer.

A runtime takes a frame already validated against the signature and returns labels and,
for classifiers, class probabilities, in one call for the whole batch. ``NativeRuntime``
calls the scikit-learn pipeline; faster runtimes (ONNX Runtime) implement the same class
and are chosen by :func:`select_runtime` only after they match the native predictions.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forgeline.packaging.predictor import Predictor
from forgeline.packaging.signature import Signature

__all__ = ["NativeRuntime", "Prediction", "Runtime", "select_runtime"]


@dataclass(frozen=True, slots=True)
class Prediction:
    labels: np.ndarray  # class labels (classifiers) or values (regression), one per row
    proba: np.ndarray | None  # rows x classes in signature.classes order; None for regression


class Runtime(abc.ABC):
    """Predictions for validated frames; safe to call from one thread at a time."""

    name: str
    signature: Signature

    @abc.abstractmethod
    def predict(self, frame: pd.DataFrame) -> Prediction: ...


class NativeRuntime(Runtime):
    name = "native"

    def __init__(self, predictor: Predictor) -> None:
        self.signature = predictor.signature
        self._model = predictor.model

    def predict(self, frame: pd.DataFrame) -> Prediction:
        if self.signature.is_classifier:
            proba = np.asarray(self._model.predict_proba(frame))
            classes = np.asarray(self._model.classes_)
            return Prediction(classes[proba.argmax(axis=1)], proba)
        return Prediction(np.asarray(self._model.predict(frame)), None)


def select_runtime(predictor: Predictor, prefer: str = "auto") -> Runtime:
    """The fastest runtime that reproduces the native predictions ("auto"), or the one named.

    Only the native runtime exists so far; ONNX Runtime plugs in here.
    """
    return NativeRuntime(predictor)
