"""One grammar for every duration a user types, its short form back, and points in time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from forgeline.errors import InvalidInput
from forgeline.util.time import format_duration, now_ms, parse_duration, parse_time


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90.0), ("90s", 90.0), ("1.5m", 90.0), ("2 min", 120.0), ("24h", 86_400.0),
    ("7d", 604_800.0), ("2w", 1_209_600.0), ("250ms", 0.25), (" 5M ", 300.0), (".5h", 1800.0)])
def test_every_form_of_a_duration(text: str, seconds: float) -> None:
    assert parse_duration(text, "--since") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "0", "0s", "-5m", "soon", "5 parsecs", "1e3", "inf"])
def test_a_bad_duration_names_the_option(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_duration(text, "--every")
    assert info.value.message == f"Invalid duration {text!r} for --every."
    assert "30s" not in info.value.message and "24h" in (info.value.hint or "")


@pytest.mark.parametrize(("seconds", "text"), [
    (300.0, "5m"), (0.5, "0.5s"), (86_400.0, "24h"), (172_800.0, "2d"), (90.0, "90s"),
    (3600.0, "1h")])
def test_durations_are_written_back_the_short_way(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


def test_now_is_in_epoch_milliseconds() -> None:
    import time

    before = int(time.time() * 1000)
    assert before - 1 <= now_ms() <= int(time.time() * 1000) + 1


_NOW = 1_796_112_000_000  # 2026-12-01T08:00:00Z


@pytest.mark.parametrize(("value", "ms"), [
    (_NOW, _NOW), (None, None), ("7d", _NOW - 7 * 86_400_000), ("12h", _NOW - 43_200_000),
    ("2026-12-01T08:00:00Z", _NOW), ("2026-12-01T09:00:00+01:00", _NOW),
    ("2026-12-01", _NOW - 8 * 3_600_000), (datetime(2026, 12, 1, 8, tzinfo=UTC), _NOW),
    (datetime(2026, 12, 1, 8), _NOW),  # naive: UTC
    (datetime(2026, 12, 1, 10, tzinfo=timezone(timedelta(hours=2))), _NOW),
    ("2026-12-01T08:00:00.123456789+00:00", _NOW + 123)])
def test_every_form_of_a_point_in_time(value: object, ms: int | None) -> None:
    assert parse_time(value, "--since", now=_NOW) == ms  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["", "yesterday", "2026-13-01", 1.5, True])
def test_a_bad_time_names_the_option(value: object) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_time(value, "--since")  # type: ignore[arg-type]
    assert info.value.message == f"Invalid --since {value!r}: expected a time."
    assert "7d" in (info.value.hint or "") and "2026-12-01" in (info.value.hint or "")
