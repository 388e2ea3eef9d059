"""A multilayer perceptron for tabular data (PyTorch), as a scikit-learn estimator.

:class:`MLPClassifier` and :class:`MLPRegressor` take the matrix of Forgeline's
preprocessor (``training/features.py``) with the category codes first, as the zoo's
``categories`` mechanism passes them (``categorical_columns``): each category column gets
an embedding, the numbers are standardized inside the network (after ``log1p`` where
never negative and right-skewed; missing values get the training mean and an
indicator), then ``depth`` blocks of Linear, BatchNorm, ReLU and
Dropout. Training (:mod:`forgeline.training._mlp_net`) uses AdamW, stops early on a
validation share carved from the training rows and keeps the best epoch; ``class_weight``
``"balanced"`` weights the loss. It runs on one thread, on CUDA with ``device`` ``"cuda"``
(or ``"auto"`` when a GPU is present), and is deterministic for a seed on CPU.

The fitted state is plain data: the network exported to ONNX (``onnx_model_``, bytes),
the classes and a few numbers. Predictions run through an ONNX Runtime session made from
those bytes on first use (never part of the state), so loading a package, batch scoring
and serving need no torch, and skops saves and loads the estimator like any other.
:meth:`quantized` gives a copy whose graph has int8 weights (ONNX Runtime's dynamic
quantization); ``serving/_onnx_converters.py`` inlines the stored graph after the
preprocessing graph, so ONNX Runtime serves the whole pipeline.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any, Self

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight

from forgeline.errors import InvalidInput

__all__ = ["MLPClassifier", "MLPRegressor"]

_SESSION = "_session"  # the attribute holding the ONNX Runtime session (not state)
_MIN_VALID = 20  # fewer rows than this for validation: stop early on the training loss


class _MLP(BaseEstimator):
    """What the classifier and the regressor share (see the module's docstring).

    Args:
        width: units per hidden layer.
        depth: hidden layers.
        dropout: after each hidden layer, while training.
        learning_rate, weight_decay: AdamW's.
        batch_size: rows per step.
        max_epochs: the cap; training stops earlier after ``patience`` epochs without a
            better validation loss.
        validation_fraction: the training rows held out for early stopping.
        categorical_columns: positions of the category-code columns (the first ones).
        class_weight: ``"balanced"`` or None (classifier only).
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        random_state: the seed.
    """

    def __init__(self, *, width: int = 128, depth: int = 2, dropout: float = 0.1,
                 learning_rate: float = 1e-3, weight_decay: float = 1e-5,
                 batch_size: int = 256, max_epochs: int = 50, patience: int = 5,
                 validation_fraction: float = 0.1,
                 categorical_columns: list[int] | tuple[int, ...] = (),
                 class_weight: str | None = None, device: str = "auto",
                 random_state: int = 0) -> None:
        self.width = width
        self.depth = depth
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.categorical_columns = categorical_columns
        self.class_weight = class_weight
        self.device = device
        self.random_state = random_state

    # -- fitting ------------------------------------------------------------------------
    def _fit_network(self, X: Any, y: np.ndarray, classify: bool, outputs: int,
                     weights: np.ndarray | None) -> None:
        from forgeline.training import _mlp_net as net

        matrix = _dense(X)
        codes = len(self.categorical_columns)
        if list(self.categorical_columns) != list(range(codes)):
            raise ValueError("categorical_columns must be the first columns "
                             f"(0 .. {codes - 1}), got {list(self.categorical_columns)}")
        layout = net.Layout.of(matrix, codes, outputs, None if classify else y)
        settings = net.Settings(self.width, self.depth, self.dropout, self.learning_rate,
                                self.weight_decay, self.batch_size, self.max_epochs,
                                self.patience, self.random_state, self.device)
        fitted = net.fit_network(matrix, y, self._validation(y, classify), layout, settings,
                                 classify, weights)
        self.onnx_model_ = fitted.onnx
        self.precision_ = "float32"
        self.n_features_in_ = matrix.shape[1]
        self.n_epochs_ = fitted.epochs
        self.best_epoch_ = fitted.best_epoch
        self.device_ = fitted.device
        self.__dict__.pop(_SESSION, None)

    def _validation(self, y: np.ndarray, classify: bool) -> np.ndarray:
        """A boolean mask of the rows held out for early stopping (none for tiny data)."""
        n = len(y)
        held = round(n * self.validation_fraction)
        mask = np.zeros(n, dtype=bool)
        if held < _MIN_VALID or n - held < _MIN_VALID:
            return mask
        stratify = None
        if classify:
            _, counts = np.unique(y, return_counts=True)
            stratify = y if counts.min() >= 2 and held >= len(counts) else None
        _, valid = train_test_split(np.arange(n), test_size=held, stratify=stratify,
                                    random_state=self.random_state)
        mask[valid] = True
        return mask

    # -- predicting ---------------------------------------------------------------------
    def _run(self, X: Any) -> np.ndarray:
        session = self.__dict__.get(_SESSION)
        if session is None:
            session = _open_session(self.onnx_model_)
            self.__dict__[_SESSION] = session
        matrix = _dense(X).astype(np.float32, copy=False)
        if not len(matrix):
            return np.empty((0, len(getattr(self, "classes_", [0]))), dtype=np.float32)
        return session.run(None, {session.get_inputs()[0].name: matrix})[0]

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state = dict(state)
        state.pop(_SESSION, None)
        return state

    def requirements(self) -> list[str]:
        """What the package's requirements.txt pins for this step: it predicts from its own
        ONNX graph (packaging/package.py)."""
        return ["onnxruntime"]

    def quantized(self) -> Self:
        """A copy whose network has int8 weights (ONNX Runtime's dynamic quantization:
        the layers' and embeddings' weights stored as int8 with one scale per tensor,
        activations quantized per batch). Per-channel scales were measured worse, not
        better (probabilities moved up to 0.12 against 0.02 per tensor)."""
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.shape_inference import quant_pre_process

        with tempfile.TemporaryDirectory() as tmp:
            shaped, out = Path(tmp) / "float32.onnx", Path(tmp) / "int8.onnx"
            # shape inference first, as ONNX Runtime advises; no graph rewrite (a fused
            # Gemm would not be quantized)
            quant_pre_process(onnx.load_from_string(self.onnx_model_), shaped,
                              skip_optimization=True)
            quantize_dynamic(shaped, out, op_types_to_quantize=["MatMul", "Gather"],
                             weight_type=QuantType.QInt8)
            graph = out.read_bytes()
        twin = copy.copy(self)
        twin.onnx_model_ = graph
        twin.precision_ = "int8"
        return twin


class MLPClassifier(ClassifierMixin, _MLP):
    """The MLP for binary and multiclass targets; ``predict_proba`` in ``classes_`` order."""

    def fit(self, X: Any, y: Any) -> MLPClassifier:
        labels = np.asarray(y)
        self.classes_, index = np.unique(labels, return_inverse=True)
        weights = None
        if self.class_weight == "balanced":
            weights = compute_class_weight("balanced", classes=np.arange(len(self.classes_)),
                                           y=index)
        elif self.class_weight is not None:
            raise ValueError(f"class_weight must be 'balanced' or None, got "
                             f"{self.class_weight!r}")
        self._fit_network(X, index, True, len(self.classes_), weights)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        proba = self._run(X).astype(np.float64)
        return proba / proba.sum(axis=1, keepdims=True) if len(proba) else proba

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class MLPRegressor(RegressorMixin, _MLP):
    """The MLP for a numeric target."""

    def fit(self, X: Any, y: Any) -> MLPRegressor:
        self._fit_network(X, np.asarray(y, dtype=np.float64), False, 1, None)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self._run(X).astype(np.float64).reshape(-1)


def _open_session(onnx_model: bytes) -> Any:
    """An ONNX Runtime session on one thread, as serving opens them."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise InvalidInput("This model (a neural network) predicts with ONNX Runtime, "
                           "which is not installed.", hint="pip install 'forgeline[onnx]'"
                           ) from e
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])


def _dense(X: Any) -> np.ndarray:
    if hasattr(X, "toarray"):  # a sparse matrix
        X = X.toarray()
    return np.asarray(X, dtype=np.float32)
