"""The tuning progress bar: trials done, the best score so far, time left."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from forgeline.training.tuning import TrialOutcome

__all__ = ["TrialProgress"]


class TrialProgress:
    def __init__(self, console: Console, trials: int, metric: str) -> None:
        self.metric = metric
        self.pruned = 0
        self._progress = Progress(
            TextColumn("[bold]tuning[/]"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.description}"), TimeElapsedColumn(), TextColumn("left"),
            TimeRemainingColumn(), console=console, transient=False)
        self._task = self._progress.add_task("starting", total=trials)

    def __enter__(self) -> TrialProgress:
        self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._progress.stop()

    def update(self, outcome: TrialOutcome, best: TrialOutcome | None) -> None:
        self.pruned += outcome.state == "pruned"
        text = (f"best {self.metric} {best.score:.4f} ({best.model})"
                if best is not None and best.score is not None else "no trial finished yet")
        if self.pruned:
            text += f", {self.pruned} pruned"
        self._progress.update(self._task, advance=1, description=text)
