"""Batch scoring of Parquet partitions, one task per partition: local files and S3
objects (a real S3 server on loopback), in this process and on a real Ray cluster started
with ``ray start``; every output or none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from forgeline.errors import AlreadyExists, InvalidInput, NotFound
from forgeline.packaging import load_model
from forgeline.serving.batch import score_file
from forgeline.serving.partitioned import score_partitions
from tests.raycluster import RayCluster
from tests.s3server import aws_env
from tests.smallmodel import package_on, transactions

FORGELINE = Path(sys.executable).with_name("forgeline")


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package_on(transactions(2_000, 0), tmp_path_factory.mktemp("model") / "model")


def _partitions(folder: Path) -> list[pd.DataFrame]:
    parts = [transactions(n, seed) for seed, n in enumerate((700, 1, 1_300), start=1)]
    for i, part in enumerate(parts):
        path = folder / f"day={i}" / f"part-{i}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        part.drop(columns=["label"]).to_parquet(path, index=False)
    return parts


def _expected(package: Path, frames: list[pd.DataFrame], tmp_path: Path) -> pd.DataFrame:
    whole = pd.concat(frames, ignore_index=True).drop(columns=["label"])
    whole.to_parquet(tmp_path / "whole.parquet", index=False)
    score_file(load_model(package), tmp_path / "whole.parquet", tmp_path / "whole.scores.parquet",
               runtime="native")
    return pd.read_parquet(tmp_path / "whole.scores.parquet")


def test_local_partitions_score_as_the_whole_file_does(package: Path, tmp_path: Path) -> None:
    frames = _partitions(tmp_path / "in")
    summary = score_partitions(package, str(tmp_path / "in" / "**" / "*.parquet"),
                               str(tmp_path / "out"), chunk_rows=256, runtime="native")
    assert summary.rows == sum(len(f) for f in frames)
    outputs = sorted((tmp_path / "out").rglob("*.parquet"))
    assert [p.relative_to(tmp_path / "out").as_posix() for p in outputs] == [
        "day=0/part-0.scores.parquet", "day=1/part-1.scores.parquet",
        "day=2/part-2.scores.parquet"]  # the inputs' layout
    got = pd.concat([pd.read_parquet(p) for p in outputs], ignore_index=True)
    pd.testing.assert_frame_equal(got, _expected(package, frames, tmp_path))
    with pytest.raises(AlreadyExists, match=r"part-0\.scores\.parquet exists already \(3 of"):
        score_partitions(package, str(tmp_path / "in" / "**" / "*.parquet"),
                         str(tmp_path / "out"))


def test_a_bad_partition_is_named_and_no_output_is_left(package: Path, tmp_path: Path) -> None:
    _partitions(tmp_path / "in")
    (tmp_path / "in" / "day=3").mkdir()
    (tmp_path / "in" / "day=3" / "part-3.parquet").write_text("not parquet")
    with pytest.raises(InvalidInput, match=r"Partition .*day=3/part-3\.parquet cannot be "
                                           r"read as Parquet"):
        score_partitions(package, str(tmp_path / "in" / "*" / "*.parquet"), str(tmp_path / "o"))
    assert not [p for p in (tmp_path / "o").rglob("*") if p.is_file()]
    (tmp_path / "in" / "day=3" / "part-3.parquet").unlink()
    pd.DataFrame({"amount": [1.0]}).to_parquet(tmp_path / "in" / "day=3" / "part-3.parquet")
    with pytest.raises(InvalidInput, match=r"day=3/part-3\.parquet lacks 1 of the model's "
                                           r"columns: country"):
        score_partitions(package, str(tmp_path / "in" / "*" / "*.parquet"), str(tmp_path / "o"))
    assert not [p for p in (tmp_path / "o").rglob("*") if p.is_file()]
    with pytest.raises(NotFound, match=r"No file matches .*nothing-\*\.parquet"):
        score_partitions(package, str(tmp_path / "nothing-*.parquet"), str(tmp_path / "o"))


def _keys(aws: Any, bucket: str, prefix: str) -> list[str]:
    found = aws.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return sorted(item["Key"] for item in found)


def test_s3_partitions_on_a_ray_cluster_through_the_command(
        package: Path, ray_cluster: RayCluster, aws: Any, bucket: str, s3_endpoint: str,
        tmp_path: Path) -> None:
    frames = _partitions(tmp_path / "in")
    for path in sorted((tmp_path / "in").rglob("*.parquet")):
        aws.upload_file(str(path), bucket, f"events/{path.relative_to(tmp_path / 'in')}")
    env = {**ray_cluster.env, **aws_env(s3_endpoint), "COLUMNS": "200"}
    pattern, output = f"s3://{bucket}/events/*/*.parquet", f"s3://{bucket}/scores"
    done = subprocess.run([str(FORGELINE), "predict", str(package), pattern, "-o", output,
                           "--engine", "ray", "--ray-address", ray_cluster.address,
                           "--runtime", "native", "--json"],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["rows"] == sum(len(f) for f in frames) and summary["output"] == output
    keys = _keys(aws, bucket, "scores/")
    assert keys == [f"scores/day={i}/part-{i}.scores.parquet" for i in range(3)]
    local = tmp_path / "got"
    local.mkdir()
    for i, key in enumerate(keys):
        aws.download_file(bucket, key, str(local / f"{i}.parquet"))
    got = pd.concat([pd.read_parquet(local / f"{i}.parquet") for i in range(3)],
                    ignore_index=True)
    pd.testing.assert_frame_equal(got, _expected(package, frames, tmp_path))
    # a partition that is not Parquet: one line naming it, and none of the run's outputs
    aws.put_object(Bucket=bucket, Key="events/day=9/part-9.parquet", Body=b"not parquet")
    again = subprocess.run([str(FORGELINE), "predict", str(package), pattern, "-o",
                            f"s3://{bucket}/scores2", "--engine", "ray", "--ray-address",
                            ray_cluster.address, "--no-progress"],
                           capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert again.returncode != 0 and "Traceback" not in again.stderr
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and "day=9/part-9.parquet cannot be read as Parquet" in lines[0]
    assert _keys(aws, bucket, "scores2/") == []
    missing = subprocess.run([str(FORGELINE), "predict", str(package),
                              "s3://no-such-bucket-here/x/*.parquet", "-o", str(tmp_path / "o")],
                             capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert missing.returncode != 0 and len(missing.stderr.strip().splitlines()) == 1
    assert "bucket 'no-such-bucket-here' does not exist" in missing.stderr
    assert os.path.exists(tmp_path / "o") is False
