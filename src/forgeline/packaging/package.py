"""The model package: one directory with the model, its signature and everything to trust it.

::

    model.skops        the fitted model (a scikit-learn Pipeline), in skops' safe format
    model.lgb.txt      LightGBM's native text model of the final estimator (when LightGBM)
    model.xgb.json     XGBoost's native JSON model of the final estimator (when XGBoost)
    signature.json     input columns, dtypes, categories, ranges; task and classes
    profile.json       reference statistics of the training data (monitoring)
    metrics.json       evaluation metrics
    card.md            the model card
    attributions.json  each input column's mean |contribution| on the test split (monitoring)
    requirements.txt   pinned versions of the libraries the model needs
    MANIFEST.json      {"format": 1, "flavor", "created", "files": {path: sha256}}

skops rebuilds the whole pipeline, LightGBM and XGBoost estimators included: their
boosters serialise through ``__getstate__`` as the libraries' own model string (LightGBM)
or bytes (XGBoost), with no pickle involved. The native files beside it are for tools
outside Python; loading uses ``model.skops``. A package is written into a temporary
sibling directory and renamed into place (:func:`forgeline.util.files.atomic_path`), so
nobody ever sees half of one.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from forgeline.errors import AlreadyExists, IntegrityError, InvalidInput, NotFound
from forgeline.packaging._trust import load_skops, refused_message, untrusted_types
from forgeline.packaging.signature import Signature
from forgeline.store.artifacts import safe_artifact_path, sha256_file
from forgeline.util.files import atomic_path

__all__ = ["ATTRIBUTIONS_FILE", "MANIFEST_FILE", "MODEL_FILE", "PACKAGE_FORMAT", "PRIVACY_FILE",
           "ModelPackage", "load_package", "manifest_digest", "model_flavor", "pipeline_parts",
           "save_package", "verify_package"]

PACKAGE_FORMAT = 1
MODEL_FILE = "model.skops"
SIGNATURE_FILE = "signature.json"
PROFILE_FILE = "profile.json"
METRICS_FILE = "metrics.json"
CARD_FILE = "card.md"
PRIVACY_FILE = "privacy.json"  # personal columns and how they were handled (no values)
ATTRIBUTIONS_FILE = "attributions.json"  # global attributions (packaging.attributions)
REQUIREMENTS_FILE = "requirements.txt"
MANIFEST_FILE = "MANIFEST.json"
NATIVE_FILES = {"lightgbm": "model.lgb.txt", "xgboost": "model.xgb.json"}
_RESERVED = {MODEL_FILE, SIGNATURE_FILE, PROFILE_FILE, METRICS_FILE, CARD_FILE,
             REQUIREMENTS_FILE, MANIFEST_FILE, *NATIVE_FILES.values()}
_BASE_REQUIREMENTS = ("forgeline", "numpy", "pandas", "scikit-learn", "scipy", "skops")


@dataclass
class ModelPackage:
    """A loaded, verified model package.

    ``model`` is the fitted model. A package loaded with ``lazy=True`` reads it from its
    file on first use (checking the file against the manifest again first), so a caller
    that needs only the signature and profile (monitoring) never imports skops and the
    model's libraries.
    """

    _model: Any
    signature: Signature
    profile: dict
    metrics: dict
    manifest: dict
    path: Path

    @property
    def model(self) -> Any:
        if self._model is None:
            path = self.path / MODEL_FILE
            if sha256_file(path) != self.manifest["files"][MODEL_FILE]:
                raise IntegrityError(f"{path} changed after its package was loaded.",
                                     hint="Load the package again; never edit its files.")
            self._model = load_skops(path)
        return self._model

    @property
    def flavor(self) -> str:
        return str(self.manifest.get("flavor", "sklearn"))

    @property
    def privacy(self) -> dict[str, Any]:
        """``privacy.json``: the personal columns (kind, handling) and the policy; an empty
        record for a package without one (trained before it existed)."""
        path = self.path / PRIVACY_FILE
        if PRIVACY_FILE not in self.manifest.get("files", {}) or not path.is_file():
            return {"policy": None, "columns": {}, "sensitive": []}
        return dict(_read_json(path))

    @property
    def attributions(self) -> dict[str, Any] | None:
        """``attributions.json`` (see :func:`~.attributions.attribution_record`): the
        reference attributions monitoring compares with; None for a package without them
        (trained before they existed, or a model that could not be explained)."""
        path = self.path / ATTRIBUTIONS_FILE
        if ATTRIBUTIONS_FILE not in self.manifest.get("files", {}) or not path.is_file():
            return None
        return dict(_read_json(path))

    @property
    def card(self) -> str:
        """The model card (markdown); "" when the package has none."""
        card = self.path / CARD_FILE
        return card.read_text(encoding="utf-8") if card.is_file() else ""


def pipeline_parts(model: Any) -> Iterator[Any]:
    """``model`` and every step inside it: a Pipeline's steps and a ColumnTransformer's
    fitted transformers, nested at any depth."""
    todo = [model]
    while todo:
        part = todo.pop()
        yield part
        todo += [step for _, step in getattr(part, "steps", ())]
        todo += [step for _, step, _ in getattr(part, "transformers_", ())]


def final_estimator(model: Any) -> Any:
    """The last step of a (possibly nested) Pipeline; the model itself otherwise."""
    while hasattr(model, "steps") and model.steps:
        model = model.steps[-1][1]
    return model


def model_flavor(model: Any) -> str:
    """``"lightgbm"``, ``"xgboost"`` or ``"sklearn"``: the library of the final estimator."""
    root = type(final_estimator(model)).__module__.partition(".")[0]
    return root if root in NATIVE_FILES else "sklearn"


def save_package(directory: Path, model: Any, signature: Signature, *, profile: dict,
                 metrics: dict, card: str,
                 extra_files: Mapping[str, bytes | str] | None = None) -> Path:
    """Write a model package to ``directory`` (which must not exist, or be empty).

    Args:
        directory: where the package goes.
        model: the fitted model, normally a scikit-learn Pipeline.
        signature: its input signature.
        profile: reference statistics of the training data.
        metrics: evaluation metrics.
        card: the model card, markdown.
        extra_files: more files to include, relative path -> content.

    Returns:
        ``directory``.

    Raises:
        AlreadyExists: ``directory`` exists and is not empty.
        InvalidInput: the model cannot be stored safely, or an extra file name is bad.
    """
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise AlreadyExists(f"Cannot write a model package to {directory}: it exists and is "
                            "not empty.", hint="Choose a new directory or remove that one.")
    extras = _check_extra_files(extra_files or {})
    with atomic_path(directory, directory=True) as tmp:  # an empty one is replaced
        flavor, libraries = _write_model(tmp, model)
        _write(tmp / SIGNATURE_FILE, _json(signature.to_dict()))
        _write(tmp / PROFILE_FILE, _json(profile))
        _write(tmp / METRICS_FILE, _json(metrics))
        _write(tmp / CARD_FILE, card)
        _write(tmp / REQUIREMENTS_FILE, _requirements(libraries))
        for name, content in extras.items():
            _write(tmp / name, content)
        files = {p.relative_to(tmp).as_posix(): sha256_file(p)
                 for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = {"format": PACKAGE_FORMAT, "flavor": flavor,
                    "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "files": files}
        _write(tmp / MANIFEST_FILE, _json(manifest))
    return directory


def verify_package(directory: Path) -> dict:
    """Check every file listed in ``MANIFEST.json`` against its sha256; return the manifest.

    Raises:
        NotFound: no directory there.
        InvalidInput: the directory is not a model package, or one from a newer Forgeline.
        IntegrityError: listed files are missing or changed (all of them are named).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise NotFound(f"No model package at {directory}: no such directory.")
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file():
        raise InvalidInput(f"{directory} is not a Forgeline model package: it has no "
                           f"{MANIFEST_FILE}.", hint="Pass a directory save_package wrote.")
    manifest = _read_json(manifest_path)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise IntegrityError(f"{manifest_path} is damaged: it has no 'files' table.",
                             hint="Re-download or re-save the package.")
    if manifest.get("format") != PACKAGE_FORMAT:
        raise InvalidInput(f"{directory} is a model package of format "
                           f"{manifest.get('format')!r}; this Forgeline reads format "
                           f"{PACKAGE_FORMAT}.", hint="Upgrade Forgeline to load it.")
    problems = [f"{name} is not listed" for name in (MODEL_FILE, SIGNATURE_FILE)
                if name not in files]
    for name, digest in sorted(files.items()):
        path = directory / _safe_name(name, manifest_path)
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif (actual := sha256_file(path)) != digest:
            problems.append(f"{name} has changed (sha256 {actual[:12]}, expected "
                            f"{str(digest)[:12]})")
    if problems:
        raise IntegrityError(f"Model package {directory} failed its integrity check: "
                             f"{'; '.join(problems)}.",
                             hint="Re-download or re-save the package; never edit the files "
                                  "inside one.")
    return manifest


