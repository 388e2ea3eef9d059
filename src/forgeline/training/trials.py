"""What one tuning trial produced: its model, parameters, fold scores and state. Tuning
makes them; model selection chooses among them; the training flow logs them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["TrialOutcome"]


@dataclass
class TrialOutcome:
    number: int
    model: str
    params: dict[str, Any]
    fold_scores: list[float] = field(default_factory=list)
    state: str = "complete"  # complete | pruned | failed
    error: str | None = None
    seconds: float = 0.0
    defaults: bool = False

    @property
    def score(self) -> float | None:
        return float(np.mean(self.fold_scores)) if self.fold_scores else None
