"""Tensors as raw bytes: the OIP binary tensor data extension, and gRPC's raw contents.

Both carry a tensor's values the same way, flattened row-major:

- numeric and BOOL tensors as their little-endian bytes (BOOL one byte per value);
- BYTES tensors as each element's length (4 bytes, little-endian) followed by its bytes.

Over HTTP (Triton's ``binary_tensor_data`` extension, which ``tritonclient.http`` uses by
default) the header ``Inference-Header-Content-Length: N`` says that the first ``N`` bytes
of the body are the JSON request; an input whose ``parameters`` hold ``binary_data_size``
has no ``data`` and its bytes follow the JSON, in the order of the inputs. An answer with
binary outputs has the same layout and the same header. Over gRPC the bytes of input
``i`` are ``raw_input_contents[i]`` and those of output ``i`` ``raw_output_contents[i]``.

Every size is checked before it is used: a length that runs past the data, or data that a
shape does not account for, is an :class:`~forgeline.errors.InvalidInput` naming the
input, never a read past the buffer.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from starlette.responses import Response

from forgeline.errors import InvalidInput

__all__ = ["BINARY_EXTENSION", "HEADER_LENGTH", "NUMPY_TYPES", "binary_response", "decode",
           "encode", "split_body"]

BINARY_EXTENSION = "binary_tensor_data"  # the name Triton gives the extension
HEADER_LENGTH = "inference-header-content-length"
NUMPY_TYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(code) for name, code in (
        ("FP16", "<f2"), ("FP32", "<f4"), ("FP64", "<f8"), ("INT8", "i1"), ("INT16", "<i2"),
        ("INT32", "<i4"), ("INT64", "<i8"), ("UINT8", "u1"), ("UINT16", "<u2"),
        ("UINT32", "<u4"), ("UINT64", "<u8"), ("BOOL", "u1"))}
_LENGTH = struct.Struct("<I")


def decode(where: str, datatype: str, shape: Sequence[int], raw: bytes | memoryview
           ) -> np.ndarray | list[str]:
    """The values of one tensor from its raw bytes: an array, or texts for BYTES.

    Args:
        where: names the tensor in messages (``inputs[1] ('amount')``).
        datatype: an OIP datatype (``FP64``, ``BYTES``...).
        shape: the tensor's shape; the bytes must hold exactly its number of elements.
        raw: the tensor's bytes, nothing before or after them.

    Raises:
        InvalidInput: the bytes do not hold the shape's elements of that datatype, a
            BYTES element's length runs past them, or its bytes are not UTF-8 text.
    """
    count = math.prod(shape)
    if datatype == "BYTES":
        return _decode_bytes(where, count, raw)
    dtype = NUMPY_TYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        raise InvalidInput(f"{where}: shape {list(shape)} of {datatype} is "
                           f"{count * dtype.itemsize} bytes, its binary data has {len(raw)}.",
                           hint="Send each value as its little-endian bytes, row-major.")
    values = np.frombuffer(raw, dtype=dtype)
    return values != 0 if datatype == "BOOL" else values


def _decode_bytes(where: str, count: int, raw: bytes | memoryview) -> list[str]:
    view = memoryview(raw)
    size, offset = len(view), 0
    texts: list[str] = []
    while offset < size:
        if size - offset < 4:
            raise InvalidInput(f"{where}: BYTES element {len(texts)} has {size - offset} bytes "
                               "left for its 4-byte length.",
                               hint="Send each element as its length (4 bytes, little-endian), "
                                    "then its bytes.")
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        if length > size - offset:
            raise InvalidInput(f"{where}: BYTES element {len(texts)} says {length} bytes, but "
                               f"only {size - offset} are left in the input's binary data.",
                               hint="Check the element lengths and the input's size.")
        try:
            texts.append(str(view[offset:offset + length], "utf-8"))
        except UnicodeDecodeError as e:
            raise InvalidInput(f"{where}: BYTES element {len(texts)} is not UTF-8 text ({e.reason} "
                               f"at byte {e.start}).") from None
        offset += length
    if len(texts) != count:
        raise InvalidInput(f"{where}: shape needs {count} BYTES elements, its binary data has "
                           f"{len(texts)}.")
    return texts


def encode(datatype: str, values: np.ndarray) -> bytes:
    """The raw bytes of ``values`` as a tensor of ``datatype`` (see the module docstring)."""
    if datatype != "BYTES":
        return np.ascontiguousarray(values, dtype=NUMPY_TYPES[datatype]).tobytes()
    parts: list[bytes] = []
    for value in values.ravel().tolist():
        data = value if isinstance(value, bytes) else str(value).encode()
        parts += (_LENGTH.pack(len(data)), data)
    return b"".join(parts)


def split_body(body: bytes, declared: str) -> tuple[Any, memoryview]:
    """The JSON request and the binary data after it, for ``Inference-Header-Content-Length:
    declared``.

    Raises:
        InvalidInput: the header is not a whole number, is larger than the body, or the
            bytes it covers are not a JSON object.
    """
    text = declared.strip()
    if not text.isdigit():
        raise InvalidInput(f"Inference-Header-Content-Length must be a whole number of bytes, "
                           f"got {declared!r}.")
    length = int(text)
    if length > len(body):
        raise InvalidInput(f"Inference-Header-Content-Length is {length} bytes, beyond the "
                           f"body ({len(body)} bytes).",
                           hint="Set it to the size of the JSON part, at the start of the body.")
    view = memoryview(body)
    try:
        header = orjson.loads(view[:length])
    except orjson.JSONDecodeError as e:
        raise InvalidInput(f"The JSON part of the body (its first {length} bytes, "
                           f"Inference-Header-Content-Length) is not valid JSON: {e}.") from None
    return header, view[length:]


def binary_response(payload: dict[str, Any], buffers: Sequence[bytes]) -> Response:
    """``payload`` as the JSON part of a binary answer, followed by ``buffers``."""
    header = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(b"".join((header, *buffers)), media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(len(header))})
