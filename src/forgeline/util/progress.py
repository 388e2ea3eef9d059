"""How long work reports as it goes, without printing: the library calls a
:class:`Progress`, and only interfaces draw it.

The base class writes to :mod:`logging` (``forgeline.progress``), so a library caller sees
nothing unless it configures logging; ``forgeline``'s commands pass one that draws Rich
status lines and progress bars on stderr (``forgeline.cli.progress``). Calls come from the
thread doing the work, one task at a time.
"""

from __future__ import annotations

import logging

__all__ = ["Progress"]

log = logging.getLogger("forgeline.progress")


class Progress:
    """Receives what a long piece of work is doing. Every method may be overridden."""

    def status(self, message: str) -> None:
        """A step without a count starts (``Loading data``); it lasts until the next call."""
        log.info("%s", message)

    def task(self, description: str, total: float | None, unit: str = "") -> None:
        """A counted task starts (a progress bar): ``total`` units, None when unknown."""
        log.info("%s (%s%s)", description, "?" if total is None else f"{total:,g}",
                 f" {unit}" if unit else "")

    def advance(self, amount: float = 1, info: str | None = None) -> None:
        """``amount`` more units of the current task are done; ``info`` is what to show
        beside the bar (the best score so far, say)."""
        if info:
            log.debug("%s", info)

    def done(self) -> None:
        """The current status or task is over."""

    def note(self, message: str) -> None:
        """A line worth keeping in the output (a decision and why)."""
        log.info("%s", message)
