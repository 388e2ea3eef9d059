"""The run facts a report header and a model card show, read leniently from ``summary``.

Keys are matched without regard to case, spaces or dashes (``"run id"`` is ``run_id``), and
a few common synonyms are accepted, so callers need not agree on one spelling.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["LABELS", "split_summary"]

LABELS = {
    "name": "Model", "version": "Version", "model_type": "Model type", "task": "Task",
    "run_id": "Run", "experiment": "Experiment", "dataset": "Dataset",
    "dataset_digest": "Dataset digest", "rows": "Dataset rows", "time": "Time",
    "duration_s": "Training time (s)", "code_version": "Code version", "alias": "Alias",
}
_SYNONYMS = {"model_name": "name", "model": "model_type", "run": "run_id", "date": "time",
             "created": "time", "dataset_rows": "rows", "digest": "dataset_digest",
             "git_commit": "code_version", "commit": "code_version"}


def split_summary(summary: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """(the known facts by canonical key, the other entries as given, in order)."""
    known: dict[str, Any] = {}
    extra: list[tuple[str, Any]] = []
    for key, value in summary.items():
        name = "_".join(str(key).strip().lower().replace("-", " ").split())
        name = _SYNONYMS.get(name, name)
        if name in LABELS and name not in known:
            known[name] = value
        else:
            extra.append((str(key), value))
    return known, extra
