"""The layers of ARCHITECTURE.md hold: import-linter's contracts (pyproject.toml) over the
whole import graph, function-level imports included, with no exception listed; every
package and module of forgeline sits in a layer; nothing imports the public API module."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "src" / "forgeline"


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def test_the_contracts_hold_with_no_exceptions() -> None:
    contracts = _config()["contracts"]
    assert {c["type"] for c in contracts} == {"layers", "acyclic_siblings"}
    assert not any("ignore_imports" in c for c in contracts)  # no exception listed
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_every_package_and_module_has_a_layer() -> None:
    layers = next(c for c in _config()["contracts"] if c["type"] == "layers")["layers"]
    named = {name.strip(" ()") for layer in layers for name in
             layer.replace("|", " ").replace(":", " ").split()}
    children = {p.stem if p.suffix == ".py" else p.name for p in PACKAGE.iterdir()
                if (p.suffix == ".py" and p.name != "__init__.py")
                or (p.is_dir() and (p / "__init__.py").is_file())}
    assert children - named == set(), "put these in a layer of [tool.importlinter]"


def test_nothing_imports_the_public_api_module() -> None:
    """``forgeline/__init__.py`` re-exports from every layer; importing it from inside
    would be an import up the layers that the layers contract cannot see."""
    graph = grimp.build_graph("forgeline")
    assert graph.find_modules_that_directly_import("forgeline") == set()
