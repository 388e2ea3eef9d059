"""A pipeline's preprocessing through ONNX Runtime, for explaining single rows fast.

Explaining a row of a tree model takes LightGBM's ``pred_contrib`` well under a
millisecond; scikit-learn's ``ColumnTransformer.transform`` of that one row takes 10-25
(pandas indexing per step). :class:`OnnxFeatures` runs the same preprocessing as an ONNX
graph (:func:`~forgeline.serving.onnx.convert` with ``features_only``: the converters
``/predict`` is served with, cut before the estimator), fed from the validated frame as
the whole-pipeline graph is, in about 0.1 ms.

The explanation must be the native one, so the graph is used only where it reproduces
scikit-learn's matrix *exactly* (every value equal, missing values in the same places) on
:func:`~forgeline.serving.sampling.sample_frame`'s rows (:func:`onnx_features`); anything
else, or an error, falls back to scikit-learn and says why.

One part is computed beside the graph: a datetime's days elapsed since the epoch, which
scikit-learn divides from the timestamp's own ticks (nanoseconds) while the graph gets
whole seconds (the calendar's unit); it is divided the same way in numpy and put in place.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from forgeline.errors import InvalidInput
from forgeline.packaging.coercion import Part, column_values
from forgeline.packaging.predictor import Predictor
from forgeline.packaging.transformers import DatetimeParts
from forgeline.serving.onnx import (
    NotConvertible,
    as_datetime64,
    cache_path,
    convert,
    feed,
    input_plan,
    open_session,
    write_cache,
)
from forgeline.serving.sampling import sample_frame

__all__ = ["SAMPLE_ROWS", "OnnxFeatures", "load_onnx_features", "onnx_features"]

log = logging.getLogger("forgeline.serving")

SAMPLE_ROWS = 256
_SUFFIX = "-features"  # the cache file beside the whole pipeline's graph


class OnnxFeatures:
    """The preprocessing of ``predictor``'s pipeline as an ONNX graph.

    Args:
        predictor: the loaded model the graph was converted from.
        onnx_bytes: the graph written by ``convert(predictor, features_only=True)``.
    """

    def __init__(self, predictor: Predictor, onnx_bytes: bytes) -> None:
        self._session = open_session(onnx_bytes)
        self._inputs = input_plan(self._session, predictor)
        self._output = self._session.get_outputs()[0].name
        self._elapsed = _elapsed_days(predictor)
        self.onnx_bytes = onnx_bytes

    def transform(self, frame: Part) -> np.ndarray:
        """The float64 matrix the estimator takes, for a frame validated by the signature
        or its columns (:meth:`Signature.coerce_records`)."""
        out = np.asarray(self._session.run([self._output], feed(frame, self._inputs))[0],
                         dtype=np.float64)
        for position, output in self._elapsed:
            values = as_datetime64(column_values(frame, position))
            unit, _ = np.datetime_data(values.dtype)
            day = np.timedelta64(1, "D") / np.timedelta64(1, unit)  # ticks per day
            days = values.view(np.int64) / day  # as scikit-learn: float64 ticks / day
            days[np.isnat(values)] = np.nan
            out[:, output] = days
        return out


def load_onnx_features(predictor: Predictor) -> OnnxFeatures:
    """An :class:`OnnxFeatures` for ``predictor``, converting it unless a cached graph
    exists (beside the whole pipeline's, see :func:`~forgeline.serving.onnx.load_onnx_runtime`).

    Raises:
        NotConvertible: the converters are not installed or cannot convert the model.
    """
    path = cache_path(predictor, _SUFFIX)
    if path is not None and path.is_file():
        try:
            return OnnxFeatures(predictor, path.read_bytes())
        except Exception as e:  # a damaged cache file: convert again
            log.warning("ignoring the cached ONNX preprocessing %s: %s", path, e)
    onnx_bytes = convert(predictor, features_only=True)
    try:
        features = OnnxFeatures(predictor, onnx_bytes)
    except Exception as e:  # ONNX Runtime refuses the graph, or it is not installed
        raise NotConvertible(f"ONNX Runtime cannot load the converted preprocessing: {e}"
                             ) from e
    if path is not None:
        write_cache(path, onnx_bytes)
    return features


def onnx_features(predictor: Predictor) -> tuple[OnnxFeatures | None, str]:
    """The ONNX preprocessing when it converts and reproduces scikit-learn's exactly on a
    sample, and a line saying so; else None and why not."""
    try:
        features = load_onnx_features(predictor)
    except InvalidInput as e:  # NotConvertible, or the converters are not installed
        return None, f"scikit-learn: ONNX preprocessing not used ({e})"
    except Exception as e:  # anything else: explaining never fails for the fast path
        return None, (f"scikit-learn: ONNX preprocessing not used ({type(e).__name__}: "
                      f"{e})")
    try:
        sample = sample_frame(predictor.signature, SAMPLE_ROWS, model=predictor.model,
                              profile=predictor.profile)
        want = np.asarray(_dense(predictor.model.steps[0][1].transform(sample)), np.float64)
        got = features.transform(sample)
    except Exception as e:  # either side failing on the sample: never use the graph
        return None, (f"scikit-learn: ONNX preprocessing not used (no parity check "
                      f"possible: {type(e).__name__}: {e})")
    if got.shape != want.shape or not np.array_equal(got, want, equal_nan=True):
        differ = (np.ones(want.shape[1], bool) if got.shape != want.shape else
                  ~((got == want) | (np.isnan(got) & np.isnan(want))).all(axis=0))
        return None, (f"scikit-learn: ONNX preprocessing not used (it differs from "
                      f"scikit-learn's in {int(differ.sum())} of {want.shape[1]} features "
                      f"on {SAMPLE_ROWS} sampled rows)")
    return features, (f"onnxruntime: equal to scikit-learn's on {SAMPLE_ROWS} sampled rows")


def _elapsed_days(predictor: Predictor) -> list[tuple[int, int]]:
    """(input column position, output position) of each datetime's days elapsed, where a
    ``DatetimeParts`` is a transformer of the ColumnTransformer by itself."""
    features = predictor.model.steps[0][1]
    names = predictor.signature.names
    found = []
    for name, transformer, columns in features.transformers_:
        if not (isinstance(transformer, DatetimeParts) and getattr(transformer, "elapsed_",
                                                                   False)):
            continue
        start, width = features.output_indices_[name].start, len(transformer.parts)
        selected = [columns] if isinstance(columns, str | int) else list(columns)
        for j, column in enumerate(selected):
            position = int(column) if isinstance(column, int | np.integer) else names.index(
                str(column))
            found.append((position, start + j * width + width - 1))
    return found


def _dense(matrix: Any) -> Any:
    return matrix.toarray() if hasattr(matrix, "toarray") else matrix
