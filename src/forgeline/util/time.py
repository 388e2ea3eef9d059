"""Time in the forms Forgeline records and reads: epoch milliseconds and durations.

One grammar for every duration a user types (``--since``, ``--every``, ``--monitor-every``,
``--monitor-window``, the spec's ``retrain.every``): a positive number and an optional unit,
``ms``, ``s``/``sec``, ``m``/``min``, ``h``, ``d`` or ``w``; a bare number is seconds
(``90`` is 90 s). :func:`format_duration` writes them back the short way.

One reading of a point in time a user gives (``--since``/``--until`` of the history,
``Client.get_monitoring_history``): :func:`parse_time`.
"""

from __future__ import annotations

import math
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path

from forgeline.errors import InvalidInput

__all__ = ["format_duration", "now_ms", "parse_duration", "parse_time", "process_started_at",
           "run_duration"]

_DAY_S = 86_400.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|sec|m|min|h|d|w)?\s*$",
                       re.IGNORECASE)
_UNIT_S = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0,
           "d": _DAY_S, "w": 7 * _DAY_S}


def process_started_at() -> float:
    """When this process started (``time.time()`` seconds), so a command's time budget
    covers its interpreter start and imports too; now where the system does not say."""
    try:
        stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text()
                    .splitlines() if line.startswith("btime "))
        started = boot + int(stat[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()
    return min(started, time.time())


def now_ms() -> int:
    """Milliseconds since the Unix epoch: how the store records every time."""
    return time.time_ns() // 1_000_000


def parse_duration(text: str, what: str = "duration") -> float:
    """``"5m"`` -> 300.0 seconds (see the module docstring for the grammar).

    Args:
        text: what the user typed.
        what: what the value is, named in the error (``--since``, ``retrain.every``).

    Raises:
        InvalidInput: naming ``what`` when ``text`` is not a positive, finite duration.
    """
    match = _DURATION.match(text) if isinstance(text, str) else None
    seconds = (float(match.group(1)) * _UNIT_S[(match.group(2) or "s").lower()]
               if match else 0.0)
    if not (seconds > 0 and math.isfinite(seconds)):
        raise InvalidInput(f"Invalid duration {text!r} for {what}.",
                           hint="Use a number and a unit, such as 90s, 5m, 24h or 7d.")
    return seconds


def format_duration(seconds: float) -> str:
    """300 -> ``5m``; 0.5 -> ``0.5s``; 86400 -> ``24h``; 172800 -> ``2d``."""
    for unit, size in (("d", _DAY_S), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0 and not (unit == "d" and seconds < 2 * _DAY_S):
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def run_duration(start_ms: int | None, end_ms: int | None) -> str:
    """How long a run took, for people: ``1h 02m``, ``3m 07s``, ``4.2s``, ``2d 03h``; a run
    without an end counts up to now; ``-`` without a start."""
    if start_ms is None:
        return "-"
    end = end_ms if end_ms is not None else now_ms()
    seconds = max(end - start_ms, 0) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def parse_time(value: int | str | datetime | None, what: str = "time",
               now: int | None = None) -> int | None:
    """A point in time as epoch milliseconds; None stays None.

    Args:
        value: epoch milliseconds (an int), a datetime (naive ones are UTC), an ISO 8601
            string (``2026-12-01``, ``2026-12-01T08:00:00Z``), or a duration meaning that
            long before ``now`` (``"7d"``, ``"12h"``; see :func:`parse_duration`).
        what: what the value is, named in the error (``--since``, ``until``).
        now: the time a duration counts back from (epoch ms); :func:`now_ms` by default.

    Raises:
        InvalidInput: naming ``what`` when ``value`` is none of these.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        stamp = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return int(stamp.timestamp() * 1000)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        if _DURATION.match(value):
            return (now_ms() if now is None else now) - round(
                parse_duration(value, what) * 1000)
        try:
            return parse_time(datetime.fromisoformat(value.strip()), what)
        except ValueError:
            pass
    raise InvalidInput(f"Invalid {what} {value!r}: expected a time.",
                       hint="Give a duration back from now (7d, 12h), an ISO date or time "
                            "(2026-12-01, 2026-12-01T08:00:00Z), or epoch milliseconds.")
