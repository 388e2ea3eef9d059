"""What actually computes predictions for the server and the batch scorer.

A runtime takes a frame already validated against the signature and returns labels and,
for classifiers, class probabilities, in one call for the whole batch (the shared types
are in :mod:`forgeline.serving.runtime_base`). ``NativeRuntime`` calls the scikit-learn
pipeline; :class:`~forgeline.serving.onnx.OnnxRuntime` runs the same pipeline converted to
ONNX and is chosen by :func:`select_runtime` only after it reproduces the native
predictions on a sample synthesised from the signature:

- classifiers: the same labels (rows whose two best native probabilities are within the
  tolerance are ties and may go either way) and every probability within 1e-4;
- regression: every value within 1e-4 relative, ``|onnx - native| <= 1e-4 * max(|native|,
  mean |native| over the sample)`` (so values near zero are compared at the sample's scale).

A final estimator with the class attribute ``serve_native = True`` (a compiled tree
ensemble, :mod:`forgeline.packaging.compiled`) is already the fast path: "auto" serves it
natively, with its ``native_reason`` (read once here, so a compiled model compiles at
start-up and not on the first request) as the detail.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from forgeline.errors import InvalidInput
from forgeline.packaging.llm_features import llm_steps
from forgeline.packaging.package import final_estimator
from forgeline.packaging.predictor import Predictor
from forgeline.serving.runtime_base import RUNTIMES, Prediction, Runtime
from forgeline.serving.sampling import SAMPLE_ROWS, sample_frame

__all__ = ["RUNTIMES", "TOLERANCE", "NativeRuntime", "Prediction", "Runtime", "compare",
           "sample_frame", "select_runtime"]

log = logging.getLogger("forgeline.serving")

TOLERANCE = 1e-4


class NativeRuntime(Runtime):
    """The pipeline itself; with ``features`` (an exact ONNX copy of its preprocessing,
    :func:`~forgeline.serving.onnx_features.onnx_features`), that graph computes the
    matrix and the final estimator predicts from it."""

    name = "native"

    def __init__(self, predictor: Predictor, features: Any = None) -> None:
        self.signature = predictor.signature
        self._model = predictor.model
        # inputs the model was trained on as keyed hashes (privacy.policy: hash)
        self._hash = predictor.hash_inputs if predictor.hashed_inputs else None
        self._features = features
        self._final = final_estimator(self._model) if features is not None else None

    def predict(self, frame: pd.DataFrame) -> Prediction:
        if self._hash is not None:
            frame = self._hash(frame)
        model: Any = self._model
        rows: Any = frame
        if self._features is not None:
            model, rows = self._final, self._features.transform(frame)
        if self.signature.is_classifier:
            proba = np.asarray(model.predict_proba(rows))
            classes = np.asarray(self._model.classes_)
            return Prediction(classes[proba.argmax(axis=1)], proba)
        return Prediction(np.asarray(model.predict(rows)), None)


def select_runtime(predictor: Predictor, prefer: str = "auto") -> Runtime:
    """The fastest runtime that reproduces the native predictions ("auto"), or the one named.

    Args:
        predictor: the loaded model.
        prefer: ``"auto"`` (ONNX Runtime when the model converts and passes the parity
            check, else native), ``"onnx"`` (ONNX Runtime or an error) or ``"native"``.

    Returns:
        The runtime; its ``name`` says which it is and ``detail`` why.

    Raises:
        InvalidInput: an unknown ``prefer``, or ``"onnx"`` for a model that cannot be
            converted or does not match the native predictions (the message says which).
    """
    if prefer not in RUNTIMES:
        raise InvalidInput(f"Unknown runtime {prefer!r}.",
                           hint=f"Use one of {', '.join(RUNTIMES)}.")
    native = NativeRuntime(predictor)
    if prefer == "native":
        native.detail = "native: asked for"
        return native
    if predictor.hashed_inputs:  # the ONNX graph cannot compute the keyed hash
        if prefer == "onnx":
            raise InvalidInput("The model cannot be served with ONNX Runtime: it hashes "
                               f"personal inputs ({', '.join(predictor.hashed_inputs)}) "
                               "before predicting.", hint="Ask for the runtime auto or native.")
        native.detail = "native: the model hashes personal inputs (privacy.policy: hash)"
        return native
    asks = [q["name"] for step in llm_steps(predictor.model) for q in step.questions_]
    if asks:  # an HTTP call to an LLM has no ONNX operator; and no parity sample asks it
        if prefer == "onnx":
            raise InvalidInput("The model cannot be served with ONNX Runtime: it asks an LLM "
                               f"for its features {', '.join(asks)}.",
                               hint="Ask for the runtime auto or native.")
        native.detail = f"native: the model asks an LLM for features ({', '.join(asks)})"
        return native
    final = final_estimator(predictor.model)
    if getattr(final, "serve_native", False):
        reason = getattr(final, "native_reason", None) or type(final).__name__
        if prefer == "onnx":
            raise InvalidInput(f"The model cannot be served with ONNX Runtime: it is served "
                               f"natively ({reason}).", hint="Ask for the runtime auto or "
                               "native.")
        native = _compiled_runtime(predictor, native)
        native.detail = f"native: {reason}; {native.detail}"
        log.info("serving %s with the native model: %s", _source(predictor), native.detail)
        return native
    problem = _check_onnx(predictor, native)
    candidate = problem if isinstance(problem, Runtime) else None
    problem = None if candidate is not None else problem
    if candidate is not None:
        candidate.detail = (f"onnxruntime: matches the native model on {SAMPLE_ROWS} "
                            f"sampled rows within {TOLERANCE:g}")
        log.info("serving %s with %s", _source(predictor), candidate.detail)
        return candidate
    if prefer == "onnx":
        raise InvalidInput(f"The model cannot be served with ONNX Runtime: {problem}",
                           hint="Ask for the runtime auto or native.")
    native.detail = f"native: ONNX Runtime not used ({problem})"
    log.info("serving %s with the native model; ONNX Runtime not used: %s",
             _source(predictor), problem)
    return native


def _compiled_runtime(predictor: Predictor, native: NativeRuntime) -> NativeRuntime:
    """``native``, or one whose preprocessing runs as an ONNX graph equal to scikit-learn's
    (a compiled estimator answers one row in microseconds; scikit-learn's ColumnTransformer
    takes milliseconds). Its ``detail`` says which preprocessing serves."""
    model = predictor.model
    if not (hasattr(model, "steps") and len(model.steps) == 2):
        native.detail = "preprocessing: scikit-learn"
        return native
    from forgeline.serving.onnx_features import onnx_features

    features, why = onnx_features(predictor)
    runtime = native if features is None else NativeRuntime(predictor, features)
    runtime.detail = f"preprocessing: {why}"
    return runtime


def _check_onnx(predictor: Predictor, native: Runtime) -> Runtime | str:
    """The ONNX runtime when it converts and matches ``native`` on a sample; else why not."""
    try:
        from forgeline.serving.onnx import load_onnx_runtime

        candidate = load_onnx_runtime(predictor)
    except InvalidInput as e:  # NotConvertible, or the converters are not installed
        return str(e)
    try:
        sample = sample_frame(predictor.signature, model=predictor.model,
                              profile=predictor.profile)
        reference = native.predict(sample)
    except Exception as e:  # the sample is outside what the model accepts
        return (f"no parity check possible: the native model cannot score the sample "
                f"({type(e).__name__}: {e})")
    try:
        got = candidate.predict(sample)
    except Exception as e:  # ONNX Runtime failing on the sample: never serve it
        return f"ONNX Runtime failed on the parity sample: {type(e).__name__}: {e}"
    problem = compare(reference, got, predictor.signature.is_classifier)
    return candidate if problem is None else problem


def compare(reference: Prediction, candidate: Prediction, classifier: bool) -> str | None:
    """None when ``candidate`` reproduces ``reference`` (see the module docstring), else
    what differs.
    """
    if classifier:
        if reference.proba is None or candidate.proba is None or (
                reference.proba.shape != candidate.proba.shape):
            return "its class probabilities have another shape than the native model's"
        delta = np.abs(reference.proba - candidate.proba)
        worst = float(np.nanmax(delta)) if delta.size else 0.0
        if not np.isfinite(delta).all() or worst > TOLERANCE:
            return (f"class probabilities differ from the native model's by up to "
                    f"{worst:.3g} (tolerance {TOLERANCE:g})")
        top2 = np.sort(reference.proba, axis=1)[:, -2:] if reference.proba.shape[1] > 1 else (
            np.zeros((len(reference.proba), 2)))
        tie = (top2[:, 1] - top2[:, 0]) <= TOLERANCE
        differ = (np.asarray(reference.labels) != np.asarray(candidate.labels)) & ~tie
        if differ.any():
            return f"{int(differ.sum())} of {len(differ)} labels differ from the native model's"
        return None
    want = np.asarray(reference.labels, dtype=np.float64).ravel()
    got = np.asarray(candidate.labels, dtype=np.float64).ravel()
    if want.shape != got.shape:
        return "it returns another number of values than the native model"
    scale = np.maximum(np.abs(want), np.mean(np.abs(want)) if want.size else 0.0)
    bad = ~(np.abs(got - want) <= TOLERANCE * scale)
    if bad.any():
        worst = float(np.nanmax(np.abs(got - want) / np.where(scale > 0, scale, 1)))
        return (f"{int(bad.sum())} of {len(bad)} values differ from the native model's "
                f"(relative difference up to {worst:.3g}, tolerance {TOLERANCE:g})")
    return None


def _source(predictor: Predictor) -> str:
    return predictor.model_version.ref if predictor.model_version else str(predictor.path)
