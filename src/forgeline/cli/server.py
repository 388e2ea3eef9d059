"""``forgeline server``: the team server, ``forgeline server token ...``: its tokens, and
``forgeline ui``: the same server on loopback over a local store, for its web UI.

The server runs under uvicorn, which imports the app by name in each worker
(``forgeline.server.app:create_app_from_env``) with the settings handed over in
``FORGELINE_SERVER_CONFIG``; this module checks what can fail first (the store opens,
the port is free) so that a mistake is one line, not a traceback from a worker.

Token commands work on the store directly (``--store``, like every command); a secret is
printed once, alone on stdout, and only its sha256 is stored.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from typing import TYPE_CHECKING

import typer

from forgeline.cli.output import console, fmt_time, print_json, print_table, table
from forgeline.cli.state import State, get_client
from forgeline.config import SERVER_GRACEFUL_TIMEOUT_S, SERVER_MAX_BODY_BYTES, ServerSettings
from forgeline.entities import Role
from forgeline.errors import InvalidInput

if TYPE_CHECKING:
    from forgeline.store.base import Store
    from forgeline.tracking.client import Client

__all__ = ["APP_FACTORY", "app", "auth_by_default", "ui_command"]

APP_FACTORY = "forgeline.server.app:create_app_from_env"

app = typer.Typer(help="The team server: a REST API (and MLflow's) over a store, for a team.",
                  invoke_without_command=True)
tokens = typer.Typer(help="Bearer tokens of the team server (roles: reader, writer, admin).",
                     no_args_is_help=True)
app.add_typer(tokens, name="token")

STORE_HELP = ("Store URI (default: the global --store, FORGELINE_STORE_URI, forgeline.toml, "
              "./.forgeline).")


def auth_by_default(host: str) -> bool:
    """Whether the server requires tokens when not told: yes unless it listens on loopback
    only (``127.0.0.1``, ``::1``, ``localhost``), where only this machine can reach it."""
    if host.strip().lower() == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return True  # a host name: it may resolve to anything


def _free_port(host: str, port: int) -> int:
    """``port`` if it can be bound on ``host`` (a free one for 0); InvalidInput otherwise."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host.strip("[]"), port))
        except OSError as e:
            raise InvalidInput(f"Cannot listen on {host}:{port}: {e.strerror or e}.",
                               hint="Pick another --port (0: any free one) or --host.") from None
        return sock.getsockname()[1]


