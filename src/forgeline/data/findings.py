"""A finding: one result of a validation or leakage check, with its severity."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Finding", "Severity"]


class Severity(StrEnum):
    INFO = "info"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Finding:
    """``check`` is a stable identifier (e.g. ``target_leak``); ``message`` says what was
    found and what to do; ``details`` holds JSON-serialisable evidence for the report."""

    check: str
    severity: Severity
    message: str
    columns: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
