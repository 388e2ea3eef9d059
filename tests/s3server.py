"""A real S3-compatible server on loopback (moto's server mode) and fixtures around it,
shared by every test that needs object storage (registered by ``tests/conftest.py``).

- ``s3_endpoint`` (session): the server's URL.
- ``aws``: the AWS_* variables of this process pointed at it; returns a boto3 client.
- ``bucket``: a fresh bucket named after the test.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

__all__ = ["aws", "aws_env", "bucket", "refusing_server", "s3_endpoint"]


def aws_env(endpoint: str) -> dict[str, str]:
    """The AWS_* variables that point boto3 at ``endpoint`` (moto accepts any key)."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    pytest.importorskip("boto3")
    server_module = pytest.importorskip("moto.server")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    import boto3

    for name, value in aws_env(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    return boto3.client("s3")


@pytest.fixture
def bucket(aws: Any, request: pytest.FixtureRequest) -> str:
    name = "fl-" + hashlib.sha1(request.node.name.encode()).hexdigest()[:12]
    aws.create_bucket(Bucket=name)
    return name


@contextlib.contextmanager
def refusing_server(bucket: str) -> Iterator[str]:
    """A server of its own with ``bucket`` in it that checks keys (moto's IAM access
    control, on once the bucket exists): keys it does not know are refused as a real S3
    would. Yields its URL. The setting is global to moto in this process: it is back to
    no checks on leaving."""
    import boto3
    import httpx
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                     aws_access_key_id="unknown", aws_secret_access_key="wrong"
                     ).create_bucket(Bucket=bucket)
        assert httpx.post(f"{url}/moto-api/reset-auth", content=b"0").status_code == 200
        yield url
    finally:
        httpx.post(f"{url}/moto-api/reset-auth", content=b"inf")
        server.stop()
