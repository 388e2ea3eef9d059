"""Evaluations of real small models, shared by the report and card tests, and the packaged
model the monitoring tests monitor (for the monitoring report)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from forgeline.data.findings import Finding, Severity
from forgeline.entities import Evaluation
from forgeline.training.evaluate import evaluate
from tests.monitoring.conftest import model  # noqa: F401  (a fixture: the monitoring report's)

EVIL = "<script>alert(1)</script>"


def offline_page(path: Path, sections: Sequence[str]) -> str:
    """The HTML of a report written atomically (no temporary file left), whole offline (no
    external script or stylesheet, plotly.js embedded once), with every section; returned
    for the test's own checks."""
    html = path.read_text(encoding="utf-8")
    assert not list(path.parent.glob(".*.tmp"))
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.I) and "<link" not in html
    assert html.count(get_plotlyjs()[:300]) == 1
    for heading in sections:
        assert f"<h2>{heading}</h2>" in html
    return html


def _evaluation(loader, task: str, estimator) -> Evaluation:
    X, y = loader(return_X_y=True, as_frame=True)
    X = X.rename(columns={X.columns[0]: EVIL})  # a hostile column name reaches every table
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    estimator.fit(X_train, y_train)
    n = len(X_test)
    sensitive = pd.DataFrame({"sex": np.where(np.arange(n) % 3 == 0, "f", EVIL),
                              "age": np.random.default_rng(0).integers(18, 90, n)})
    return evaluate(estimator, X_test, y_test, task, sensitive=sensitive, importance_repeats=2)


@pytest.fixture(scope="session")
def binary_eval() -> Evaluation:
    return _evaluation(load_breast_cancer, "binary",
                       make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)))


@pytest.fixture(scope="session")
def multiclass_eval() -> Evaluation:
    return _evaluation(load_wine, "multiclass",
                       make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)))


@pytest.fixture(scope="session")
def regression_eval() -> Evaluation:
    return _evaluation(load_diabetes, "regression", Ridge())


@pytest.fixture
def findings() -> list[Finding]:
    return [Finding("target_leak", Severity.FAIL, f"Column {EVIL} leaks the target.", (EVIL,)),
            Finding("id_columns", Severity.WARN, "Column id looks like an identifier."),
            Finding("missing", Severity.INFO, "Column bmi has 2% missing values.")]


@pytest.fixture
def summary() -> dict[str, object]:
    return {"name": "cancer", "version": 3, "run_id": "r1b2c3", "model_type": "Pipeline",
            "time": "2025-01-02T03:04:05", "rows": 569, "code_version": "abc1234"}


@pytest.fixture
def data() -> dict[str, object]:
    return {"name": "cancer.csv", "digest": "sha256:0123abcd", "rows": 569,
            "columns": {EVIL: {"kind": "numeric", "dtype": "float64", "missing_share": 0.0,
                               "n_unique": 456},
                        "a|b": {"kind": "categorical", "dtype": "object",
                                "missing_share": 0.25, "n_unique": 3, "top": "x"}},
            "class_balance": {"0": 212, "1": 357}}
