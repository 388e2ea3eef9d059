"""Generated frames for the data tests: a realistic churn table with fixed seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def churn_frame(rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Customers of a subscription service, one row each, sorted by signup time.

    ``churned`` depends on ``usage_score`` (alone worth a ROC AUC of about 0.8), on the plan
    and on support calls, with noise: a dataset without leaks.
    """
    rng = np.random.default_rng(seed)
    signup = pd.Timestamp("2024-01-01") + pd.to_timedelta(
        np.sort(rng.uniform(0, 365 * 86400, rows)), unit="s")
    usage = rng.normal(0, 1, rows)
    plan = rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.3, 0.2])
    calls = rng.poisson(1.2, rows)
    logit = -1.1 - 1.6 * usage + 0.35 * (plan == "basic") + 0.25 * calls
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    income = np.round(rng.lognormal(10.5, 0.5, rows), 2)
    income[rng.random(rows) < 0.05] = np.nan
    return pd.DataFrame({
        "customer_id": [f"C{i:06d}" for i in rng.permutation(rows)],
        "signup": signup.floor("min"),
        "age": rng.integers(18, 80, rows),
        "income": income,
        "region": rng.choice(["north", "south", "east", "west", "central"], rows),
        "plan": plan,
        "autopay": rng.random(rows) < 0.6,
        "support_calls": calls,
        "usage_score": np.round(usage, 3),
        "churned": churned,
    })


@pytest.fixture
def churn() -> pd.DataFrame:
    return churn_frame()
