"""Artifacts: content addressing, atomic writes, integrity, paths that cannot escape."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import forgeline as fl
from forgeline.errors import IntegrityError, InvalidInput, NotFound
from forgeline.store.artifacts import LocalArtifactStore, safe_artifact_path


def test_put_get_dedupe(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "art")
    src = tmp_path / "a.bin"
    src.write_bytes(b"hello" * 1000)
    digest = store.put(src)
    assert digest == hashlib.sha256(b"hello" * 1000).hexdigest()
    assert store.put(src) == digest and list(store.list()) == [digest]
    assert store.get(digest).read_bytes() == b"hello" * 1000
    assert store.exists(digest) and not store.exists("0" * 64)
    assert list((tmp_path / "art" / "tmp").iterdir()) == []  # no temporary left behind


def test_changed_bytes_raise_integrity_error(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "art")
    src = tmp_path / "model.bin"
    src.write_bytes(b"weights")
    digest = store.put(src)
    target = store.get(digest)
    os.chmod(target, 0o644)
    target.write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match=f"Artifact {digest[:12]} .* is corrupt"):
        store.get(digest)


def test_missing_object_and_bad_digest(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "art")
    with pytest.raises(NotFound, match="is missing"):
        store.get("a" * 64)
    with pytest.raises(InvalidInput, match="expected 64 hex digits"):
        store.get("../../etc/passwd")


@pytest.mark.parametrize("name", ["../secret", "a/../../b", "/etc/passwd", "a\\b", "", " ",
                                  ".", "a/\x00"])
def test_artifact_paths_cannot_escape_their_run(name: str) -> None:
    with pytest.raises(InvalidInput):
        safe_artifact_path(name)


def test_safe_paths_are_normalised() -> None:
    assert safe_artifact_path("./model//weights.bin") == "model/weights.bin"


def test_logging_and_downloading_a_directory(tmp_path: Path) -> None:
    model = tmp_path / "model_dir"
    (model / "sub").mkdir(parents=True)
    (model / "model.bin").write_bytes(b"\x00\x01" * 100)
    (model / "sub" / "signature.json").write_text('{"inputs": []}')
    with fl.start_run(experiment="fraud") as run:
        stored = run.log_artifact(model, "model")
        run.log_artifact(model / "model.bin", "copies")
    assert stored == ["model/model.bin", "model/sub/signature.json"]
    client = fl.Client()
    out = client.download_artifacts(run.run_id, "model", tmp_path / "out")
    assert (out / "sub" / "signature.json").read_text() == '{"inputs": []}'
    assert (tmp_path / "out" / "copies" / "model.bin").exists() is False
    assert len(list(client.artifacts.list())) == 2  # the copy is stored once
    with pytest.raises(InvalidInput, match="escapes its run"):
        client.list_artifacts(run.run_id, "../x")
    with pytest.raises(InvalidInput, match="escapes its run"), \
            fl.start_run(experiment="fraud") as bad:
        bad.log_artifact(model / "model.bin", "../../outside")
    with pytest.raises(NotFound, match="has no artifacts under 'nothing'"):
        client.download_artifacts(run.run_id, "nothing", tmp_path / "o2")


def test_a_corrupted_artifact_is_caught_on_download(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"weights")
    with fl.start_run(experiment="fraud") as run:
        run.log_artifact(tmp_path / "w.bin")
    client = fl.Client()
    (artifact,) = client.list_artifacts(run.run_id)
    obj = client.artifacts.get(artifact.digest)
    os.chmod(obj, 0o644)
    obj.write_bytes(b"evil")
    with pytest.raises(IntegrityError):
        client.download_artifacts(run.run_id, dst=tmp_path / "dl")
    assert not (tmp_path / "dl" / "w.bin").exists()
