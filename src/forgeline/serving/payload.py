"""The two body forms of ``POST /predict``, checked for shape before the signature sees them.

- records: ``{"records": [{"amount": 12.5, "country": "FR"}, ...]}``
- columns: ``{"columns": ["amount", "country"], "data": [[12.5, "FR"], ...]}``

Each mistake of shape is one :class:`~forgeline.errors.InvalidInput` naming the field
(``records[3]``, ``data[0]``); the values themselves are the signature's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from forgeline.errors import InvalidInput

__all__ = ["FORMS", "kind_of", "predict_rows"]

FORMS = ('Send {"records": [{"column": value, ...}, ...]} or '
         '{"columns": ["column", ...], "data": [[value, ...], ...]}.')
_FEW_ROWS = 64  # up to here dicts per row are cheapest; beyond, one DataFrame


def kind_of(value: Any) -> str:
    """The JSON type of a parsed value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, Mapping) else type(value).__name__


def predict_rows(body: Any) -> list[Mapping[str, Any]] | pd.DataFrame:
    """The rows of a ``/predict`` body: a list of records, or a frame for many columnar rows.

    Raises:
        InvalidInput: the body has neither form, or a part of it has the wrong shape.
    """
    if not isinstance(body, Mapping):
        raise InvalidInput(f"The request body must be a JSON object, got {kind_of(body)}.",
                           hint=FORMS)
    if "records" in body:
        if "columns" in body or "data" in body:
            raise InvalidInput('Give either "records", or "columns" and "data", not both.',
                               hint=FORMS)
        return _records(body["records"])
    if "columns" in body or "data" in body:
        return _columns(body.get("columns"), body.get("data"))
    keys = ", ".join(repr(k) for k in list(body)[:5]) or "none"
    raise InvalidInput(f'The request body has no "records" and no "columns"/"data" '
                       f"(keys: {keys}).", hint=FORMS)


def _records(records: Any) -> list[Mapping[str, Any]]:
    if not isinstance(records, list):
        raise InvalidInput(f'"records" must be an array of objects, got {kind_of(records)}.',
                           hint=FORMS)
    if not records:
        raise InvalidInput('"records" is empty: send at least one record.')
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise InvalidInput(f'"records[{i}]" must be an object (column -> value), got '
                               f"{kind_of(record)}.", hint=FORMS)
    return records


def _columns(columns: Any, data: Any) -> list[Mapping[str, Any]] | pd.DataFrame:
    for field, value in (("columns", columns), ("data", data)):
        if value is None:
            raise InvalidInput(f'"{field}" is missing: the columnar form needs both "columns" '
                               'and "data".', hint=FORMS)
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InvalidInput('"columns" must be an array of column names (strings).', hint=FORMS)
    if len(set(columns)) != len(columns):
        seen: set[str] = set()
        twice = sorted({c for c in columns if c in seen or seen.add(c)})
        raise InvalidInput(f'"columns" names {", ".join(map(repr, twice))} more than once.')
    if not isinstance(data, list):
        raise InvalidInput(f'"data" must be an array of rows, got {kind_of(data)}.',
                           hint=FORMS)
    if not data:
        raise InvalidInput('"data" is empty: send at least one row.')
    width = len(columns)
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != width:
            got = f"{len(row)} values" if isinstance(row, list) else kind_of(row)
            raise InvalidInput(f'"data[{i}]" must be an array of {width} values (one per '
                               f'column in "columns"), got {got}.')
    if len(data) <= _FEW_ROWS:
        return [dict(zip(columns, row, strict=True)) for row in data]
    return pd.DataFrame(data, columns=pd.Index(columns))
