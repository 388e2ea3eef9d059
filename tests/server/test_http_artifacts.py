"""Artifact bytes through the team server: streamed, stored once, checked both ways."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import forgeline as fl
from forgeline.errors import IntegrityError, InvalidInput, NotFound
from forgeline.store.http.artifacts import HttpArtifactStore
from tests.server.conftest import Team


def test_a_run_logs_and_downloads_files_through_the_server(team: Team, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.bin").write_bytes(os.urandom(3 << 20))  # several chunks
    (folder / "sub" / "card.md").write_text("# card")
    client = fl.Client(team.url, artifact_root=tmp_path / "cache")
    assert isinstance(client.artifacts, HttpArtifactStore)
    with client.start_run("fraud") as run:
        run.log_artifact(folder, "model")
        run.log_artifact(folder / "sub" / "card.md")  # the same bytes again: not re-sent
    digest = hashlib.sha256((folder / "model.bin").read_bytes()).hexdigest()
    assert digest in {a.digest for a in team.store.list_artifacts(run.run_id, "model")}
    assert len(list(client.artifacts.list())) == 2
    out = client.download_artifacts(run.run_id, "model", tmp_path / "out")
    assert (out / "model.bin").read_bytes() == (folder / "model.bin").read_bytes()
    assert (out / "sub" / "card.md").read_text() == "# card"
    assert (tmp_path / "cache" / "objects" / digest[:2] / digest[2:]).is_file()
    with team.http() as http:  # by path in the run, as a browser or curl would
        answer = http.get(f"/runs/{run.run_id}/artifacts/model/sub/card.md")
        assert answer.status_code == 200 and answer.text == "# card"
        assert http.get(f"/runs/{run.run_id}/artifacts/model/nope").status_code == 404


def test_corruption_is_caught_on_the_server_and_in_the_cache(team: Team, tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_text("precious")
    artifacts = HttpArtifactStore(team.remote(), tmp_path / "cache")
    digest = artifacts.put(source)
    assert artifacts.exists(digest) and not artifacts.exists("0" * 64)
    stored = team.artifacts / "objects" / digest[:2] / digest[2:]
    os.chmod(stored, 0o644)
    stored.write_text("tampered")
    with pytest.raises(IntegrityError, match=f"Artifact {digest[:12]} .* is corrupt"):
        artifacts.get(digest)
    assert not (tmp_path / "cache" / "objects").exists()  # nothing kept
    stored.write_text("precious")
    assert artifacts.get(digest).read_text() == "precious"
    cached = tmp_path / "cache" / "objects" / digest[:2] / digest[2:]
    os.chmod(cached, 0o644)
    cached.write_text("rotten")
    with pytest.raises(IntegrityError):
        artifacts.get(digest)
    with pytest.raises(NotFound, match="is missing from"):
        artifacts.get("1" * 64)
    with pytest.raises(InvalidInput, match="Invalid artifact digest"):
        artifacts.get("xyz")
    with pytest.raises(NotFound, match="no such file"):
        artifacts.put(tmp_path / "nope")
