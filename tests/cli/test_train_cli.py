"""``forgeline train`` and ``forgeline report`` through the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

FORGELINE = Path(sys.executable).with_name("forgeline")


def _forgeline(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([str(FORGELINE), *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def _spec(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1],
                          "y": (x[:, 0] + rng.normal(0, 0.5, 300) > 0).astype(int)})
    frame.to_csv(tmp_path / "data.csv", index=False)
    spec = {"name": "tiny", "data": {"path": "data.csv", "target": "y"},
            "models": ["logistic_regression"], "tuning": {"trials": 2, "cv_folds": 3},
            "register": {"alias": "champion"}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path / "spec.yaml"


def test_train_then_report(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    done = _forgeline("train", str(spec), "--set", "tuning.trials=3", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["model_version"]["aliases"] == ["champion"]
    assert result["model"] == "logistic_regression" and result["score"] > 0.8
    assert "tuning" in done.stderr  # the progress bar went to stderr
    shown = _forgeline("report", result["run_id"][:8], cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    path = Path(shown.stdout.strip())
    assert path.is_file() and path.suffix == ".html" and "<html" in path.read_text()[:500]
    table = _forgeline("train", str(spec), cwd=tmp_path)
    assert table.returncode == 0 and "tiny/2 @champion" in table.stdout


def test_mistakes_are_one_line(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    cases = [
        (("train", str(spec), "--set", "tunning.trials=2"), 2, "unknown key 'tunning'"),
        (("train", "nope.yaml"), 2, "Cannot read spec nope.yaml"),
        (("train", str(spec), "--set", "data.target=label"), 2, "'label'"),
        (("report", "ffffffff"), 3, "No run id starts with 'ffffffff'"),
    ]
    for args, code, fragment in cases:
        done = _forgeline(*args, cwd=tmp_path)
        assert done.returncode == code, (args, done.stderr)
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
        assert fragment in done.stderr and "Traceback" not in done.stderr
