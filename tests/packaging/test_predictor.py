"""The predictor and load_model: from a directory and through the registry, end to end."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import forgeline as fl
from forgeline.errors import IntegrityError, InvalidInput, NotFound
from forgeline.packaging import Predictor, load_model, save_package
from tests.packaging.conftest import Trained


def save(trained: Trained, directory: Path) -> Path:
    return save_package(directory, trained.model, trained.signature, profile={"rows": 1},
                        metrics={"auc": 0.9}, card="# fraud\n")


def register(trained: Trained, tmp_path: Path, name: str = "fraud") -> fl.ModelVersion:
    """Train-and-register as the training orchestrator will: package, log, register."""
    package = save(trained, tmp_path / f"pkg-{name}-{len(list(tmp_path.iterdir()))}")
    with fl.start_run(experiment="e") as run:
        run.log_artifact(package, "model")
    return fl.Client().register_model(name, run.run_id, "model")


def test_registered_model_loads_by_every_reference(binary: Trained, tmp_path: Path) -> None:
    client = fl.Client()
    mv = register(binary, tmp_path)
    client.set_alias("fraud", "champion", mv.version)
    expected = binary.model.predict(binary.X)
    for ref in ("fraud@champion", "fraud/1", "fraud"):
        predictor = load_model(ref)
        assert predictor.model_version is not None and predictor.model_version.ref == "fraud/1"
        np.testing.assert_array_equal(predictor.predict(binary.X), expected)
    cached = Path(fl.Client().settings.home).absolute() / "models" / "fraud" / "1"
    assert predictor.path == cached and (cached / "MANIFEST.json").is_file()
    assert predictor.metrics == {"auc": 0.9} and predictor.profile == {"rows": 1}
    assert repr(predictor) == "Predictor('fraud/1', task='binary', inputs=6)"


def test_the_cache_is_reused_and_repaired(binary: Trained, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    register(binary, tmp_path)
    cache = tmp_path / "cache"
    first = load_model("fraud/1", cache_dir=cache)
    assert first.path == cache / "fraud" / "1"
    client = fl.Client()
    calls: list[str] = []
    real = client.download_model
    monkeypatch.setattr(client, "download_model",
                        lambda ref, dst: calls.append(ref) or real(ref, dst))
    load_model("fraud/1", client=client, cache_dir=cache)
    assert calls == []  # verified copy reused
    (first.path / "model.skops").write_bytes(b"corrupt")
    again = load_model("fraud/1", client=client, cache_dir=cache)
    assert calls == ["fraud/1"]
    np.testing.assert_array_equal(again.predict(binary.X), binary.model.predict(binary.X))
    assert [p.name for p in (cache / "fraud").iterdir()] == ["1"]  # no temporary left


def test_a_newer_version_is_a_new_cache_entry(binary: Trained, regression: Trained,
                                              tmp_path: Path) -> None:
    register(binary, tmp_path)
    register(regression, tmp_path)
    assert load_model("fraud").signature.task == "regression"
    assert load_model("fraud/1").signature.task == "binary"


def test_load_model_from_a_directory(binary: Trained, tmp_path: Path) -> None:
    directory = save(binary, tmp_path / "pkg")
    for ref in (directory, str(directory)):
        predictor = load_model(ref)
        assert predictor.model_version is None and predictor.path == directory
        np.testing.assert_array_equal(predictor.predict(binary.X),
                                      binary.model.predict(binary.X))


def test_unknown_references(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_model("nosuchmodel@champion")
    with pytest.raises(NotFound, match="No model package at"):
        load_model(tmp_path / "missing")
    with pytest.raises(NotFound, match=re.escape("No model package directory at './missing/dir'")):
        load_model("./missing/dir")
    with pytest.raises(InvalidInput, match="Invalid model name"):
        load_model("bad name!")


def test_a_registered_version_that_is_not_a_package(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "model.bin").write_bytes(b"x")
    with fl.start_run(experiment="e") as run:
        run.log_artifact(tmp_path / "plain", "model")
    fl.Client().register_model("plain", run.run_id, "model")
    with pytest.raises(InvalidInput, match="plain/1 is not a Forgeline model package"):
        load_model("plain")


def test_a_tampered_local_package_is_refused(binary: Trained, tmp_path: Path) -> None:
    directory = save(binary, tmp_path / "pkg")
    (directory / "signature.json").write_text("{}")
    with pytest.raises(IntegrityError, match=re.escape("signature.json has changed")):
        load_model(directory)


def test_predict_validates_and_accepts_records(binary: Trained, tmp_path: Path) -> None:
    predictor = load_model(save(binary, tmp_path / "pkg"))
    X = binary.X.head(3)
    records = X.assign(when=X["when"].astype(str)).to_dict("records")
    expected = binary.model.predict(X)
    np.testing.assert_array_equal(predictor.predict(records), expected)
    np.testing.assert_array_equal(predictor.predict(records[0]), expected[:1])
    shuffled = X[list(reversed(X.columns))].assign(extra=0)
    np.testing.assert_array_equal(predictor.predict(shuffled), expected)
    with pytest.raises(InvalidInput, match="missing column 'amount'"):
        predictor.predict(X.drop(columns="amount"))


def test_predict_proba_columns_are_the_classes(binary: Trained, tmp_path: Path) -> None:
    predictor = load_model(save(binary, tmp_path / "pkg"))
    X = binary.X.head(4).set_axis([10, 11, 12, 13])
    proba = predictor.predict_proba(X)
    assert list(proba.columns) == ["fraud", "ok"] and list(proba.index) == [10, 11, 12, 13]
    np.testing.assert_allclose(proba.to_numpy(), binary.model.predict_proba(X))
    assert isinstance(predictor, Predictor)


def test_predict_proba_on_regression_is_refused(regression: Trained, tmp_path: Path) -> None:
    predictor = load_model(save(regression, tmp_path / "pkg"))
    assert predictor.predict(regression.X.head(2)).dtype == np.float64
    with pytest.raises(InvalidInput, match=re.escape(
            "predict_proba needs a classifier; this is a regression model. Use predict.")):
        predictor.predict_proba(regression.X.head(2))


def test_model_errors_on_input_become_invalid_input(binary: Trained, tmp_path: Path) -> None:
    directory = save(binary, tmp_path / "pkg")
    predictor = load_model(directory)
    X = binary.X.head(2).assign(note=pd.Series([None, None], dtype=object))
    # TF-IDF cannot read missing text: the model's own ValueError reaches the caller as
    # InvalidInput, never as a bare ValueError.
    with pytest.raises(InvalidInput, match="The model could not score the input"):
        predictor.predict(X)
    shutil.rmtree(directory)
