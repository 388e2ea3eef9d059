"""One ``forgeline demo`` run at a tiny scale, shared by the session: the story's own test
(tests/workflows/test_demo.py) and the web UI's pages over the store it leaves
(tests/server/ui/test_demo_pages.py) read it; neither changes it.

The demo runs in a worker thread: Playwright's sync API keeps an event loop running in the
main thread while a browser is open, and the demo runs asyncio.
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from forgeline.cli.demo import show_demo
from forgeline.workflows.demo import DemoConfig, DemoResult
from tests.isolation import working_folder

__all__ = ["TINY", "DemoRun", "demo_run"]

TINY = dict(train_rows=3000, requests=400, trials=1, challenger_trials=1, gate_rows=150,
            min_labelled=50, fraud_rate=0.05, runtime="native", watch_interval_s=0.5)


@dataclass(frozen=True)
class DemoRun:
    home: Path
    result: DemoResult
    output: str  # what the story printed (rich console, 120 columns)
    home_env_after: str | None  # FORGELINE_HOME once the demo was done


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """The demo, run once with no FORGELINE_* setting in a folder of its own (as
    tests/conftest.py isolates a test); its home is ``<folder>/demo``."""
    folder = tmp_path_factory.mktemp("demo-run")
    home = folder / "demo"
    out = io.StringIO()
    with working_folder(folder):
        with ThreadPoolExecutor(1) as pool:
            result = pool.submit(show_demo, DemoConfig(home=home, **TINY),
                                 Console(file=out, width=120)).result()
        after = os.environ.get("FORGELINE_HOME")
    return DemoRun(home, result, out.getvalue(), after)
