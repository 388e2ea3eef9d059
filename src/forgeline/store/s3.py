"""The one place that talks to S3-compatible object storage: a client, driver errors
translated into one clear :class:`~forgeline.errors.ForgelineError`, listing and reading.

Used by the artifact store (:mod:`.s3_artifacts`) and by anything that reads data from
``s3://`` URIs (monitoring's partitions). boto3 is imported lazily: only an ``s3://`` URI
pays for it. Endpoint, region and credentials come from the usual AWS variables
(AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), which boto3
reads itself; :data:`AWS_VARIABLES` names those a process forwards to remote workers.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from forgeline.errors import InvalidInput, NotFound, StoreError

__all__ = ["AWS_VARIABLES", "HINT", "MISSING", "delete_objects", "glob_prefix", "list_matching",
           "parse_s3_uri", "read_object", "s3_call", "s3_client", "write_object"]

T = TypeVar("T")
MISSING = ("404", "NoSuchKey", "NotFound")
HINT = ("Set AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for "
        "your object storage, and check the bucket name.")
AWS_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION",
                 "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_CA_BUNDLE")
_GLOB = "*?["


def glob_prefix(pattern: str) -> str:
    """``pattern`` up to its first glob character (``*``, ``?``, ``[``); all of it when it
    has none."""
    cut = min((pattern.find(c) for c in _GLOB if c in pattern), default=len(pattern))
    return pattern[:cut]


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/prefix`` (the prefix without slashes around it)."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise InvalidInput(f"Invalid object storage URI {uri!r}.",
                           hint="Use s3://bucket or s3://bucket/prefix.")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.strip("/")


def s3_call(fn: Callable[[], T], uri: str, missing: str | None = None,
            missing_hint: str = "The object was moved or deleted; restore it.") -> T:
    """Run one S3 call, translating driver errors into one clear ForgelineError.

    Args:
        fn: the call.
        uri: what it is about (``s3://bucket/...``), named in the messages.
        missing: the NotFound message for a missing object (None: a missing object is a
            missing bucket); ``missing_hint`` what to do then.
    """
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    bucket = uri[5:].split("/", 1)[0]
    try:
        return fn()
    except ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", ""))
        if code in MISSING and missing is not None:
            raise NotFound(missing, hint=missing_hint) from e
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise StoreError(f"Object storage bucket {bucket!r} does not exist ({uri}).",
                             hint="Create the bucket or fix the s3:// URI.") from e
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise StoreError(f"Object storage refused the credentials for {uri} ({code}).",
                             hint="Check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.") from e
        raise StoreError(f"Object storage error on {uri}: {e}", hint=HINT) from e
    except EndpointConnectionError as e:
        raise StoreError(f"Cannot reach the object storage endpoint for {uri}: {e}",
                         hint="Check AWS_ENDPOINT_URL and that the server is running.") from e
    except BotoCoreError as e:
        raise StoreError(f"Object storage error on {uri}: {e}", hint=HINT) from e


def s3_client(uri: str, what: str = "Data") -> Any:
    """A boto3 S3 client from the AWS environment variables.

    Raises:
        InvalidInput: boto3 is not installed.
    """
    try:
        import boto3
    except ImportError as e:
        raise InvalidInput(f"{what} at {uri} need(s) boto3, which is not installed.",
                           hint="pip install 'forgeline[s3]'") from e
    return s3_call(lambda: boto3.client("s3"), uri)


def list_matching(pattern: str, client: Any = None) -> list[str]:
    """The ``s3://`` URIs of the objects matching ``pattern`` (sorted by key).

    ``pattern`` is ``s3://bucket/prefix/part-*.parquet``: the prefix before the first glob
    character is listed, and each key matched with :func:`fnmatch.fnmatchcase` (``*``
    also crosses ``/``, as in ``fnmatch``). A pattern without glob characters names one
    object (or every object under it, when it ends with ``/``).

    Raises:
        StoreError: the bucket does not exist, the credentials are refused, the endpoint
            is unreachable.
    """
    bucket, key_pattern = parse_s3_uri(pattern)
    client = client if client is not None else s3_client(pattern)
    prefix = glob_prefix(key_pattern)
    s3_call(lambda: client.head_bucket(Bucket=bucket), pattern)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [item["Key"] for page in s3_call(lambda: list(pages), pattern)
            for item in page.get("Contents", [])]
    if prefix == key_pattern and not pattern.endswith("/"):
        matched = [k for k in keys if k == key_pattern]
    else:
        matched = [k for k in keys if fnmatch.fnmatchcase(k, key_pattern or "*")
                   and not k.endswith("/")]
    return [f"s3://{bucket}/{k}" for k in sorted(matched)]


def read_object(uri: str, client: Any = None) -> bytes:
    """The bytes of the object at ``uri`` (``s3://bucket/key``), read into memory."""
    bucket, key = parse_s3_uri(uri)
    client = client if client is not None else s3_client(uri)
    body = s3_call(lambda: client.get_object(Bucket=bucket, Key=key), uri,
                   missing=f"No object at {uri}.")["Body"]
    return s3_call(lambda: body.read(), uri)


def write_object(path: Path, uri: str, client: Any = None) -> None:
    """Upload the file at ``path`` to ``uri`` (``s3://bucket/key``): boto3's managed
    transfer, in parts for a large file; the object is visible only once complete."""
    bucket, key = parse_s3_uri(uri)
    client = client if client is not None else s3_client(uri)
    s3_call(lambda: client.upload_file(str(path), bucket, key), uri)


def delete_objects(uris: list[str], client: Any = None) -> None:
    """Delete the objects at ``uris`` (a missing one is not an error)."""
    if not uris:
        return
    s3 = client if client is not None else s3_client(uris[0])
    for uri in uris:
        bucket, key = parse_s3_uri(uri)
        s3_call(lambda b=bucket, k=key: s3.delete_object(Bucket=b, Key=k), uri)
