"""Production monitoring: drift, data quality, performance with delayed labels, alerts.

    from forgeline.monitoring import MonitorConfig, monitor
    result = monitor("fraud@champion", production_frame,
                     config=MonitorConfig(rules=("dataset_drift > 0.3",)))
    result.to_dict()  # its JSON form; the HTML report: forgeline.reports.render_monitor_report

Everything is compared with the model's reference profile (``profile.json``), never with
the training data. Submodules are imported on first use, so importing this package stays
cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["MonitorConfig", "MonitorResult", "monitor", "performance", "register_gauges"]

_WHERE = {"MonitorConfig": "config", "MonitorResult": "result", "monitor": "orchestrator",
          "performance": "perf", "register_gauges": "gauges"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"forgeline.monitoring.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'forgeline.monitoring' has no attribute {name!r}")