def manifest_digest(directory: Path) -> str:
    """The sha256 of a package's ``MANIFEST.json``: one digest that pins every file of it
    (the manifest lists each file's sha256, and :func:`verify_package` checks them)."""
    return sha256_file(Path(directory) / MANIFEST_FILE)


def load_package(directory: Path, *, lazy: bool = False) -> ModelPackage:
    """Verify a package, then load it; only trusted types are imported from the model file.

    Args:
        directory: the package.
        lazy: read the model file on first use of ``model`` rather than now.

    Raises:
        NotFound, InvalidInput, IntegrityError: as :func:`verify_package`; IntegrityError
            too when the model file holds a type outside the allow-list.
    """
    directory = Path(directory)
    manifest = verify_package(directory)
    files = manifest["files"]
    signature = Signature.from_dict(_read_json(directory / SIGNATURE_FILE))
    model = None if lazy else load_skops(directory / MODEL_FILE)
    profile = _read_json(directory / PROFILE_FILE) if PROFILE_FILE in files else {}
    metrics = _read_json(directory / METRICS_FILE) if METRICS_FILE in files else {}
    return ModelPackage(model, signature, profile, metrics, manifest, directory)


# -- helpers ------------------------------------------------------------------------------
def _write_model(tmp: Path, model: Any) -> tuple[str, set[str]]:
    """Write model.skops (and the native booster file); return flavor and libraries used."""
    import skops.io as sio

    path = tmp / MODEL_FILE
    try:
        # deflated: skops stores its zip uncompressed by default, and a fitted pipeline's
        # JSON schema (encoders' categories, boosters' model strings) shrinks 3-20x
        sio.dump(model, path, compression=zipfile.ZIP_DEFLATED)
    except Exception as e:  # skops raises TypeError and its own errors for unknown types
        raise InvalidInput(f"The model ({type(model).__name__}) cannot be stored in a safe "
                           f"format: {e}", hint="Build it from scikit-learn, LightGBM or "
                           "XGBoost estimators and Forgeline transformers.") from e
    trusted, refused = untrusted_types(path)
    if refused:  # refuse now rather than write a package that load_package refuses
        raise InvalidInput(refused_message(Path(MODEL_FILE), refused),
                           hint="Replace those parts of the pipeline.")
    flavor = model_flavor(model)
    libraries = {t.partition(".")[0] for t in trusted} & set(NATIVE_FILES)
    libraries |= _step_requirements(model)
    if flavor == "lightgbm":
        final_estimator(model).booster_.save_model(str(tmp / NATIVE_FILES[flavor]))
        libraries.add(flavor)
    elif flavor == "xgboost":
        final_estimator(model).get_booster().save_model(str(tmp / NATIVE_FILES[flavor]))
        libraries.add(flavor)
    return flavor, libraries


