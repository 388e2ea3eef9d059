"""The request message of an MLflow call: query parameters for GET, a JSON body otherwise.

The client sends GET requests' fields as query parameters (a repeated field as the same
key repeated) and the others as a JSON object; :class:`Message` reads both the same way and
turns a missing or mistyped field into an INVALID_PARAMETER_VALUE that names it.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from fastapi import Request

from forgeline.errors import InvalidInput

__all__ = ["Message", "message", "to_number"]


class Message:
    def __init__(self, fields: dict[str, Any], lists: dict[str, list[str]] | None = None) -> None:
        self._fields = fields
        self._lists = lists or {}

    def __contains__(self, name: str) -> bool:
        return self._fields.get(name) not in (None, "")

    def text(self, name: str, default: str | None = None, *, required: bool = False
             ) -> str | None:
        value = self._fields.get(name)
        if value is None or value == "":
            if required:
                raise InvalidInput(f"Missing value for required parameter {name!r}.")
            return default
        if not isinstance(value, str):
            raise InvalidInput(f"Invalid value {value!r} for parameter {name!r}: expected a "
                               "string.")
        return value

    def required(self, name: str) -> str:
        value = self.text(name, required=True)
        assert value is not None
        return value

    def run_id(self) -> str:
        """The run a call names (MLflow sends ``run_id``, older clients ``run_uuid``)."""
        run_id = self.text("run_id") or self.text("run_uuid")
        if not run_id:
            raise InvalidInput("Missing value for required parameter 'run_id'.")
        return run_id

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self._fields.get(name)
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"Invalid value {value!r} for parameter {name!r}: expected a "
                               "whole number.") from None
        if isinstance(value, float) and value != number:
            raise InvalidInput(f"Invalid value {value!r} for parameter {name!r}: expected a "
                               "whole number.")
        return number

    def number(self, name: str) -> float:
        """A required number; MLflow writes NaN and the infinities as strings."""
        value = self._fields.get(name)
        if value is None or value == "":
            raise InvalidInput(f"Missing value for required parameter {name!r}.")
        return to_number(value, name)

    def values(self, name: str) -> list[Any]:
        if name in self._lists:
            return self._lists[name]
        value = self._fields.get(name)
        if value is None:
            return []
        if isinstance(value, str):  # one value of a repeated field, from a query string
            return [value]
        if not isinstance(value, list):
            raise InvalidInput(f"Invalid value {value!r} for parameter {name!r}: expected a "
                               "list.")
        return value

    def pairs(self, name: str) -> dict[str, str]:
        """A list of ``{"key", "value"}`` objects (params, tags) as a dict."""
        result: dict[str, str] = {}
        for item in self.values(name):
            if not isinstance(item, dict) or not isinstance(item.get("key"), str):
                raise InvalidInput(f"Invalid entry {item!r} in {name!r}: expected "
                                   "{'key': ..., 'value': ...}.")
            value = item.get("value", "")
            result[item["key"]] = value if isinstance(value, str) else str(value)
        return result


def to_number(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise InvalidInput(f"Invalid value {value!r} for {name!r}: expected a number.")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(parsed) or value.strip().lower().lstrip("+-") in (
                    "nan", "inf", "infinity"):
                return parsed
    raise InvalidInput(f"Invalid value {value!r} for {name!r}: expected a number.")


async def message(request: Request) -> Message:
    """The dependency that reads a route's request message."""
    query = request.query_params
    if request.method == "GET":
        return Message(dict(query), {k: query.getlist(k) for k in query
                                     if len(query.getlist(k)) > 1})
    body = await request.body()
    fields: Any = {}
    if body.strip():
        try:
            fields = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise InvalidInput(f"The request body is not valid JSON: {e}.") from None
        if not isinstance(fields, dict):
            raise InvalidInput("The request body must be a JSON object.")
    # A few DELETE and PATCH calls carry their fields in the query string.
    return Message({**dict(query), **fields})
