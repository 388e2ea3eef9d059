"""A LightGBM model compiled to native code: the same predictions, without LightGBM's
per-call overhead.

:class:`CompiledLGBMClassifier` and :class:`CompiledLGBMRegressor` are scikit-learn
estimators whose fitted state is plain data (LightGBM's text model, the classes, the
objective), so a model package stores them through skops like any other final step. The
native code is built lazily, on the first prediction, by treelite (LightGBM's text model
-> treelite's tree IR) and tl2cgen (C code, compiled by gcc into a shared library). It
is not stored in the package: it depends on the machine (CPU, C library), not only on the
model.

Why tl2cgen and not lleaves (LLVM): lleaves 1.3.0, the latest release, calls llvmlite's
legacy pass manager, which llvmlite 0.45 removed; numba (through shap) needs llvmlite
0.50. tl2cgen needs a C compiler at run time, hence the fallback below.

Cache: ``<cache>/compiled/<key>/model.so`` (``Settings.resolved_cache_dir``: the home's
``cache`` folder or ``FORGELINE_CACHE_DIR``) where ``key`` is the sha256 of the model text
and of the compiler's identity (tl2cgen, treelite and gcc versions, the machine), so
a new compiler never loads an old library. A file lock serialises compilation between
processes (the second waits, then loads what the first built) and the library's folder is
renamed into place only once complete (:func:`forgeline.util.files.atomic_path`), so a
crash never leaves half a library where a reader looks.

Fallback: when tl2cgen is not installed or compilation fails (no C compiler), the
estimator predicts with LightGBM's own booster, built from the same text, and says so in
a log line and in :attr:`native_reason` -- slower, never wrong.

Parity: tl2cgen evaluates the trees with LightGBM's thresholds (quantised exactly: a
value is ranked among a feature's thresholds, then trees compare ranks), categorical
splits and missing-value rules, and applies the objective's transform (sigmoid, softmax,
exp...); values within LightGBM's zero threshold are read as 0 first, as LightGBM reads
them. Predictions equal LightGBM's to 1e-9 (tested on a classifier with a categorical
column, a multiclass classifier and a regressor, with missing values, unseen categories
and values at the split thresholds themselves).

Batches go through tl2cgen's predictor; up to 16 rows go straight to the library's
``predict`` function, one C call per row (see ``_Tl2cgen``).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import io
import logging
import os
import platform
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from forgeline.config import load_settings
from forgeline.util.files import atomic_path

__all__ = ["CompiledLGBMClassifier", "CompiledLGBMRegressor", "compile_lightgbm",
           "compiler_identity", "library"]

log = logging.getLogger("forgeline.packaging")

_LIBRARY = "model.so"
_ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold
# tl2cgen's settings, part of the cache key: thresholds quantised (each value is mapped to
# its rank among the split thresholds once per feature, then trees compare integers: exact,
# tested at the thresholds themselves; on one row of a 300-tree model 29 us against 47 us
# comparing doubles, measured under load)
_QUANTIZE = 1
_LOCK_TIMEOUT_S = 900  # a large ensemble takes minutes to compile


class _CompiledLightGBM(BaseEstimator):
    """What both compiled estimators share.

    Args:
        params: LightGBM parameters :meth:`fit` trains with (unused when built from a
            fitted LightGBM estimator by :func:`compile_lightgbm`).
        nthread: threads one prediction call uses (1: the serving runtime parallelises
            across requests, not inside one).

    Fitted attributes: ``model_text_`` (LightGBM's text model), ``objective_``,
    ``n_features_in_`` and, for classifiers, ``classes_``.
    """

    serve_native = True  # select_runtime: never converted to ONNX (this is the fast path)
    explain_as = "lightgbm"  # packaging/explain.py: contributions from booster_ (pred_contrib)

    def __init__(self, params: dict[str, Any] | None = None, nthread: int = 1) -> None:
        self.params = params
        self.nthread = nthread

    def requirements(self) -> list[str]:
        """What the package's requirements.txt pins for this step (packaging/package.py)."""
        return ["lightgbm", "tl2cgen", "treelite"]

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> _CompiledLightGBM:
        """Train LightGBM with ``params`` on ``(X, y)`` and keep its text model."""
        import lightgbm

        kind = (lightgbm.LGBMClassifier if isinstance(self, ClassifierMixin)
                else lightgbm.LGBMRegressor)
        self._take(kind(**(self.params or {})).fit(X, y))
        return self

    def _take(self, estimator: Any) -> None:
        booster = estimator.booster_
        self.model_text_ = booster.model_to_string()
        self.objective_ = next((line.partition("=")[2] for line in self.model_text_.split("\n")
                                if line.startswith("objective=")), "")
        self.n_features_in_ = int(booster.num_feature())
        if hasattr(estimator, "classes_"):
            self.classes_ = np.asarray(estimator.classes_)
        self._engine = self._booster = None

    # -- predicting ------------------------------------------------------------------------
    def _raw(self, X: Any) -> np.ndarray:
        """The booster's output for ``X``: probabilities of the positive class (binary),
        rows x classes (multiclass) or values (regression)."""
        # dense: tl2cgen reads a sparse matrix's absent entries as missing, LightGBM as 0
        rows = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.n_features_in_:
            raise ValueError(f"{type(self).__name__} expects {self.n_features_in_} "
                             f"features, got an array of shape {rows.shape}")
        return self._runtime().predict(rows)

    def _runtime(self) -> _Engine:
        engine = getattr(self, "_engine", None)
        if engine is None:
            with _LOCK:
                engine = getattr(self, "_engine", None)
                if engine is None:
                    engine = self._engine = _load(self.model_text_, self.nthread)
        return engine

    @property
    def booster_(self) -> Any:
        """LightGBM's booster for the same trees (explanations: ``pred_contrib``), built
        from the text model on first use."""
        booster = getattr(self, "_booster", None)
        if booster is None:
            import lightgbm

            booster = self._booster = lightgbm.Booster(model_str=self.model_text_)
        return booster

    @property
    def native_reason(self) -> str:
        """Why and how this model is served natively (compiles it now if need be)."""
        return self._runtime().description

    def __getstate__(self) -> dict[str, Any]:  # skops and pickle: plain data only
        state = super().__getstate__()
        state.pop("_engine", None)
        state.pop("_booster", None)
        return state


class CompiledLGBMClassifier(ClassifierMixin, _CompiledLightGBM):
    """A LightGBM classifier compiled to native code (see the module docstring)."""

    def predict_proba(self, X: Any) -> np.ndarray:
        out = self._raw(X)
        if out.ndim == 1:  # binary: the positive class's probability
            return np.column_stack([1.0 - out, out])
        return out

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class CompiledLGBMRegressor(RegressorMixin, _CompiledLightGBM):
    """A LightGBM regressor compiled to native code (see the module docstring)."""

    def predict(self, X: Any) -> np.ndarray:
        return self._raw(X)


def compile_lightgbm(estimator: Any, nthread: int = 1) -> _CompiledLightGBM:
    """The compiled counterpart of a fitted ``LGBMClassifier`` or ``LGBMRegressor``
    (nothing is compiled until its first prediction)."""
    compiled: _CompiledLightGBM = (CompiledLGBMClassifier if hasattr(estimator, "classes_")
                                   else CompiledLGBMRegressor)(nthread=nthread)
    compiled.params = {k: v for k, v in estimator.get_params().items()
                       if isinstance(v, str | int | float | bool | type(None))}
    compiled._take(estimator)
    return compiled


# -- the engines --------------------------------------------------------------------------
_LOCK = threading.Lock()  # one compilation per process at a time (the file lock: between)
_ROW_BY_ROW = 16  # up to this many rows, one C call per row (see _Tl2cgen)
_MISSING_WORD = 0 if sys.byteorder == "little" else 1  # where union Entry's int lies


class _Engine:
    description: str

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Predictions for float64 ``rows`` (dense), as LightGBM's ``Booster.predict``."""
        raise NotImplementedError


class _Entry(ctypes.Union):  # tl2cgen's union Entry: a value, or missing = -1
    _fields_ = (("missing", ctypes.c_int), ("fvalue", ctypes.c_double))


class _Tl2cgen(_Engine):
    """tl2cgen's predictor for batches; a few rows go straight to the library's
    ``predict(union Entry* row, int pred_margin, double* out)`` (tl2cgen's generated C
    API), which spares the predictor's per-call set-up (a DMatrix, an output-shape query)
    and numpy's per-call costs: most of a single row's time otherwise."""

    def __init__(self, library: Path, nthread: int) -> None:
        import tl2cgen

        self._tl2cgen = tl2cgen
        self._predictor = tl2cgen.Predictor(str(library), nthread=nthread)
        self._width = int(np.max(self._predictor.num_class))  # one target: its classes
        self._lib = ctypes.CDLL(str(library))
        self._lib.predict.argtypes = [ctypes.POINTER(_Entry), ctypes.c_int,
                                      ctypes.POINTER(ctypes.c_double)]
        self._lib.predict.restype = None
        self.description = f"compiled LightGBM (tl2cgen {tl2cgen.__version__})"

    def predict(self, rows: np.ndarray) -> np.ndarray:
        if len(rows) <= _ROW_BY_ROW:
            out = self._rows(rows)
        else:
            matrix = _as_lightgbm_reads(np.ascontiguousarray(rows))
            out = self._predictor.predict(self._tl2cgen.DMatrix(matrix, dtype="float64"))
            out = out.reshape(len(rows), self._width)  # (rows, targets=1, classes)
        return out[:, 0] if self._width == 1 else out

    def _rows(self, rows: np.ndarray) -> np.ndarray:
        n = rows.shape[1]
        values_type, words_type = ctypes.c_double * n, ctypes.c_int * (2 * n)
        result_type = ctypes.c_double * self._width
        out = []
        for values in rows.tolist():
            # within LightGBM's zero threshold: 0, as LightGBM reads it (NaN stays NaN)
            entries = values_type(*[0.0 if -_ZERO <= v <= _ZERO else v for v in values])
            words = words_type.from_buffer(entries)
            for j, v in enumerate(values):
                if v != v:  # NaN: union Entry's int `missing` = -1 over the double
                    words[2 * j + _MISSING_WORD] = -1
            result = result_type()
            self._lib.predict(ctypes.cast(entries, ctypes.POINTER(_Entry)), 0, result)
            out.append(result[:])
        return np.asarray(out, dtype=np.float64).reshape(len(rows), self._width)


class _Booster(_Engine):
    def __init__(self, text: str, why: str) -> None:
        import lightgbm

        self._booster = lightgbm.Booster(model_str=text)
        self.description = f"LightGBM's own booster, not compiled ({why})"

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self._booster.predict(rows, num_threads=1))


