"""Every command with FORGELINE_STORE_URI=http://...: the team server as a store, for real
(a console script in its own process, the server in this one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from forgeline.entities import Role
from tests.server.conftest import Team

FORGELINE = Path(sys.executable).with_name("forgeline")


def _spec(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1],
                          "y": (x[:, 0] + rng.normal(0, 0.5, 300) > 0).astype(int)})
    frame.to_csv(folder / "data.csv", index=False)
    spec = {"name": "tiny", "data": {"path": "data.csv", "target": "y"},
            "models": ["logistic_regression"], "tuning": {"trials": 2, "cv_folds": 3},
            "register": {"alias": "champion"}}
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    return folder / "spec.yaml"


def test_train_list_and_load_through_a_team_server(secured: Team, tmp_path: Path) -> None:
    work = tmp_path / "laptop"
    work.mkdir()
    spec = _spec(work)
    env = {**os.environ, "COLUMNS": "200", "FORGELINE_STORE_URI": secured.url,
           "FORGELINE_TOKEN": secured.secret(Role.WRITER)}

    def forgeline(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(FORGELINE), *args], capture_output=True, text=True,
                              cwd=work, env=env, timeout=300)

    trained = forgeline("train", str(spec), "--json")
    assert trained.returncode == 0, trained.stderr
    result = json.loads(trained.stdout)
    assert result["model_version"]["aliases"] == ["champion"]
    runs = forgeline("runs", "list", "--experiment", "tiny")
    assert runs.returncode == 0, runs.stderr
    assert result["run_id"][:8] in runs.stdout
    models = forgeline("models", "list")
    assert models.returncode == 0 and "tiny" in models.stdout and "@champion -> 1" in models.stdout
    # everything lives on the server: its store and its artifact folder, nothing local
    assert secured.store.resolve_model_version("tiny@champion").run_id == result["run_id"]
    assert any((secured.artifacts / "objects").iterdir())
    assert not (work / ".forgeline" / "artifacts").exists()
    # a reader elsewhere loads the model back through the server
    env["FORGELINE_TOKEN"] = secured.secret(Role.READER)
    loaded = subprocess.run(
        [sys.executable, "-c", "import forgeline as fl, pandas as pd; "
         "m = fl.load_model('tiny@champion'); "
         "print(m.predict(pd.DataFrame({'a': [2.0, -2.0], 'b': [0.0, 0.0]})).tolist())"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[1, 0]"
    assert list((tmp_path / ".forgeline" / "cache" / "artifacts" / "objects").iterdir())
    scored = forgeline("predict", "tiny@champion", "data.csv", "-o", "scores.parquet",
                       "--no-progress")  # batch scoring loads the package through the server
    assert scored.returncode == 0, scored.stderr
    assert len(pd.read_parquet(work / "scores.parquet")) == 300
    denied = forgeline("models", "alias", "tiny", "x", "1")  # a reader may not move aliases
    assert denied.returncode == 8, denied.stderr
    assert "needs the role writer" in denied.stderr and "Traceback" not in denied.stderr


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "FORGELINE_STORE_URI": "http://127.0.0.1:9"}
    done = subprocess.run([str(FORGELINE), "runs", "list"], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 7
    assert done.stderr.startswith("error: Cannot reach the Forgeline server at "
                                  "http://127.0.0.1:9")
    assert done.stderr.count("\n") == 1
