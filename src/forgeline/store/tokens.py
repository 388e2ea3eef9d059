"""Team server token secrets: how they are made and the one digest the store keeps.

A secret is ``flt_`` followed by ``secrets.token_urlsafe(32)`` (256 random bits): the
prefix makes a leaked secret easy to recognise in logs and by secret scanners. Only its
sha256 (:func:`secret_sha256`) is stored, so a copy of the database grants nothing.
"""

from __future__ import annotations

import hashlib
import secrets

from forgeline.entities import ApiToken, Role
from forgeline.store.base import Store

__all__ = ["TOKEN_PREFIX", "issue_token", "new_secret", "secret_sha256"]

TOKEN_PREFIX = "flt_"


def new_secret() -> str:
    """A fresh random secret, ``flt_...``."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def secret_sha256(secret: str) -> str:
    """The digest the store keys a token by (64 lowercase hex digits)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def issue_token(store: Store, name: str, role: Role) -> tuple[ApiToken, str]:
    """Create a token in ``store``; returns it and its secret, which exists nowhere else.

    Raises:
        AlreadyExists: a token of that name exists.
        InvalidInput: the name or the role is malformed.
    """
    secret = new_secret()
    return store.create_token(name, role, secret_sha256(secret)), secret
