"""What the commands draw while long work runs: the library's :class:`Progress` calls as
Rich status lines, progress bars and kept lines on stderr (stdout stays for results)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import (
    Progress as Bars,
)

from forgeline.util.progress import Progress

__all__ = ["RichProgress"]


class RichProgress(Progress):
    """Draws on ``console`` (stderr by default); ``enabled=False`` draws nothing but still
    prints the kept lines (``note``). Use it as a context manager so a bar or spinner left
    running by an error is stopped."""

    def __init__(self, console: Console | None = None, *, enabled: bool = True,
                 transient: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.transient = transient
        self._status: Any = None
        self._bars: Bars | None = None
        self._task: Any = None

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.done()

    def status(self, message: str) -> None:
        self.done()
        if self.enabled:
            self._status = self.console.status(escape(message))
            self._status.start()

    def task(self, description: str, total: float | None, unit: str = "") -> None:
        self.done()
        if not self.enabled:
            return
        amount = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
        self._bars = Bars(TextColumn(f"[bold]{escape(description)}[/]"), BarColumn(), amount,
                          TextColumn("" if unit == "bytes" else escape(unit)),
                          TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                          TextColumn("left"), TimeRemainingColumn(), console=self.console,
                          transient=self.transient)
        self._task = self._bars.add_task(description, total=total, info="")
        self._bars.start()

    def advance(self, amount: float = 1, info: str | None = None) -> None:
        if self._bars is not None:
            fields = {} if info is None else {"info": escape(info)}
            self._bars.update(self._task, advance=amount, **fields)

    def done(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        if self._bars is not None:
            self._bars.stop()
            self._bars = None

    def note(self, message: str) -> None:
        self.console.print(escape(message), highlight=False)
