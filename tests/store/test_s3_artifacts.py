"""S3ArtifactStore against a real S3-compatible server on loopback (moto's server mode)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("boto3")
pytest.importorskip("moto.server")

from boto3.s3.transfer import TransferConfig

import forgeline as fl
from forgeline.errors import IntegrityError, NotFound, StoreError
from forgeline.store import get_store, open_artifact_store
from forgeline.store.s3_artifacts import S3ArtifactStore, _HashingReader
from tests.s3server import refusing_server

MB = 1 << 20


def _small_parts() -> TransferConfig:
    return TransferConfig(multipart_threshold=5 * MB, multipart_chunksize=5 * MB,
                          use_threads=False)


def test_round_trip_with_the_local_layout_and_digest_metadata(aws: Any, bucket: str,
                                                              tmp_path: Path) -> None:
    store = S3ArtifactStore(f"s3://{bucket}/team/art", cache=tmp_path / "cache")
    source = tmp_path / "a.txt"
    source.write_text("precious")
    digest = store.put(source)
    assert digest == hashlib.sha256(b"precious").hexdigest()
    assert store.put(source) == digest  # stored once
    key = f"team/art/objects/{digest[:2]}/{digest[2:]}"
    assert aws.head_object(Bucket=bucket, Key=key)["Metadata"]["sha256"] == digest
    assert store.get(digest).read_text() == "precious"
    assert store.exists(digest) and not store.exists("0" * 64)
    assert list(store.list()) == [digest]
    with pytest.raises(NotFound, match="is missing from s3://"):
        store.get("1" * 64)
    assert isinstance(open_artifact_store(f"s3://{bucket}/team/art"), S3ArtifactStore)


def test_a_large_file_goes_up_in_parts_and_comes_back_verified(aws: Any, bucket: str,
                                                               tmp_path: Path) -> None:
    store = S3ArtifactStore(f"s3://{bucket}/p", cache=tmp_path / "cache",
                            transfer_config=_small_parts())
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(20 * MB))
    digest = store.put(source)
    head = aws.head_object(Bucket=bucket, Key=f"p/objects/{digest[:2]}/{digest[2:]}")
    assert "-" in head["ETag"]  # a multipart upload's ETag: "<md5 of md5s>-<parts>"
    assert head["ContentLength"] == 20 * MB
    assert store.get(digest).read_bytes() == source.read_bytes()


def test_a_corrupted_object_is_refused(aws: Any, bucket: str, tmp_path: Path) -> None:
    store = S3ArtifactStore(f"s3://{bucket}/p", cache=tmp_path / "cache")
    source = tmp_path / "a.txt"
    source.write_text("precious")
    digest = store.put(source)
    aws.put_object(Bucket=bucket, Key=f"p/objects/{digest[:2]}/{digest[2:]}", Body=b"tampered")
    with pytest.raises(IntegrityError, match=f"Artifact {digest[:12]} in s3://.* is corrupt"):
        store.get(digest)
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))  # nothing kept


def test_an_interrupted_upload_leaves_nothing(aws: Any, bucket: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    store = S3ArtifactStore(f"s3://{bucket}/p", cache=tmp_path / "cache",
                            transfer_config=_small_parts())
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(20 * MB))
    read = _HashingReader.read
    seen = [0]

    def failing(self: _HashingReader, size: int = -1) -> bytes:
        if seen[0] >= 10 * MB:
            raise OSError("disk gone")
        chunk = read(self, size)
        seen[0] += len(chunk)
        return chunk

    monkeypatch.setattr(_HashingReader, "read", failing)
    with pytest.raises((OSError, StoreError)):
        store.put(source)
    assert seen[0] >= 10 * MB  # parts were really sent before the failure
    assert aws.list_objects_v2(Bucket=bucket, Prefix="p/").get("Contents", []) == []
    assert aws.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_missing_bucket_is_one_clear_error(aws: Any) -> None:
    with pytest.raises(StoreError, match="bucket 'no-such-bucket' does not exist") as e:
        S3ArtifactStore("s3://no-such-bucket/p")
    assert e.value.hint and "Create the bucket" in e.value.hint


def test_wrong_credentials_are_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with refusing_server("guarded") as url:
        for name, value in {"AWS_ENDPOINT_URL": url, "AWS_REGION": "us-east-1",
                            "AWS_ACCESS_KEY_ID": "unknown", "AWS_SECRET_ACCESS_KEY": "wrong"
                            }.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(StoreError, match="refused the credentials for s3://guarded/p") as e:
            S3ArtifactStore("s3://guarded/p")
        assert e.value.hint and "AWS_ACCESS_KEY_ID" in e.value.hint


def test_an_unreachable_endpoint_is_one_clear_error(aws: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(StoreError, match="Cannot reach the object storage endpoint") as e:
        S3ArtifactStore("s3://any-bucket/p")
    assert e.value.hint and "AWS_ENDPOINT_URL" in e.value.hint


def test_the_team_server_keeps_a_clients_artifacts_in_s3(aws: Any, bucket: str,
                                                         tmp_path: Path) -> None:
    from tests.teamserver import team_server

    store = get_store(f"sqlite:///{tmp_path / 'team.db'}")
    with team_server(store, tmp_path / "unused") as server:
        server.app.state.artifacts = S3ArtifactStore(f"s3://{bucket}/team",
                                                     cache=tmp_path / "server-cache")
        source = tmp_path / "model.bin"
        source.write_bytes(os.urandom(3 * MB))
        client = fl.Client(server.url, artifact_root=tmp_path / "client-cache")
        with client.start_run("fraud") as run:
            run.log_artifact(source)
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        assert aws.head_object(Bucket=bucket, Key=f"team/objects/{digest[:2]}/{digest[2:]}")
        out = client.download_artifacts(run.run_id, "model.bin", tmp_path / "out")
        assert out.read_bytes() == source.read_bytes()


def test_the_server_command_says_in_one_line_that_the_bucket_is_missing(aws: Any,
                                                                        tmp_path: Path) -> None:
    from tests.cli.conftest import invoke

    result = invoke("server", "--store", f"sqlite:///{tmp_path / 'team.db'}",
                    "--artifacts", "s3://no-such-bucket/team")
    assert result.exit_code != 0
    assert "bucket 'no-such-bucket' does not exist" in result.output
    assert "Traceback" not in result.output
