"""Small real datasets written to files, and specs that train on them quickly."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[2] / "examples" / "fraud"))
from generate import generate


@pytest.fixture(scope="session")
def fraud_frame() -> pd.DataFrame:
    return generate(6000, customers=800, merchants=120, days=60, fraud_rate=0.05, seed=3)


def write_fraud_spec(folder: Path, frame: pd.DataFrame) -> Path:
    """``frame`` as ``folder/tx.parquet`` and a spec that trains on it, ``folder/spec.yaml``."""
    frame.to_parquet(folder / "tx.parquet", index=False)
    spec = {
        "name": "fraud",
        "data": {"path": "tx.parquet", "target": "is_fraud", "time_column": "ts",
                 "drop": ["txn_id", "customer_id"], "sensitive": ["age_band"]},
        "models": ["logistic_regression", "lightgbm"],
        "tuning": {"trials": 4, "cv_folds": 3},
        "register": {"min_score": 0.6, "alias": "champion"},
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture
def fraud_spec(tmp_path: Path, fraud_frame: pd.DataFrame) -> Path:
    return write_fraud_spec(tmp_path, fraud_frame)
