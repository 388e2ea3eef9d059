"""Where a training run keeps what it produces, and how to get a local copy of its report.

Light on imports, so ``forgeline report`` answers without loading scikit-learn.
"""

from __future__ import annotations

from pathlib import Path

from forgeline.errors import NotFound
from forgeline.tracking.client import Client

__all__ = ["ATTRIBUTIONS_PATH", "CHECKS_PATH", "EVALUATION_PATH", "MODEL_PATH", "REPORT_PATH",
           "SELECTION_PATH", "SPEC_PATH", "report_path"]

MODEL_PATH = "model"  # the model package
REPORT_PATH = "report/report.html"
CHECKS_PATH = "report/checks.json"  # validation and leakage findings
EVALUATION_PATH = "report/evaluation.json"
ATTRIBUTIONS_PATH = "report/attributions.json"  # mean |contribution| per input column
SELECTION_PATH = "report/selection.json"  # each family's best trial and the one chosen
SPEC_PATH = "spec.json"  # the full spec, so a retrain can start from what trained the model


def report_path(client: Client, run_id: str) -> Path:
    """A local copy of a training run's HTML report (``<home>/reports/<run id>/``)."""
    run = client.get_run(run_id)
    if not client.list_artifacts(run.run_id, REPORT_PATH):
        raise NotFound(f"Run {run.run_id} has no report.",
                       hint="Reports belong to training runs (forgeline train).")
    return client.download_artifacts(run.run_id, REPORT_PATH,
                                     client.settings.home.absolute() / "reports" / run.run_id)
