"""A working folder with no FORGELINE_* setting, as tests/conftest.py gives each test, for
fixtures wider than one test (they are set up before a test's own isolation)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["working_folder"]


@contextmanager
def working_folder(folder: Path) -> Iterator[None]:
    """Run the body in ``folder`` with every FORGELINE_* variable but the test PostgreSQL
    server's unset; both are restored at the end."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("FORGELINE_") and name != "FORGELINE_TEST_POSTGRES_URI":
                mp.delenv(name)
        mp.chdir(folder)
        yield
