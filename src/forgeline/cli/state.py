"""What the root command hands its subcommands: the store URI and, on first use, a Client.

The Client is built lazily so that ``forgeline --help`` and usage errors never open a
database (nor import SQLAlchemy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from forgeline.tracking.client import Client

__all__ = ["State", "get_client"]


class State:
    """Per-invocation state stored in ``ctx.obj`` by the root callback."""

    def __init__(self, store: str | None = None) -> None:
        self.store = store
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            from forgeline.tracking.client import Client

            self._client = Client(self.store)
        return self._client


def get_client(ctx: typer.Context) -> Client:
    """The Client of this invocation (``--store`` > FORGELINE_STORE_URI > project default)."""
    # ensure_object: a group app invoked on its own (no root callback) gets the default store
    return ctx.ensure_object(State).client
