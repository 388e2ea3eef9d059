"""The shared printing helpers: JSON conventions, human-readable values, the error line."""

from __future__ import annotations

import json
import math

import pytest

from forgeline.cli.output import (
    error_line,
    fmt_value,
    print_json,
)
from forgeline.entities import Lineage, ModelVersion, Run, RunStatus
from forgeline.util.files import format_bytes
from forgeline.util.json import jsonable
from forgeline.util.time import run_duration


def _run(**metrics: float) -> Run:
    return Run("r" * 32, "1", "trial", RunStatus.FAILED, 1_000, None, None,
               metrics=dict(metrics))


def test_non_finite_numbers_become_strings() -> None:
    assert jsonable([math.nan, math.inf, -math.inf, 0.5, 1], non_finite_as_text=True) == [
        "NaN", "Infinity", "-Infinity", 0.5, 1]
    assert jsonable([math.nan, math.inf, 0.5]) == [None, None, 0.5]  # the stored JSON forms


def test_entities_become_plain_json(capsys: pytest.CaptureFixture[str]) -> None:
    mv = ModelVersion("fraud", 3, "r" * 32, "model", 5, aliases=("champion",))
    lineage = Lineage(mv, _run(auc=math.nan), (), (), None, None)
    print_json(lineage)
    shown = json.loads(capsys.readouterr().out)  # strict JSON: no bare NaN
    assert shown["model_version"]["aliases"] == ["champion"]
    assert shown["run"]["status"] == "FAILED"
    assert shown["run"]["metrics"] == {"auc": "NaN"}
    assert shown["parent_runs"] == [] and shown["git_commit"] is None


def test_table_values() -> None:
    assert [fmt_value(v) for v in (math.nan, math.inf, -math.inf, None, 0.123456789, "6")] \
        == ["NaN", "inf", "-inf", "-", "0.123457", "6"]
    assert [format_bytes(n) for n in (0, 1023, 2048, 5 * 1024**3)] == ["0 B", "1023 B",
                                                                   "2.0 KiB", "5.0 GiB"]
    assert run_duration(0, 4_200) == "4.2s"
    assert run_duration(0, 187_000) == "3m 07s"
    assert run_duration(0, 3_720_000) == "1h 02m"
    assert run_duration(0, 3 * 86_400_000) == "3d 00h"
    assert run_duration(None, None) == "-"


def test_error_line_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    error_line("first line\nsecond   line")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: first line second line\n"
