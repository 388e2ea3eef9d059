"""The predictor: a loaded model package that checks its input before every prediction.

``load_model`` takes a package directory or a registry reference (``fraud@champion``,
``fraud/3``, ``fraud``); registry versions are downloaded once into a local cache keyed by
name and version, and reused while their manifest matches the registry's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from forgeline.config import Settings, hash_key, load_settings
from forgeline.errors import ForgelineError, InvalidInput, NotFound
from forgeline.names import parse_model_ref
from forgeline.packaging.package import (
    MANIFEST_FILE,
    ModelPackage,
    load_package,
    verify_package,
)
from forgeline.store.artifacts import sha256_file
from forgeline.util.files import atomic_path
from forgeline.util.privacy import keyed_hash_series

if TYPE_CHECKING:
    from forgeline.entities import ModelVersion
    from forgeline.tracking.client import Client

__all__ = ["Predictor", "load_model"]

Records = pd.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]]


class Predictor:
    """A model ready to score: ``predict(df)`` validates ``df`` against the signature first.

    Columns the package trained on as keyed hashes (``privacy.policy: hash``) are hashed
    with the same key (``FORGELINE_HASH_KEY`` or ``<home>/hash.key``) before the model
    sees them, so callers send the raw values.

    Args:
        package: the loaded model package.
        model_version: the registry version it came from, if any.
        settings: where the hash key comes from; ``load_settings()`` when needed and None.
    """

    def __init__(self, package: ModelPackage, model_version: ModelVersion | None = None,
                 settings: Settings | None = None):
        self.package = package
        self.privacy = package.privacy
        # inputs the model saw as keyed hashes: hashed here before it sees them
        self.hashed_inputs = tuple(
            name for name, c in (self.privacy.get("columns") or {}).items()
            if c.get("feature") and str(c.get("handling", "")).startswith("HMAC"))
        self._settings = settings
        self._key: bytes | None = None
        self.signature = package.signature
        self.metrics = package.metrics
        self.profile = package.profile
        self.manifest = package.manifest
        self.path = package.path
        self.model_version = model_version

    @property
    def model(self) -> Any:
        """The fitted model (read on first use when the package was loaded lazily)."""
        return self.package.model

    def __repr__(self) -> str:
        source = self.model_version.ref if self.model_version else str(self.path)
        return (f"Predictor({source!r}, task={self.signature.task!r}, "
                f"inputs={len(self.signature.inputs)})")

    def prepare(self, data: Records) -> pd.DataFrame:
        """The validated model input for a DataFrame, a dict (one row) or a list of dicts.

        Raises:
            InvalidInput: as :meth:`Signature.validate`.
        """
        if isinstance(data, pd.DataFrame):
            return self.hash_inputs(self.signature.validate(data))
        return self.hash_inputs(self.signature.validate_records(data))

    def hash_inputs(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` with the :attr:`hashed_inputs` columns replaced by their keyed hashes."""
        present = [c for c in self.hashed_inputs if c in X.columns]
        if not present:
            return X
        X = X.copy()
        for name in present:
            X[name] = keyed_hash_series(X[name], self.hash_key)
        return X

    @property
    def hash_key(self) -> bytes:
        """The key personal values are hashed with (read once)."""
        if self._key is None:
            self._key = hash_key(self._settings or load_settings())
        return self._key

    def predict(self, data: Records) -> np.ndarray:
        """Class labels (classifiers) or values (regression), one per row."""
        X = self.prepare(data)
        return np.asarray(self._call("predict", X))

    def predict_proba(self, data: Records) -> pd.DataFrame:
        """Class probabilities, one column per label in ``signature.classes``.

        Raises:
            InvalidInput: for a regression model, which has no class probabilities.
        """
        if not self.signature.is_classifier:
            raise InvalidInput(f"predict_proba needs a classifier; this is a "
                               f"{self.signature.task} model.", hint="Use predict.")
        if not hasattr(self.model, "predict_proba"):
            raise InvalidInput(f"The model ({type(self.model).__name__}) gives no class "
                               "probabilities.", hint="Use predict.")
        X = self.prepare(data)
        proba = np.asarray(self._call("predict_proba", X))
        classes = self.signature.classes
        if classes is None or len(classes) != proba.shape[1]:
            classes = tuple(getattr(self.model, "classes_", range(proba.shape[1])))
        return pd.DataFrame(proba, columns=pd.Index(list(classes)), index=X.index)

    def _call(self, method: str, X: pd.DataFrame) -> Any:
        try:
            return getattr(self.model, method)(X)
        except ValueError as e:  # what estimators raise for input they cannot score
            raise InvalidInput(f"The model could not score the input: {e}",
                               hint="Check the values against the model signature.") from e