def _step_requirements(model: Any) -> set[str]:
    """What the steps of the pipeline say they need (``requirements()``: a sentence-
    embedding step needs its model's package and the library that runs it)."""
    found: set[str] = set()
    for part in pipeline_parts(model):
        needs = getattr(part, "requirements", None)
        if callable(needs):
            found.update(needs())
    return found


def _requirements(libraries: set[str]) -> str:
    lines = []
    for name in sorted({*_BASE_REQUIREMENTS, *libraries}):
        version = _version(name)
        lines.append(f"{name}=={version}" if version else name)
    return "\n".join(lines) + "\n"


def _version(name: str) -> str | None:
    for dist in (name, f"{name}-cpu"):  # xgboost also ships as xgboost-cpu
        try:
            # without a local label (torch's "+cpu"): PyPI has none, and "==2.13.0"
            # accepts 2.13.0+cpu too
            return importlib.metadata.version(dist).partition("+")[0]
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _check_extra_files(extra: Mapping[str, bytes | str]) -> dict[str, bytes | str]:
    checked = {}
    for name, content in extra.items():
        clean = safe_artifact_path(name)
        if clean in _RESERVED:
            raise InvalidInput(f"Extra file {name!r} would replace the package's own {clean}.",
                               hint="Give it another name.")
        if not isinstance(content, bytes | str):
            raise InvalidInput(f"Extra file {name!r} must be bytes or str, got "
                               f"{type(content).__name__}.")
        checked[clean] = content
    return checked


def _safe_name(name: str, manifest_path: Path) -> str:
    pure = PurePosixPath(name)
    if not name or pure.is_absolute() or ".." in pure.parts or "\\" in name:
        raise IntegrityError(f"{manifest_path} lists {name!r}, a path outside the package.",
                             hint="The manifest was tampered with; do not use this package.")
    return name


def _write(path: Path, content: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Path | set | frozenset):
        return str(value) if isinstance(value, Path) else sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json(value: Any) -> str:
    try:
        return json.dumps(value, indent=2, sort_keys=True, default=_json_default) + "\n"
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"Cannot write package JSON: {e}.",
                           hint="Use plain numbers, strings, lists and dicts.") from e


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IntegrityError(f"{path} is not readable JSON ({e}).",
                             hint="Re-download or re-save the package.") from e