def _load(text: str, nthread: int) -> _Engine:
    try:
        import tl2cgen  # noqa: F401
        import treelite  # noqa: F401
    except ImportError as e:
        why = (f"{e.name} is not installed; install forgeline[compile] to compile trees")
        log.warning("LightGBM model not compiled: %s", why)
        return _Booster(text, why)
    try:
        return _Tl2cgen(library(text), nthread)
    except Exception as e:  # no C compiler, a compiler error: predict, slower, all the same
        why = f"compilation failed: {type(e).__name__}: {str(e)[:300]}"
        log.warning("LightGBM model not compiled: %s", why)
        return _Booster(text, why)


def library(text: str) -> Path:
    """The compiled library for LightGBM's model ``text``: built once, then cached."""
    key = hashlib.sha256(f"{compiler_identity()}\n{text}".encode()).hexdigest()
    root = load_settings().resolved_cache_dir / "compiled"
    target = root / key
    if (target / _LIBRARY).is_file():
        return target / _LIBRARY
    from filelock import FileLock

    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".{key}.lock"), timeout=_LOCK_TIMEOUT_S):
        if not (target / _LIBRARY).is_file():  # another process may have built it meanwhile
            with atomic_path(target, directory=True) as tmp:
                _compile(text, tmp / _LIBRARY)
            log.info("compiled a LightGBM model into %s", target)
    return target / _LIBRARY