def load_model(ref: str | Path, client: Client | None = None,
               cache_dir: Path | None = None, *, lazy: bool = False) -> Predictor:
    """A :class:`Predictor` for a package directory or a registry reference.

    Args:
        ref: a package directory (a Path, or a str naming a directory with a
            MANIFEST.json), or a registry reference: ``name@alias``, ``name/3`` or ``name``
            (its latest version).
        client: the registry to resolve ``ref`` in; ``forgeline.Client()`` by default.
        cache_dir: where downloaded versions are kept, as ``<cache_dir>/<name>/<version>``;
            ``<client.settings.home>/models`` by default.
        lazy: read the model itself on its first use (see :class:`ModelPackage`): for
            callers that need only the signature, profile and metrics.

    Raises:
        NotFound: no such directory, model, alias or version.
        InvalidInput: a malformed reference, or a version that is not a model package.
        IntegrityError: the package fails its checks.
    """
    local = _local_directory(ref)
    if local is not None:
        return Predictor(load_package(local, lazy=lazy))
    from forgeline.tracking.client import Client

    client = client if client is not None else Client()
    mv = client.get_model_version(str(ref))
    root = Path(cache_dir) if cache_dir is not None else Path(client.settings.home) / "models"
    target = root.absolute() / mv.name / str(mv.version)
    expected = _registered_manifest_digest(client, mv)
    if not _cache_is_valid(target, expected):
        _download(client, mv, target)
    return Predictor(load_package(target, lazy=lazy), mv, client.settings)


def _local_directory(ref: str | Path) -> Path | None:
    if isinstance(ref, Path):
        if not ref.is_dir():
            raise NotFound(f"No model package at {ref}: no such directory.")
        return ref
    if not isinstance(ref, str):
        raise InvalidInput(f"Invalid model reference {ref!r}: give a package directory or "
                           "name@alias, name/N or name.")
    path = Path(ref).expanduser()
    if (path / MANIFEST_FILE).is_file():
        return path
    try:
        parse_model_ref(ref)
    except InvalidInput:
        if path.is_dir():
            return path  # load_package says why it is not a package
        if "/" in ref or "\\" in ref or ref.startswith((".", "~")):
            raise NotFound(f"No model package directory at {ref!r}, and it is not a model "
                           "reference either.", hint="Give an existing directory, or "
                           "name@alias, name/N or name.") from None
        raise
    return None


def _registered_manifest_digest(client: Client, mv: ModelVersion) -> str:
    if mv.run_id is None:
        raise NotFound(f"Model version {mv.ref} has no source run to download from.")
    wanted = f"{mv.artifact_path}/{MANIFEST_FILE}"
    for artifact in client.store.list_artifacts(mv.run_id, mv.artifact_path):
        if artifact.path == wanted:
            return artifact.digest
    raise InvalidInput(f"Model version {mv.ref} is not a Forgeline model package: its files "
                       f"have no {MANIFEST_FILE}.",
                       hint="Write the model with forgeline.packaging.save_package, log that "
                            "directory and register it.")


def _cache_is_valid(target: Path, manifest_digest: str) -> bool:
    manifest = target / MANIFEST_FILE
    if not manifest.is_file():
        return False
    try:
        if sha256_file(manifest) != manifest_digest:
            return False  # another store's version under the same name and number
        verify_package(target)
    except (ForgelineError, OSError):
        return False
    return True


def _download(client: Client, mv: ModelVersion, target: Path) -> None:
    """Download into a temporary sibling and rename it into place (a stale or damaged copy
    is replaced; a concurrent download that won the race is kept)."""
    try:
        with atomic_path(target, directory=True) as tmp:
            client.download_model(mv.ref, tmp)
    except OSError:
        if not target.is_dir():
            raise
