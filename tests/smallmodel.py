"""A small table of transactions and a logistic regression packaged on it, for tests
that need a real model package but not a training run (batch scoring, its Ray and
partitioned forms)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from forgeline.data.inference import infer_schema
from forgeline.entities import Task
from forgeline.packaging import Signature, save_package
from forgeline.training.plan import ModelPlan

__all__ = ["FEATURES", "package_on", "transactions"]

FEATURES = ["amount", "country"]


def transactions(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` rows of ``id`` (from ``seed * 10,000``), ``amount``, ``country`` and a 0/1
    ``label`` that both features explain, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"id": np.arange(n) + seed * 10_000, "amount": rng.gamma(2, 40, n),
                         "country": rng.choice(["FR", "DE", "US"], n)})
    data["label"] = (data.amount / 80 + (data.country == "US") > 1.5).astype(int)
    return data


def package_on(data: pd.DataFrame, folder: Path) -> Path:
    """A logistic regression on ``FEATURES`` of ``data``, saved as a package in ``folder``."""
    schema = infer_schema(data.drop(columns=["id"]), "label")
    plan = ModelPlan(Task.BINARY, schema, tuple(FEATURES), "roc_auc", 0, False)
    pipeline = plan.pipeline("logistic_regression", {}).fit(data[FEATURES], data.label)
    signature = Signature.from_frame(data[FEATURES], schema, "binary",
                                     list(pipeline.classes_))
    save_package(folder, pipeline, signature, profile={}, metrics={}, card="")
    return folder