def _compile(text: str, path: Path) -> None:
    import lightgbm
    import tl2cgen
    import treelite

    model = treelite.frontend.from_lightgbm(lightgbm.Booster(model_str=text))
    # gcc's time grows faster than a function's size: ~10 trees per C file compiles a
    # 300-tree model 4x faster than 2 files (measured), and the files compile in parallel
    units = max(1, min(32, model.num_tree // 10))
    chatter = io.StringIO()  # tl2cgen prints its native library's log lines
    with contextlib.redirect_stdout(chatter):
        tl2cgen.export_lib(model, toolchain="gcc", libpath=str(path),
                           params={"parallel_comp": units, "quantize": _QUANTIZE},
                           nthread=os.cpu_count() or 1)
    log.debug("tl2cgen: %s", chatter.getvalue().strip())


def compiler_identity() -> str:
    """What the compiled code depends on beside the model: the compilers and the machine."""
    import tl2cgen
    import treelite

    gcc = shutil.which("gcc")
    return (f"tl2cgen {tl2cgen.__version__} (quantize={_QUANTIZE}); treelite "
            f"{treelite.__version__}; gcc {_gcc_version(gcc) if gcc else 'none'}; "
            f"{platform.machine()} {platform.system()}")


@functools.cache
def _gcc_version(gcc: str) -> str:
    try:
        return subprocess.run([gcc, "-dumpfullversion"], capture_output=True, text=True,
                              timeout=30, check=False).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _as_lightgbm_reads(rows: np.ndarray) -> np.ndarray:
    """``rows`` with values within LightGBM's zero threshold (``kZeroThreshold``, 1e-35 as a
    float32) set to 0, as LightGBM does before it walks the trees (its splits at -1e-35
    tell 0 from negative numbers); the caller's array is never changed."""
    tiny = (np.abs(rows) <= _ZERO) & (rows != 0)
    if tiny.any():
        rows = rows.copy()
        rows[tiny] = 0.0
    return rows
