"""Plain JSON values from what Forgeline computes: one converter for every JSON form
(an evaluation, a monitoring result, what ``--json`` prints)."""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Iterable, Mapping
from pathlib import PurePath
from typing import Any

from forgeline.errors import InvalidInput

__all__ = ["jsonable", "parse_json"]

_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def jsonable(value: Any, *, non_finite_as_text: bool = False) -> Any:
    """``value`` as plain JSON types.

    Dataclasses become dicts of their fields, enums their values, numpy arrays and scalars
    lists and Python numbers (without importing numpy), paths strings, other iterables
    lists; anything else its ``str``. NaN and infinity become None, or with
    ``non_finite_as_text`` the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``
    (so a printed result still says which it was).
    """
    def convert(x: Any) -> Any:
        if type(x).__module__ == "numpy" and hasattr(x, "tolist"):
            x = x.tolist()  # arrays as lists, scalars as Python numbers
        if isinstance(x, float):
            if math.isfinite(x):
                return x
            return _NON_FINITE[repr(x)] if non_finite_as_text else None
        if isinstance(x, str | int | bool) or x is None:
            return x
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            return {f.name: convert(getattr(x, f.name)) for f in dataclasses.fields(x)}
        if isinstance(x, enum.Enum):
            return convert(x.value)
        if isinstance(x, Mapping):
            return {str(k): convert(v) for k, v in x.items()}
        if isinstance(x, PurePath):
            return str(x)
        if isinstance(x, Iterable):
            return [convert(v) for v in x]
        return str(x)

    return convert(value)


def parse_json(body: bytes, what: str = "The request body") -> Any:
    """Parse JSON bytes; InvalidInput (naming ``what``) if they are not JSON."""
    import orjson  # loaded by the servers that read bodies, not at every start-up

    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise InvalidInput(f"{what} is not valid JSON: {e}.",
                           hint="Send a JSON object with Content-Type: application/json."
                           ) from None
