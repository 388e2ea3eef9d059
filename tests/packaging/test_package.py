"""The on-disk package: round trips per model kind, the manifest, integrity, trust, atomicity."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import make_pipeline

from forgeline.errors import AlreadyExists, IntegrityError, InvalidInput, NotFound
from forgeline.packaging import load_package, save_package
from forgeline.packaging import package as package_module
from forgeline.packaging._trust import is_trusted
from forgeline.store.artifacts import sha256_file
from tests.packaging.conftest import MODEL_KINDS, Trained

FLAVORS = {"hgb": "sklearn", "logreg": "sklearn", "forest": "sklearn", "lgbm": "lightgbm",
           "xgb": "xgboost"}


class Doubler(BaseEstimator, TransformerMixin):
    """A transformer from a module outside the allow-list."""

    def fit(self, X: object, y: object = None) -> Doubler:
        return self

    def transform(self, X: object) -> object:
        return X


def save(trained: Trained, directory: Path, **kwargs: object) -> Path:
    return save_package(directory, trained.model, trained.signature,
                        profile={"rows": np.int64(len(trained.X))},
                        metrics={"score": np.float64(0.5)}, card="# Model\n", **kwargs)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_round_trip_predicts_identically(kind: str, trained_models: dict[str, Trained],
                                         tmp_path: Path) -> None:
    trained = trained_models[kind]
    package = load_package(save(trained, tmp_path / "pkg"))
    X = trained.X
    np.testing.assert_array_equal(package.model.predict(X), trained.model.predict(X))
    if trained.task != "regression":
        np.testing.assert_array_equal(package.model.predict_proba(X),
                                      trained.model.predict_proba(X))
    assert package.signature == trained.signature
    assert (package.profile, package.metrics) == ({"rows": len(X)}, {"score": 0.5})
    assert package.card == "# Model\n"
    assert package.flavor == FLAVORS[kind.split("-")[0]]


def test_manifest_lists_every_file_with_its_sha256(binary: Trained, tmp_path: Path) -> None:
    directory = save(binary, tmp_path / "pkg", extra_files={"plots/roc.html": "<html/>",
                                                            "raw.bin": b"\x00\x01"})
    manifest = json.loads((directory / "MANIFEST.json").read_text())
    assert manifest["format"] == 1 and manifest["flavor"] == "sklearn"
    assert manifest["created"].endswith("+00:00")
    on_disk = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == on_disk - {"MANIFEST.json"}
    assert {"model.skops", "signature.json", "profile.json", "metrics.json", "card.md",
            "requirements.txt", "plots/roc.html", "raw.bin"} <= set(manifest["files"])
    for name, digest in manifest["files"].items():
        assert sha256_file(directory / name) == digest
    assert (directory / "raw.bin").read_bytes() == b"\x00\x01"
    requirements = (directory / "requirements.txt").read_text().splitlines()
    names = [line.split("==")[0] for line in requirements]
    assert names == ["forgeline", "numpy", "pandas", "scikit-learn", "scipy", "skops"]
    assert all("==" in line for line in requirements)


def test_lightgbm_package_has_the_native_booster(trained_models: dict[str, Trained],
                                                 tmp_path: Path) -> None:
    import lightgbm as lgb

    trained = trained_models["lgbm-binary"]
    directory = save(trained, tmp_path / "pkg")
    assert "lightgbm==" in (directory / "requirements.txt").read_text()
    booster = lgb.Booster(model_file=str(directory / "model.lgb.txt"))
    features = trained.model[:-1].transform(trained.X)
    np.testing.assert_allclose(booster.predict(features),
                               trained.model.predict_proba(trained.X)[:, 1])


def test_a_changed_file_is_named(binary: Trained, tmp_path: Path) -> None:
    directory = save(binary, tmp_path / "pkg")
    model_file = directory / "model.skops"
    model_file.write_bytes(model_file.read_bytes() + b"tampered")
    with pytest.raises(IntegrityError, match=r"failed its integrity check: model.skops has "
                                             r"changed \(sha256 [0-9a-f]{12}, expected "):
        load_package(directory)


def test_missing_files_are_all_named(binary: Trained, tmp_path: Path) -> None:
    directory = save(binary, tmp_path / "pkg")
    (directory / "metrics.json").unlink()
    (directory / "card.md").unlink()
    missing = re.escape("card.md is missing; metrics.json is missing")
    with pytest.raises(IntegrityError, match=missing):
        load_package(directory)


def test_unlisted_files_are_ignored(binary: Trained, tmp_path: Path) -> None:
    directory = save(binary, tmp_path / "pkg")
    (directory / "notes.txt").write_text("added later")
    assert load_package(directory).signature == binary.signature


def test_a_manifest_pointing_outside_the_package_is_refused(binary: Trained,
                                                            tmp_path: Path) -> None:
    directory = save(binary, tmp_path / "pkg")
    manifest = json.loads((directory / "MANIFEST.json").read_text())
    manifest["files"]["../secret"] = "0" * 64
    (directory / "MANIFEST.json").write_text(json.dumps(manifest))
    outside = re.escape("lists '../secret', a path outside the package")
    with pytest.raises(IntegrityError, match=outside):
        load_package(directory)


def test_untrusted_types_in_the_model_file_are_refused(binary: Trained,
                                                       tmp_path: Path) -> None:
    directory = save(binary, tmp_path / "pkg")
    model_file = directory / "model.skops"
    sio.dump(make_pipeline(Doubler(), binary.model), model_file)
    manifest = json.loads((directory / "MANIFEST.json").read_text())
    manifest["files"]["model.skops"] = sha256_file(model_file)
    (directory / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match=r"contains types Forgeline does not trust: "
                                             r"tests\.packaging\.test_package\.Doubler\."):
        load_package(directory)


def test_save_refuses_a_model_load_would_refuse(binary: Trained, tmp_path: Path) -> None:
    model = make_pipeline(Doubler(), binary.model)
    with pytest.raises(InvalidInput, match=re.escape("tests.packaging.test_package.Doubler")):
        save_package(tmp_path / "pkg", model, binary.signature, profile={}, metrics={},
                     card="")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(("name", "allowed"), [
    ("sklearn.tree._tree.Tree", True), ("numpy.dtype", True),
    ("lightgbm.basic.Booster", True), ("collections.OrderedDict", True),
    ("forgeline.training.features.Categories", True), ("builtins.eval", False),
    ("builtins.getattr", False), ("os.system", False), ("numpy.load", False),
    ("numpy.memmap", False), ("numpy.lib.npyio.NpzFile", False),
    ("numpy.ctypeslib.load_library", False), ("sklearn.datasets.fetch_openml", False),
    ("forgeline.tracking.client.Client", False), ("pickle.loads", False)])
def test_trust_allow_list(name: str, allowed: bool) -> None:
    assert is_trusted(name) is allowed


def test_a_failed_save_leaves_nothing_behind(binary: Trained, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(libraries: set[str]) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(package_module, "_requirements", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        save(binary, tmp_path / "pkg")
    assert os.listdir(tmp_path) == []  # neither the package nor its temporary sibling


def test_existing_directories(binary: Trained, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert load_package(save(binary, tmp_path / "empty")).signature == binary.signature
    with pytest.raises(AlreadyExists, match="exists and is not empty"):
        save(binary, tmp_path / "empty")


def test_bad_extra_files_are_refused(binary: Trained, tmp_path: Path) -> None:
    reserved = re.escape("would replace the package's own model.skops")
    with pytest.raises(InvalidInput, match=reserved):
        save(binary, tmp_path / "a", extra_files={"model.skops": b""})
    with pytest.raises(InvalidInput, match="escapes its run"):
        save(binary, tmp_path / "b", extra_files={"../x": b""})
    assert os.listdir(tmp_path) == []


def test_not_a_package(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="No model package at"):
        load_package(tmp_path / "nowhere")
    with pytest.raises(InvalidInput, match=re.escape("is not a Forgeline model package: it "
                                                     "has no MANIFEST.json")):
        load_package(tmp_path)


def test_a_newer_format_is_refused(binary: Trained, tmp_path: Path) -> None:
    directory = save(binary, tmp_path / "pkg")
    manifest = json.loads((directory / "MANIFEST.json").read_text())
    (directory / "MANIFEST.json").write_text(json.dumps({**manifest, "format": 2}))
    with pytest.raises(InvalidInput, match="format 2; this Forgeline reads format 1"):
        load_package(directory)
