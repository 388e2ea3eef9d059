"""One grammar for every duration a user types, and its short form back."""

from __future__ import annotations

import pytest

from forgeline.errors import InvalidInput
from forgeline.util.time import format_duration, now_ms, parse_duration


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
