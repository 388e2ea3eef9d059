"""The monitoring thresholds a model was trained with, for its Prometheus alerts.

``forgeline deploy prometheus`` (:mod:`forgeline.serving.observability`) writes alerts on
the gauges the periodic monitor exports; where the model's training spec says when it
should be retrained (``retrain.triggers``, monitoring rules such as
``dataset_drift > 0.3`` or ``estimated_roc_auc < 0.8``), the alerts fire at the same
values. Reading the training spec and the monitoring rules is two stages' business, so it
happens here, in a workflow.
"""

from __future__ import annotations

import contextlib
from typing import Any

from forgeline.entities import ModelVersion
from forgeline.errors import ForgelineError
from forgeline.monitoring.config import MonitorConfig
from forgeline.monitoring.rules import parse_rule
from forgeline.tracking.client import Client
from forgeline.workflows.retrain import champion_spec

__all__ = ["monitoring_thresholds", "thresholds_from_rules"]

_ESTIMATED = "estimated_"


def thresholds_from_rules(rules: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``drift_share`` and ``floors`` (estimated metric -> floor) set by monitoring rules.

    ``dataset_drift > X`` (or ``>=``) sets the drift share, ``estimated_<metric> < X`` (or
    ``<=``) a floor; other rules have no alert of their own and are left out. Without a
    drift rule, the share is the monitor's own default (``dataset_drift_share``).

    Raises:
        InvalidSpec: a rule that does not parse.
    """
    drift = MonitorConfig().dataset_drift_share
    floors: dict[str, float] = {}
    for text in rules:
        rule = parse_rule(text)
        if rule.name == "dataset_drift" and rule.op in (">", ">="):
            drift = rule.threshold
        elif rule.name.startswith(_ESTIMATED) and rule.op in ("<", "<="):
            floors[rule.name.removeprefix(_ESTIMATED)] = rule.threshold
    return {"drift_share": drift, "floors": floors}


def monitoring_thresholds(client: Client, version: ModelVersion | None) -> dict[str, Any]:
    """The thresholds of :func:`thresholds_from_rules` for the ``retrain.triggers`` of the
    spec that trained ``version`` (the monitor's defaults when there is none: a bare
    package, a model not trained by ``forgeline train``, or no triggers)."""
    triggers: tuple[str, ...] = ()
    if version is not None:
        # no spec, or an unreadable one: the defaults, as for a bare package
        with contextlib.suppress(ForgelineError, OSError, ValueError):
            triggers = champion_spec(client, version).retrain.triggers
    return thresholds_from_rules(triggers)
