"""The Ray engine on a real local Ray instance (started once for this folder), and batch
scoring spread over it. The engine contract itself runs over Ray in test_engines.py."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgeline.errors import InvalidInput
from forgeline.names import check_model_name
from forgeline.packaging import load_model
from forgeline.serving.batch import score_file
from tests.smallmodel import package_on, transactions

ray = pytest.importorskip("ray")


pytestmark = pytest.mark.usefixtures("ray_joined")  # tests/engines/conftest.py


def test_map_keeps_order_reports_progress_and_raises_the_tasks_error() -> None:
    from forgeline.engines.ray import RayEngine

    engine = RayEngine()
    seen: list[int] = []
    assert engine.map(math.factorial, [6, 2, 3], on_done=lambda i, _: seen.append(i)) == [
        720, 2, 6]
    assert sorted(seen) == [0, 1, 2] and engine.n_jobs == 2
    assert engine.map(math.factorial, []) == []
    with pytest.raises(InvalidInput, match="Invalid model name 'bad/name'"):
        engine.map(check_model_name, ["fine", "bad/name"])


def test_env_vars_reach_the_workers_that_run_the_tasks() -> None:
    from forgeline.engines.ray import RayEngine

    # the cluster's workers were started without it; os.getenv runs on them
    engine = RayEngine(env_vars={"FORGELINE_TEST_TASK_ENV": "from the driver"})
    assert engine.map(os.getenv, ["FORGELINE_TEST_TASK_ENV", "FORGELINE_TEST_NONE"]) == [
        "from the driver", None]
    assert RayEngine().map(os.getenv, ["FORGELINE_TEST_TASK_ENV"]) == [None]


def test_batch_scoring_on_ray_matches_local_scoring(tmp_path: Path) -> None:
    n = 3_000
    data = transactions(n)
    predictor = load_model(package_on(data, tmp_path / "model"))
    data.to_parquet(tmp_path / "in.parquet", row_group_size=500)
    local = score_file(predictor, tmp_path / "in.parquet", tmp_path / "local.parquet",
                       runtime="native")
    spread = score_file(predictor, tmp_path / "in.parquet", tmp_path / "ray.parquet",
                        engine="ray", chunk_rows=1_000, runtime="native")
    assert spread.rows == local.rows == n
    pd.testing.assert_frame_equal(pd.read_parquet(spread.output),
                                  pd.read_parquet(local.output))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "local.parquet",
                                                          "model", "ray.parquet"]


def test_the_same_function_is_sent_to_the_cluster_once(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    import functools

    from forgeline.engines.ray import RayEngine

    sent: list[object] = []
    put = ray.put
    monkeypatch.setattr(ray, "put", lambda value: sent.append(value) or put(value))
    engine = RayEngine()
    big = functools.partial(np.add, np.arange(100_000))  # as tuning's folds carry a frame
    first = engine.map(big, [1, 2])
    again = engine.map(big, [3])
    assert [int(r[0]) for r in first + again] == [1, 2, 3] and len(sent) == 1
    other = functools.partial(np.add, np.arange(3))
    assert [list(r) for r in engine.map(other, [1])] == [[1, 2, 3]] and len(sent) == 2


def test_a_client_with_the_clusters_token_joins_without_setting_the_auth_mode(
        ray_joined: str, tmp_path: Path) -> None:
    """``ray start`` turns token authentication on; its token at hand is enough (Ray itself
    also wants RAY_AUTH_MODE=token)."""
    import os
    import subprocess
    import sys

    token = tmp_path / "auth_token"
    token.write_text(os.environ["RAY_AUTH_TOKEN"])
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    script = ("import sys; from forgeline.engines.ray import RayEngine; "
              "print(RayEngine(sys.argv[1]).map(abs, [-4]))")
    done = subprocess.run([sys.executable, "-c", script, ray_joined], capture_output=True,
                          text=True, timeout=120, env={**env, "RAY_AUTH_TOKEN_PATH": str(token)})
    assert done.returncode == 0 and done.stdout.strip() == "[4]", done.stderr[-2000:]
