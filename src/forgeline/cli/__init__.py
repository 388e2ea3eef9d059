"""The ``forgeline`` command: a thin layer of parsing and printing over :class:`forgeline.Client`.

Errors: a :class:`~forgeline.errors.ForgelineError` (a mistake of the user's, or a store
that cannot be used) prints exactly one line, ``error: <message> <hint>``, on stderr and
exits with :func:`forgeline.errors.exit_code` (see ``errors.STATUS``); Ctrl-C prints
``error: interrupted`` and exits 130. Usage errors (unknown option, missing argument)
exit 2 with Click's usage message. Nothing a user does wrong shows a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from forgeline.cli import (
    demo,
    deploy,
    experiments,
    label,
    models,
    monitor,
    optimize,
    predict,
    predictions,
    retrain,
    runs,
    serve,
    server,
    train,
)
from forgeline.cli.output import error_line
from forgeline.cli.state import State
from forgeline.errors import ForgelineError, exit_code

__all__ = ["app", "main"]

_INTERRUPTED = 130


class _Group(TyperGroup):
    """The root group; turns Forgeline errors raised by any subcommand into one line.

    Doing it here rather than only in :func:`main` means ``app`` behaves the same when
    embedded or driven by ``typer.testing.CliRunner``: same stderr line, same exit code.
    """

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except ForgelineError as e:
            error_line(str(e))
            raise typer.Exit(exit_code(e)) from None
        except KeyboardInterrupt:
            error_line("interrupted")
            raise typer.Exit(_INTERRUPTED) from None


app = typer.Typer(
    name="forgeline",
    cls=_Group,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(models.app, name="models")
app.add_typer(server.app, name="server")
app.add_typer(deploy.app, name="deploy")
app.add_typer(predictions.app, name="predictions")
app.command("ui")(server.ui_command)
train.register(app)
label.register(app)
monitor.register(app)
serve.register(app)
predict.register(app)
retrain.register(app)
label.register(app)
optimize.register(app)
demo.register(app)


@app.callback()
def _root(
    ctx: typer.Context,
    store: str | None = typer.Option(
        None, "--store", metavar="URI",
        help="Store URI, e.g. sqlite:///path/forgeline.db or postgresql+psycopg://... "
             "(default: FORGELINE_STORE_URI, else forgeline.toml, else ./.forgeline)."),
) -> None:
    """Forgeline: train, serve, monitor and retrain models; track runs and the registry."""
    ctx.obj = State(store)  # the Client is opened by the first command that needs it


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``forgeline`` console script; exits the process.

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` when None.
    """
    try:
        code = app(args=list(argv) if argv is not None else None, prog_name="forgeline",
                   standalone_mode=True)
    except ForgelineError as e:  # raised outside a subcommand, e.g. while parsing
        error_line(str(e))
        sys.exit(exit_code(e))
    except KeyboardInterrupt:  # raised outside a subcommand, e.g. while importing
        error_line("interrupted")
        sys.exit(_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)