@app.callback()
def server_command(
    ctx: typer.Context,
    store: str | None = typer.Option(None, "--store", metavar="URI", help=STORE_HELP),
    artifacts: str | None = typer.Option(
        None, "--artifacts", metavar="DIR|s3://BUCKET/PREFIX",
        help="Where artifact bytes live (default: artifacts/ beside a SQLite store, else "
             "FORGELINE_ARTIFACT_ROOT or <home>/artifacts)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(5000, "--port", min=0, max=65535, help="Port (0: any free one)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
    auth: bool | None = typer.Option(
        None, "--auth/--no-auth",
        help="Require bearer tokens (default: on unless --host is loopback)."),
    max_body_bytes: int = typer.Option(SERVER_MAX_BODY_BYTES, "--max-body-bytes", min=1024,
                                       help="Larger JSON request bodies get 413 (artifact "
                                            "uploads are streamed, without this limit)."),
) -> None:
    """Serve a store to a team: Forgeline clients (FORGELINE_STORE_URI=http://HOST:PORT),
    the MLflow client, and artifact bytes."""
    if ctx.invoked_subcommand is not None:
        return
    _serve(_client(ctx, store), artifacts, host, port, workers, auth, max_body_bytes)


def ui_command(
    ctx: typer.Context,
    store: str | None = typer.Option(None, "--store", metavar="URI", help=STORE_HELP),
    port: int = typer.Option(5000, "--port", min=0, max=65535, help="Port (0: any free one)."),
    browser: bool = typer.Option(True, "--browser/--no-browser",
                                 help="Open the web UI in the default browser."),
) -> None:
    """The web UI over a local store, on this machine only (127.0.0.1, no tokens): runs,
    charts, comparisons, models and monitoring. For a team, `forgeline server`."""
    _serve(_client(ctx, store), None, "127.0.0.1", port, 1, False, SERVER_MAX_BODY_BYTES,
           open_ui=browser)


def _serve(client: Client, artifacts: str | None, host: str, port: int, workers: int,
           auth: bool | None, max_body_bytes: int, *, open_ui: bool = False) -> None:
    """Check what can fail, say where the server is, and run it until Ctrl-C."""
    import uvicorn

    from forgeline.store import LocalArtifactStore, open_artifact_store

    if client.store.uri.startswith(("http://", "https://")):
        raise InvalidInput(f"The team server needs a database store, not {client.store.uri}.",
                           hint="Give --store sqlite:///... or postgresql+psycopg://...")
    if artifacts and artifacts.startswith("s3://"):
        root = artifacts
        open_artifact_store(root)  # a missing bucket or wrong credentials: one line, now
    elif artifacts or isinstance(client.artifacts, LocalArtifactStore):
        root = os.path.abspath(artifacts) if artifacts else str(
            getattr(client.artifacts, "root", ""))
    else:
        root = str(getattr(client.artifacts, "uri", ""))
    secure = auth_by_default(host) if auth is None else auth
    admins = sum(t.role is Role.ADMIN for t in client.store.list_tokens())  # opens the store
    port = _free_port(host, port)
    settings = ServerSettings(client.store.uri, root, secure, max_body_bytes)
    os.environ.update(settings.to_env())
    shown = f"[{host}]" if ":" in host else host
    state = "on" if secure else "off"
    out = console()
    out.print(f"Forgeline server on http://{shown}:{port} · store {client.store.uri} · "
              f"artifacts {root} · auth {state} · {workers} worker{'s' * (workers > 1)}")
    ui = f"http://{shown}:{port}/ui/"
    out.print(f"Web UI: {ui}")
    if secure and not admins:
        out.print("No admin token yet: create one with `forgeline server token create --role "
                  f"admin --name NAME --store {client.store.uri}`.", style="yellow")
    if open_ui:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, [ui]).start()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a server stops
        uvicorn.run(APP_FACTORY, factory=True, host=host.strip("[]"), port=port,
                    workers=workers, log_level="warning", access_log=False,
                    server_header=False,
                    timeout_graceful_shutdown=SERVER_GRACEFUL_TIMEOUT_S)


def _client(ctx: typer.Context, store: str | None) -> Client:
    """The Client of ``--store`` here, else of the global option (or the default)."""
    return get_client(ctx) if store is None else State(store).client


def _store(ctx: typer.Context, store: str | None) -> Store:
    return _client(ctx, store).store


@tokens.command("create")
def create_token(
    ctx: typer.Context,
    name: str = typer.Option(..., "--name", help="Who or what uses it (e.g. ci, alice)."),
    role: Role = typer.Option(Role.READER, "--role",
                              help="reader (reads), writer (logs, registers) or admin "
                                   "(protected aliases, deletions, tokens)."),
    store: str | None = typer.Option(None, "--store", metavar="URI", help=STORE_HELP),
) -> None:
    """Create a token and print its secret, once (only its sha256 is stored)."""
    from forgeline.store.tokens import issue_token

    token, secret = issue_token(_store(ctx, store), name, role)
    typer.echo(secret)
    typer.echo(f"Token {token.name!r} ({token.role.value}) created. Keep the secret above: "
               "it is shown only now. Clients send it as FORGELINE_TOKEN.", err=True)


@tokens.command("list")
def list_tokens(
    ctx: typer.Context,
    store: str | None = typer.Option(None, "--store", metavar="URI", help=STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """List tokens: name, role, when created (secrets are never shown again)."""
    found = _store(ctx, store).list_tokens()
    if as_json:
        print_json(found)
        return
    t = table("name", "role", "created")
    for token in found:
        t.add_row(token.name, token.role.value, fmt_time(token.creation_time))
    print_table(t, empty="No tokens yet: create one with `forgeline server token create`.")


@tokens.command("delete")
def delete_token(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME"),
    store: str | None = typer.Option(None, "--store", metavar="URI", help=STORE_HELP),
) -> None:
    """Revoke a token (a running server stops accepting it within seconds)."""
    _store(ctx, store).delete_token(name)
    typer.echo(f"Token {name!r} deleted.")
