"""Alerts: evaluate the rules on a result's values, then deliver what fired.

A rule fires when its comparison holds (for ``name.*``: for at least one column; every
matching column is listed). When at least one rule fired, one JSON payload goes to the
webhook (POST, retried ``delivery_retries`` times on connection errors and 5xx answers)
and/or to the command (on its stdin). Delivery never raises: a failure becomes a warning
("alert not delivered: ..."), so the rest of the report is still produced.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from forgeline.monitoring.config import MonitorConfig
from forgeline.monitoring.rules import Rule, parse_rule

__all__ = ["AlertResult", "deliver", "evaluate_rules"]

_BACKOFF_S = 0.5


@dataclass
class AlertResult:
    """One rule and what it found: the values that made it fire, or why it could not run."""

    rule: str
    fired: bool
    matches: dict[str, float] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
    note: str | None = None


def _lookup(rule: Rule, values: Mapping[str, float]) -> dict[str, float]:
    if rule.column == "*":
        prefix = f"{rule.name}."
        return {k: x for k, x in values.items() if k.startswith(prefix)}
    return {rule.subject: values[rule.subject]} if rule.subject in values else {}


def evaluate_rules(rules: Sequence[str], values: Mapping[str, float]) -> list[AlertResult]:
    """Evaluate each rule against ``values`` (quantity name -> value, see ``rules``)."""
    out = []
    for text in rules:
        rule = parse_rule(text)
        found = _lookup(rule, values)
        if not found:
            out.append(AlertResult(rule.text, False, note=f"no value for {rule.subject} in "
                                   "this run (a column or metric that was not computed)"))
            continue
        matches = {k: x for k, x in found.items() if rule.holds(x)}
        out.append(AlertResult(rule.text, bool(matches), matches, found))
    return out


def _post(url: str, body: bytes, config: MonitorConfig) -> str | None:
    """POST with retries; None when delivered, else the reason of the last failure."""
    try:
        import httpx
    except ImportError:  # only in the test extras so far
        return "httpx is not installed (pip install httpx)"

    reason = "not attempted"
    for attempt in range(config.delivery_retries + 1):
        if attempt:
            time.sleep(_BACKOFF_S * attempt)
        try:
            response = httpx.post(url, content=body, timeout=config.delivery_timeout_s,
                                  headers={"content-type": "application/json"})
        except httpx.HTTPError as e:
            reason = f"{type(e).__name__}: {e}"
            continue
        except ValueError as e:  # a malformed URL: no point in retrying
            return f"invalid URL ({e})"
        if response.is_success:
            return None
        reason = f"HTTP {response.status_code}"
        if response.status_code < 500:
            break
    return reason


def _run(command: str, body: bytes, config: MonitorConfig) -> str | None:
    try:
        args = shlex.split(command)
    except ValueError as e:
        return f"cannot split the command ({e})"
    if not args:
        return "the command is empty"
    try:
        done = subprocess.run(args, input=body, capture_output=True,
                              timeout=config.command_timeout_s, check=False)
    except FileNotFoundError:
        return f"no such program {args[0]!r}"
    except subprocess.TimeoutExpired:
        return f"timed out after {config.command_timeout_s:g} s"
    except OSError as e:
        return f"{type(e).__name__}: {e}"
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return f"exit code {done.returncode} {tail[0]}".strip()
    return None


def deliver(payload: Mapping[str, Any], config: MonitorConfig) -> list[str]:
    """Send ``payload`` to the configured webhook and command; warnings for failures."""
    body = json.dumps(payload, default=str, allow_nan=False).encode()
    warnings = []
    if config.webhook:
        reason = _post(config.webhook, body, config)
        if reason is not None:
            tries = config.delivery_retries + 1
            warnings.append(f"alert not delivered to webhook {config.webhook}: {reason} "
                            f"(after {tries} attempt{'s' if tries > 1 else ''})")
    if config.command:
        reason = _run(config.command, body, config)
        if reason is not None:
            warnings.append(f"alert not delivered to command {config.command!r}: {reason}")
    return warnings
