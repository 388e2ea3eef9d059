"""Validation of user-given names, and model references (``name@alias``, ``name/3``, ``name``).

One place for these rules so the store, the tracking API and the CLI agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from forgeline.errors import InvalidInput

__all__ = ["ModelRef", "check_alias", "check_key", "check_model_name", "check_name",
           "parse_model_ref"]

_KEY = re.compile(r"^[\w\-. /:]{1,250}$")
_MODEL = re.compile(r"^[A-Za-z0-9][\w.\-]{0,127}$")
_ALIAS = re.compile(r"^[A-Za-z_][\w\-]{0,63}$")
_RESERVED_ALIASES = {"latest"}


def check_key(key: object, what: str = "key") -> str:
    """A metric, param or tag key: 1-250 of letters, digits, ``_ - . / : `` and space."""
    if not isinstance(key, str) or not _KEY.match(key) or key != key.strip():
        raise InvalidInput(
            f"Invalid {what} {key!r}: use 1-250 letters, digits, spaces and _ - . / :",
            hint="For example 'val_auc' or 'loss/train'.",
        )
    return key


def check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 256:
        raise InvalidInput(f"Invalid {what} {name!r}: give a non-empty name of at most 256 "
                           "characters.")
    return name


def check_model_name(name: object) -> str:
    if not isinstance(name, str) or not _MODEL.match(name):
        raise InvalidInput(
            f"Invalid model name {name!r}: use letters, digits, '_', '-' and '.', starting "
            "with a letter or digit (at most 128).",
            hint="'@' and '/' are reserved for references such as fraud@champion and fraud/3.",
        )
    return name


def check_alias(alias: object) -> str:
    if (not isinstance(alias, str) or not _ALIAS.match(alias)
            or alias.lower() in _RESERVED_ALIASES or re.fullmatch(r"v\d+", alias)):
        raise InvalidInput(
            f"Invalid alias {alias!r}: use letters, digits, '_' and '-', starting with a "
            "letter (at most 64); 'latest' and 'v<N>' are reserved.",
            hint="For example 'champion' or 'challenger'.",
        )
    return alias


@dataclass(frozen=True, slots=True)
class ModelRef:
    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.alias:
            return f"{self.name}@{self.alias}"
        return f"{self.name}/{self.version}" if self.version else self.name


def parse_model_ref(ref: str) -> ModelRef:
    """``fraud@champion`` -> alias; ``fraud/3`` -> version 3; ``fraud`` -> latest."""
    if not isinstance(ref, str):
        raise InvalidInput(f"Invalid model reference {ref!r}: expected name@alias, name/N "
                           "or name.")
    if "@" in ref:
        name, _, alias = ref.partition("@")
        return ModelRef(check_model_name(name), alias=check_alias(alias))
    if "/" in ref:
        name, _, version = ref.partition("/")
        if not version.isdigit() or int(version) < 1:
            raise InvalidInput(f"Invalid model reference {ref!r}: the version after '/' must "
                               "be a positive whole number, as in fraud/3.")
        return ModelRef(check_model_name(name), version=int(version))
    return ModelRef(check_model_name(ref))
