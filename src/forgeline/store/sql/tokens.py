"""Team server tokens in SQL: a name, a role and the sha256 of the secret."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from forgeline.entities import ApiToken, Role
from forgeline.errors import AlreadyExists, InvalidInput, NotFound
from forgeline.store.sql import tables as t
from forgeline.store.sql.base import SqlBase
from forgeline.util.time import now_ms

_tk = t.api_tokens.c
_NAME = re.compile(r"^[\w.\-@]{1,128}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _role(role: object) -> Role:
    try:
        return Role(role)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise InvalidInput(f"Invalid role {role!r}: use one of {roles}.") from None


def _check(name: object, secret_sha256: object) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(f"Invalid token name {name!r}: use 1-128 letters, digits and "
                           "_ - . @", hint="For example 'ci' or 'alice@risk'.")
    if not isinstance(secret_sha256, str) or not _SHA256.match(secret_sha256):
        raise InvalidInput("Invalid token secret digest: expected 64 lowercase hex characters.",
                           hint="Pass hashlib.sha256(secret.encode()).hexdigest(), never the "
                                "secret itself.")


class TokensMixin(SqlBase):
    def create_token(self, name: str, role: Role, secret_sha256: str) -> ApiToken:
        _check(name, secret_sha256)
        token = ApiToken(name, _role(role), now_ms())

        def tx(conn: Connection) -> None:
            if conn.execute(sa.select(_tk.name).where(_tk.name == name)).first() is not None:
                raise _taken(name)
            if conn.execute(sa.select(_tk.name).where(
                    _tk.secret_sha256 == secret_sha256)).first() is not None:
                raise AlreadyExists("Another token already has this secret.",
                                    hint="Make a new secret for each token.")
            conn.execute(t.api_tokens.insert().values(
                name=name, role=token.role.value, secret_sha256=secret_sha256,
                creation_time=token.creation_time))

        self._write(tx, on_duplicate=lambda: AlreadyExists(
            f"Token {name!r} or one with the same secret already exists.",
            hint="Pick another name, or a new secret."))
        return token

    def find_token(self, secret_sha256: str) -> ApiToken | None:
        query = sa.select(t.api_tokens).where(_tk.secret_sha256 == secret_sha256)
        row = self._read(lambda conn: conn.execute(query).first())
        return None if row is None else ApiToken(row.name, Role(row.role), row.creation_time)

    def list_tokens(self) -> list[ApiToken]:
        rows = self._read(lambda conn: conn.execute(
            sa.select(t.api_tokens).order_by(_tk.name)).all())
        return [ApiToken(r.name, Role(r.role), r.creation_time) for r in rows]

    def delete_token(self, name: str) -> None:
        def tx(conn: Connection) -> None:
            if conn.execute(t.api_tokens.delete().where(_tk.name == name)).rowcount == 0:
                raise NotFound(f"Token {name!r} not found.",
                               hint="List tokens with `forgeline server token list`.")
        self._write(tx)


def _taken(name: str) -> AlreadyExists:
    return AlreadyExists(f"Token {name!r} already exists.",
                         hint="Pick another name, or delete the old token first.")
