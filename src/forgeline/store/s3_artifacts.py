"""Artifacts on S3-compatible object storage (``s3://bucket/prefix``).

The same content-addressed layout as :class:`LocalArtifactStore`, under the prefix:
``prefix/objects/ab/cdef...``. The sha256 is also stored as object metadata.

Invariants:
- An object is visible only when complete: boto3's managed transfer uploads large files in
  parts (a multipart upload is atomic) and aborts the upload on any failure, so an
  interrupted ``put`` leaves nothing behind.
- The file is streamed (never held in memory whole) and re-hashed while it is uploaded; if
  its bytes changed since they were hashed, the reader fails before the upload completes.
- ``get`` downloads into a local cache, hashing on the way, and raises IntegrityError when
  the bytes no longer match their digest; only verified bytes are renamed into the cache.

boto3 is imported lazily: only an ``s3://`` URI pays for it. Endpoint, region and
credentials come from the usual AWS variables (AWS_ENDPOINT_URL, AWS_REGION,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), which boto3 reads itself.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from forgeline.errors import IntegrityError, InvalidInput, NotFound, StoreError
from forgeline.store.artifacts import (
    ArtifactStore,
    LocalArtifactStore,
    check_digest,
    sha256_file,
)

__all__ = ["S3ArtifactStore", "parse_s3_uri"]

_CHUNK = 1 << 20
_MISSING = ("404", "NoSuchKey", "NotFound")
_HINT = ("Set AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for "
         "your object storage, and check the bucket name.")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/prefix`` (the prefix without slashes around it)."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise InvalidInput(f"Invalid object storage URI {uri!r}.",
                           hint="Use s3://bucket or s3://bucket/prefix.")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.strip("/")


class _HashingReader:
    """A file object that hashes what is read from it and checks the digest at the end."""

    def __init__(self, file: BinaryIO, expected: str) -> None:
        self._file = file
        self._hash = hashlib.sha256()
        self._expected = expected

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        self._hash.update(chunk)
        if not chunk and self._hash.hexdigest() != self._expected:
            raise IntegrityError("The file changed while it was being uploaded; nothing was "
                                 "stored.", hint="Log the artifact again.")
        return chunk


class S3ArtifactStore(ArtifactStore):
    """Artifacts in an S3 bucket, under a prefix, verified on the way out.

    Args:
        uri: ``s3://bucket/prefix``.
        cache: a local folder for verified downloads (``get`` returns paths in it); by
            default a folder in the system's temporary directory.
        transfer_config: a ``boto3.s3.transfer.TransferConfig`` (multipart threshold and
            part size); boto3's defaults when None.
        client: a boto3 S3 client; by default one from the AWS environment variables.
    """

    def __init__(self, uri: str, cache: Path | None = None, transfer_config: Any = None,
                 client: Any = None) -> None:
        self.uri = uri
        self.bucket, self.prefix = parse_s3_uri(uri)
        self.cache = LocalArtifactStore(
            Path(cache) if cache else Path(tempfile.gettempdir()) / "forgeline-s3-cache")
        if client is None:
            try:
                import boto3
            except ImportError as e:
                raise InvalidInput(f"Artifacts at {uri} need boto3, which is not installed.",
                                   hint="pip install 'forgeline[s3]'") from e
            client = self._call(lambda: boto3.client("s3"))
        self._client = client
        self._transfer = transfer_config
        self._call(lambda: self._client.head_bucket(Bucket=self.bucket))

    def __repr__(self) -> str:
        return f"S3ArtifactStore({self.uri!r})"

    def _key(self, digest: str) -> str:
        check_digest(digest)
        key = f"objects/{digest[:2]}/{digest[2:]}"
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, fn: Any, missing: str | None = None) -> Any:
        """Run one S3 call, translating driver errors into one clear ForgelineError."""
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        try:
            return fn()
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in _MISSING and missing is not None:
                raise NotFound(missing, hint="The artifact store was moved or cleaned; "
                               "restore it.") from e
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise StoreError(f"Object storage bucket {self.bucket!r} does not exist "
                                 f"({self.uri}).", hint="Create the bucket or fix the "
                                 "s3:// URI.") from e
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise StoreError(f"Object storage refused the credentials for {self.uri} "
                                 f"({code}).", hint="Check AWS_ACCESS_KEY_ID and "
                                 "AWS_SECRET_ACCESS_KEY.") from e
            raise StoreError(f"Object storage error on {self.uri}: {e}", hint=_HINT) from e
        except EndpointConnectionError as e:
            raise StoreError(f"Cannot reach the object storage endpoint for {self.uri}: "
                             f"{e}", hint="Check AWS_ENDPOINT_URL and that the server "
                             "is running.") from e
        except BotoCoreError as e:
            raise StoreError(f"Object storage error on {self.uri}: {e}", hint=_HINT) from e

    def put(self, path: Path) -> str:
        path = Path(path)
        if not path.is_file():
            raise NotFound(f"Cannot log artifact {str(path)!r}: no such file.")
        digest = sha256_file(path)
        if self.exists(digest):
            return digest
        key = self._key(digest)
        with open(path, "rb") as src:
            reader = _HashingReader(src, digest)
            self._call(lambda: self._client.upload_fileobj(
                reader, self.bucket, key, Config=self._transfer,
                ExtraArgs={"Metadata": {"sha256": digest}}))
        return digest

    def get(self, digest: str) -> Path:
        key = self._key(digest)
        if self.cache.exists(digest):
            try:
                return self.cache.get(digest)
            except IntegrityError:  # a damaged copy in the cache: fetch it again
                self.cache._object(digest).unlink()
        missing = f"Artifact {digest[:12]} is missing from {self.uri}."
        body = self._call(lambda: self._client.get_object(Bucket=self.bucket, Key=key),
                          missing)["Body"]
        with self.cache.upload() as upload:  # verified, then moved into place
            while chunk := self._call(lambda: body.read(_CHUNK)):
                upload.write(chunk)
            try:
                upload.commit(expected=digest)
            except InvalidInput:
                raise IntegrityError(
                    f"Artifact {digest[:12]} in {self.uri} is corrupt: its bytes do not hash "
                    "to its digest; nothing was kept.",
                    hint="Restore the object from a backup.") from None
        return self.cache.get(digest)

    def exists(self, digest: str) -> bool:
        from botocore.exceptions import ClientError

        key = self._key(digest)

        def head() -> bool:
            try:
                self._client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as e:
                if str(e.response.get("Error", {}).get("Code", "")) in _MISSING:
                    return False
                raise  # translated by _call
            return True

        return bool(self._call(head))

    def list(self) -> Iterator[str]:
        base = f"{self.prefix}/objects/" if self.prefix else "objects/"
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=base)
        for page in self._call(lambda: list(pages)):
            for item in page.get("Contents", []):
                rest = item["Key"][len(base):]
                shard, _, name = rest.partition("/")
                if len(shard) == 2 and len(name) == 62:
                    yield shard + name
