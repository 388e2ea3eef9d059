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

The client and the translation of driver errors are :mod:`forgeline.store.s3`'s (boto3
imported lazily; endpoint, region and credentials from the usual AWS variables).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from forgeline.errors import IntegrityError, InvalidInput, NotFound
from forgeline.store.artifacts import (
    ArtifactStore,
    LocalArtifactStore,
    check_digest,
    sha256_file,
)
from forgeline.store.s3 import MISSING, parse_s3_uri, s3_call, s3_client

__all__ = ["S3ArtifactStore", "parse_s3_uri"]

_CHUNK = 1 << 20


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
        self._client = client if client is not None else s3_client(uri, "Artifacts")
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
        return s3_call(fn, self.uri, missing,
                       missing_hint="The artifact store was moved or cleaned; restore it.")

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
                if str(e.response.get("Error", {}).get("Code", "")) in MISSING:
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
