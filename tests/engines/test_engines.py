"""The engine seam: results in task order, progress as they arrive, engines by name."""

from __future__ import annotations

import math
import sys

import pytest

from forgeline.engines import LocalEngine, get_engine
from forgeline.errors import InvalidInput


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_local_map_keeps_order_and_reports_each_result(n_jobs: int) -> None:
    seen: list[tuple[int, int]] = []
    results = LocalEngine(n_jobs).map(math.factorial, [5, 3, 0, 4],
                                      on_done=lambda i, r: seen.append((i, r)))
    assert results == [120, 6, 1, 24]
    assert sorted(seen) == [(0, 120), (1, 6), (2, 1), (3, 24)]


def test_engines_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(get_engine(None), LocalEngine)
    assert get_engine("local", 3).n_jobs == 3
    with pytest.raises(InvalidInput, match=r"Unknown engine 'spark'\. Use one of local, ray\."):
        get_engine("spark")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    engine = get_engine("ray", address="ray://nowhere:10001")
    with pytest.raises(InvalidInput, match=r"needs Ray.*pip install 'forgeline\[ray\]'"):
        engine.map(math.factorial, [1])
