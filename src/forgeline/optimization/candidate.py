"""What every optimization technique hands to the optimize workflow: a :class:`Candidate`.

A candidate is a fitted scikit-learn Pipeline taking the same input columns as its teacher
(so it is packaged, loaded and served like any model), with the technique that made it.
The workflow (``workflows/optimize.py``) measures every candidate the same way, in one run,
and registers the one chosen.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Candidate", "with_final"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One variant of the teacher.

    Attributes:
        name: short and unique in a run, e.g. ``"distilled-lightgbm"``, ``"truncated-120"``,
            ``"compiled"``, ``"int8"``.
        technique: ``"distillation"``, ``"truncation"``, ``"pruning"``, ``"compilation"``
            or ``"quantization"``.
        model: the fitted Pipeline (same input columns as the teacher's).
        params: what defines it (e.g. ``{"trees": 120}``), recorded as the run's params.
        detail: one line for the table and the registered version's description.
    """

    name: str
    technique: str
    model: Any
    params: dict[str, Any] = field(default_factory=dict)
    detail: str = ""


def with_final(model: Any, estimator: Any) -> Any:
    """A copy of the pipeline ``model`` whose (innermost) last step is ``estimator``; the
    steps before it are shared, fitted and never changed. ``estimator`` itself when
    ``model`` is not a pipeline."""
    if not (hasattr(model, "steps") and model.steps):
        return estimator
    new = copy.copy(model)
    name, last = model.steps[-1]
    new.steps = [*model.steps[:-1], (name, with_final(last, estimator))]
    return new
