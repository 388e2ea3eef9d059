"""End-to-end tests of the web UI in a real browser: Playwright for Python driving
Debian's Chromium (``/usr/bin/chromium``, installed by ``scripts/install-sysdeps.sh``;
Playwright downloads no browser), against the session's real team server on loopback.

Each test gets a fresh browser context (no cookies) and its page; any script error on the
page fails the test.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forgeline.entities import RunStatus
from forgeline.store import Store

CHROMIUM = os.environ.get("FORGELINE_CHROMIUM") or shutil.which("chromium") or \
    shutil.which("chromium-browser")
SHOTS = Path(__file__).resolve().parents[3] / "docs" / "ui"
# read at import: the tests run with every FORGELINE_* variable cleared (tests/conftest.py)
TAKE_SHOTS = bool(os.environ.get("FORGELINE_SCREENSHOTS"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Not for the session: Playwright's sync API keeps an
    event loop running in this thread while it is open, and later tests that call
    asyncio.run (the demo, the serving tests) would fail."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed: `make test` installs Debian's chromium "
                        "(scripts/install-sysdeps.sh).")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page in a fresh context; script errors on it fail the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(15_000)
    yield page
    context.close()
    assert not errors, f"script errors on the page: {errors}"


def screenshot(page: Any, name: str) -> None:
    """Keep a screenshot of the page for the README (docs/ui/NAME.png) when
    FORGELINE_SCREENSHOTS is set (`make screenshots`), so a test run leaves the tree as it
    found it."""
    if not TAKE_SHOTS:
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def seed_runs(store: Store, experiment: str = "churn", runs: int = 12, steps: int = 200,
              seed: int = 0) -> list[str]:
    """``runs`` finished runs with params, a tag, and two metric curves of ``steps`` steps."""
    import random

    rng = random.Random(seed)
    eid = store.get_or_create_experiment(experiment).experiment_id
    ids = []
    for r in range(runs):
        run = store.create_run(eid, f"run-{r:02d}", 1_700_000_000_000 + r * 60_000)
        depth, lr = rng.choice([3, 4, 6, 8]), rng.choice([0.01, 0.1, 0.3])
        points = [("loss", math.exp(-s / (20 + depth * 5)) + rng.random() * 0.02, s,
                   1_700_000_000_000 + s) for s in range(steps)]
        points += [("auc", 0.7 + 0.25 * (1 - math.exp(-s / 40)) * (depth / 8)
                    + rng.random() * 0.01, s, 1_700_000_000_000 + s) for s in range(steps)]
        store.log_batch(run.run_id, metrics=points,
                        params={"depth": str(depth), "lr": str(lr)},
                        tags={"team": rng.choice(["risk", "growth"])})
        store.set_run_status(run.run_id, RunStatus.FINISHED,
                             1_700_000_000_000 + r * 60_000 + 5_000 + r * 1000)
        ids.append(run.run_id)
    return ids
