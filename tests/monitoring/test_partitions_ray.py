"""``forgeline monitor --current 's3://bucket/prefix/*.parquet' --engine ray``: the real
console script joins the session's Ray cluster (a head and a worker started with
``ray start``), whose workers read the partitions from a real S3 server on loopback; the
result equals a single-frame run over the same rows. And every bad input: one line."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from forgeline.monitoring.orchestrator import monitor
from tests.cli.conftest import invoke
from tests.monitoring.conftest import Model
from tests.monitoring.partdata import assert_same, partitions
from tests.raycluster import RayCluster
from tests.s3server import aws_env, refusing_server

pytest.importorskip("boto3")

FORGELINE = Path(sys.executable).with_name("forgeline")
SRC = str(Path(__file__).resolve().parents[2] / "src")


def _upload(client: Any, bucket: str, frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The frames as s3://bucket/prod/day=1/part-<i>.parquet (and a file the pattern does
    not match); returns them read back and concatenated, as one file would hold them."""
    read = []
    for i, frame in enumerate(frames):
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        client.put_object(Bucket=bucket, Key=f"prod/day=1/part-{i}.parquet",
                          Body=buffer.getvalue())
        read.append(pd.read_parquet(io.BytesIO(buffer.getvalue())))
    client.put_object(Bucket=bucket, Key="prod/day=1/_SUCCESS", Body=b"")
    return pd.concat(read, ignore_index=True)


def test_ray_workers_read_s3_partitions_and_the_result_is_the_whole(
        model: Model, registered: Path, aws: Any, bucket: str, s3_endpoint: str,
        ray_cluster: RayCluster, tmp_path: Path) -> None:
    whole = monitor(model.predictor, _upload(aws, bucket, partitions(
        1_500, model.predictor))).to_dict()
    env = {**ray_cluster.env, **aws_env(s3_endpoint), "COLUMNS": "200",
           "PYTHONPATH": os.pathsep.join([SRC, ray_cluster.env.get("PYTHONPATH", "")])}
    env = {k: v for k, v in env.items() if not k.startswith("FORGELINE_")}
    done = subprocess.run(
        [str(FORGELINE), "monitor", "fraud@champion", "--current",
         f"s3://{bucket}/prod/*/part-*.parquet", "--engine", "ray", "--ray-address",
         ray_cluster.address, "--json", "-o", "ray.html"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(done.stdout)
    assert_same(data, whole)
    assert data["rows"] == 6_000 and data["dataset"]["n_drifted"] > 0
    assert data["quality"]["columns"]["c0"]["unseen_examples"] == ["new1", "new0", "rare"]
    assert "fraud v1: 6,000 rows" in done.stderr and Path(tmp_path / "ray.html").is_file()
    records = json.loads(invoke("monitor", "history", "fraud", "--json").stdout)
    assert [r["rows"] for r in records] == [6_000]


def test_object_storage_problems_are_one_line_and_nothing_is_written(
        model: Model, registered: Path, aws: Any, bucket: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _upload(aws, bucket, partitions(50))
    local = invoke("monitor", "fraud@champion", "--current",
                   f"s3://{bucket}/prod/day=1/part-*.parquet", "--json", "-o", "s3.html")
    assert local.exit_code == 0, local.output  # the local engine reads S3 too
    assert json.loads(local.stdout)["rows"] == 200
    Path("s3.html").unlink()
    history = len(json.loads(invoke("monitor", "history", "fraud", "--json").stdout))
    cases = [
        (f"s3://{bucket}/prod/nothing-*.parquet", 3,
         f"error: No file matches s3://{bucket}/prod/nothing-*.parquet."),
        ("s3://no-such-bucket/prod/*.parquet", 7, "error: Object storage bucket "
         "'no-such-bucket' does not exist (s3://no-such-bucket/prod/*.parquet)."),
        (f"s3://{bucket}/prod/day=1/_SUCCESS", 2, f"error: Partition s3://{bucket}/prod/"
         "day=1/_SUCCESS cannot be read as Parquet"),
    ]
    for pattern, code, line in cases:
        result = invoke("monitor", "fraud@champion", "--current", pattern)
        assert result.exit_code == code, (pattern, result.output)
        assert result.output.startswith(line), (pattern, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
    with refusing_server("guarded") as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        refused = invoke("monitor", "fraud@champion", "--current", "s3://guarded/*.parquet")
    assert refused.exit_code == 7, refused.output
    assert refused.output.startswith("error: Object storage refused the credentials for "
                                     "s3://guarded/*.parquet (403). Check AWS_ACCESS_KEY_ID")
    assert len(refused.output.strip().splitlines()) == 1, refused.output
    assert not list(Path().glob("*.html"))
    assert len(json.loads(invoke("monitor", "history", "fraud", "--json").stdout)) == history


def test_an_unreachable_ray_cluster_is_one_line(model: Model, registered: Path,
                                                tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    partitions(50)[0].to_parquet(tmp_path / "data" / "part-0.parquet")
    result = invoke("monitor", "fraud@champion", "--current", "data/*.parquet",
                    "--engine", "ray", "--ray-address", "127.0.0.1:9")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: No Ray cluster answers at 127.0.0.1:9")
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not Path("fraud-monitor.html").exists()
    assert json.loads(invoke("monitor", "history", "fraud", "--json").stdout) == []
