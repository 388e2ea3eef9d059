"""A real SQLite store with known experiments, runs and model versions, and a CLI driver."""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import forgeline as fl
from forgeline.cli import app
from forgeline.entities import Dataset
from forgeline.errors import ForgelineError
from forgeline.store import close_stores

DATASET = Dataset(digest="ab" * 32, name="transactions", source="data/tx.csv", num_rows=1000,
                  num_columns=12)
GIT = {"forgeline.git.commit": "0123456789abcdef0123456789abcdef01234567",
       "forgeline.git.dirty": "true", "forgeline.command": "train.py --depth 6"}


@dataclass
class World:
    uri: str
    client: fl.Client
    runs: dict[str, str]  # run name -> run id

    def invoke(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return invoke("--store", self.uri, *args, env=env)


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process; COLUMNS is fixed so tables never fold in the tests."""
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250", **(env or {})})


def raised(result: Result) -> BaseException | None:
    """The ForgelineError a failed invocation reported (the CLI turns it into an exit)."""
    error: BaseException | None = result.exception
    while error is not None and not isinstance(error, ForgelineError):
        error = error.__context__
    return error


def sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def world_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Built once (creating a store's schema is the slow part); each test gets a copy.

    Experiments fraud (runs tuning > deeper, baseline) and other (elsewhere); model fraud
    with version 1 (baseline) and 2 (deeper), fraud@champion -> 1.
    """
    root = tmp_path_factory.mktemp("world")
    uri = sqlite_uri(root / "store" / "forgeline.db")
    client = fl.Client(uri, artifact_root=root / "store" / "artifacts")
    model_dir = root / "model"
    model_dir.mkdir()
    (model_dir / "model.bin").write_bytes(b"\0" * 2048)
    runs = {}
    with client.start_run("fraud", name="tuning") as parent:
        parent.log_params({"search": "grid"})
    runs["tuning"] = parent.run_id
    with client.start_run("fraud", name="baseline", tags={"team": "risk", **GIT}) as run:
        run.log_params({"depth": 6, "lr": 0.1})
        run.log_metrics({"auc": 0.91, "loss": 0.3})
        run.log_artifact(model_dir, "model")
        run.log_dataset(DATASET, "train")
    runs["baseline"] = run.run_id
    with client.start_run("fraud", name="deeper", parent_run_id=parent.run_id) as run:
        run.log_params({"depth": 10, "lr": 0.1})
        run.log_metrics({"auc": 0.95, "loss": math.nan})
        run.log_artifact(model_dir, "model")
    runs["deeper"] = run.run_id
    with client.start_run("other", name="elsewhere") as run:
        run.log_metric("acc", math.inf)
    runs["elsewhere"] = run.run_id
    client.register_model("fraud", runs["baseline"])
    client.register_model("fraud", runs["deeper"])
    client.set_alias("fraud", "champion", 1)
    close_stores()  # no open connection while tests copy the files
    return root / "store", runs


@pytest.fixture
def world(world_template: tuple[Path, dict[str, str]], tmp_path: Path) -> World:
    """A private copy of the template store (SQLite file and artifacts) for one test."""
    template, runs = world_template
    shutil.copytree(template, tmp_path / "store")
    uri = sqlite_uri(tmp_path / "store" / "forgeline.db")
    return World(uri, fl.Client(uri), dict(runs))
