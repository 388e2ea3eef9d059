"""The training report's "Why the model decides": a real LightGBM model explained on a
sample, its figures read back out of the HTML."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from forgeline.data.inference import infer_schema
from forgeline.entities import Evaluation, Task
from forgeline.packaging.attributions import (
    attribution_record,
    explain_or_note,
    global_explanation,
)
from forgeline.packaging.explain import Explainer
from forgeline.reports import render_report
from forgeline.training.plan import ModelPlan
from tests.smallmodel import transactions

FEATURES = ["amount", "country", "flag"]


def _data(n: int, seed: int) -> pd.DataFrame:
    data = transactions(n, seed)
    data["flag"] = np.random.default_rng(seed).random(n) < 0.3
    return data


def _fit(kind: str) -> Any:
    train = _data(1_500, 0)
    schema = infer_schema(train.drop(columns=["id"]), "label")
    plan = ModelPlan(Task.BINARY, schema, tuple(FEATURES), "roc_auc", 0, False)
    return plan.pipeline(kind, {}).fit(train[FEATURES], train.label)


def figures(html: str) -> dict[str, dict[str, Any]]:
    """Each figure of a report by its heading: its traces and layout, as plotly got them."""
    out = {}
    decoder = json.JSONDecoder()
    for m in re.finditer(r'<div class="plot"><h4>(.*?)(?: <span|</h4>)', html):
        call = html.index("Plotly.newPlot(", m.end())
        start = html.index("[", call)
        data, end = decoder.raw_decode(html, start)
        layout, _ = decoder.raw_decode(html, html.index("{", end))
        out[re.sub(r"&#3\d;|&amp;", "", m.group(1))] = {"data": data, "layout": layout}
    return out


@pytest.fixture(scope="module")
def explained(tmp_path_factory: pytest.TempPathFactory, binary_eval: Evaluation
              ) -> tuple[Any, pd.DataFrame, Any, str]:
    model = _fit("lightgbm")
    test = _data(600, 1)[FEATURES]
    g = global_explanation(model, test, seed=3)
    path = render_report(tmp_path_factory.mktemp("rep") / "report.html", title="t",
                         evaluation=binary_eval, summary={"name": "m"}, explanation=g)
    return model, test, g, Path(path).read_text()


def test_the_section_shows_summary_bars_dependence_and_interactions(explained) -> None:
    model, test, g, html = explained
    assert '<section id="explain"><h2>Why the model decides</h2>' in html
    assert 'href="#explain"' in html
    figs = figures(html)
    titles = list(figs)
    assert "SHAP summary: contribution of each feature per row (log-odds)" in titles
    assert "Mean |contribution| per feature (log-odds)" in titles
    assert "Interactions: mean |SHAP interaction| between features" in titles
    dependence = [t for t in titles if t.startswith("Dependence: ")]
    assert dependence[:2] == [f"Dependence: {c}" for c in list(g.mean_abs)[:2]]
    assert "Categorical columns (country) are coloured by category code" in html
    assert "mean |SHAP interaction| over 200 rows" in html

    # the mean |contribution| shown is the Explainer's on the same rows (all 600 here)
    bars = figs["Mean |contribution| per feature (log-odds)"]["data"][0]
    expected = np.abs(Explainer(model).explain(test).contributions).mean(axis=0)
    shown = dict(zip(bars["y"], bars["x"], strict=True))
    assert shown == pytest.approx(dict(zip(FEATURES, expected, strict=True)), rel=1e-9)
    assert bars["y"][-1] == max(shown, key=shown.get)  # largest on top
    # one beeswarm row per feature, every row of the sample in it, ordered like the bars
    swarm = figs["SHAP summary: contribution of each feature per row (log-odds)"]
    assert [t["name"] for t in swarm["data"]] == bars["y"]
    assert all(_length(t["x"]) == len(test) for t in swarm["data"])
    assert swarm["layout"]["yaxis"]["ticktext"] == bars["y"]


def _length(values: Any) -> int:
    if isinstance(values, dict):  # plotly's binary array: {"dtype": "f4", "bdata": ...}
        import base64

        return len(base64.b64decode(values["bdata"])) // 4
    return len(values)


def test_the_record_kept_in_the_package(explained) -> None:
    _, test, g, _ = explained
    record = attribution_record(g)
    assert record["rows"] == len(test) and record["units"] == "log-odds"
    columns = record["columns"]
    assert [c["rank"] for c in columns.values()] == [1, 2, 3]
    assert sum(c["share"] for c in columns.values()) == pytest.approx(1.0)
    assert {k: v["mean_abs"] for k, v in columns.items()} == g.mean_abs
    # a pair's interaction is symmetric; the diagonal holds the main effects
    assert np.allclose(g.interactions, g.interactions.T)


def test_a_linear_model_has_no_interactions(binary_eval: Evaluation, tmp_path: Path
                                            ) -> None:
    train = _data(800, 2)
    g, note = explain_or_note(_fit("logistic_regression"), train[FEATURES],
                              background=train[FEATURES])
    assert g is not None and note == "" and g.interactions is None
    html = render_report(tmp_path / "r.html", title="t", evaluation=binary_eval,
                         summary={}, explanation=g).read_text()
    assert "No interactions: a linear model has none" in html
    assert "Dependence: amount" in html


def test_a_model_that_cannot_be_explained_gets_a_note(binary_eval: Evaluation,
                                                      tmp_path: Path) -> None:
    data = _data(200, 4)
    bare = LogisticRegression().fit(data[["amount"]], data.label)
    g, note = explain_or_note(bare, data[["amount"]], background=data[["amount"]])
    assert g is None and "Cannot explain a LogisticRegression" in note
    html = render_report(tmp_path / "r.html", title="t", evaluation=binary_eval, summary={},
                         explanation=g, explanation_note=note).read_text()
    assert '<section id="explain">' in html and "Cannot explain a LogisticRegression" in html
    assert "SHAP summary" not in html


def test_a_personal_column_is_shown_by_name_only(explained, binary_eval: Evaluation,
                                                 tmp_path: Path) -> None:
    _, test, g, _ = explained
    html = render_report(tmp_path / "r.html", title="t", evaluation=binary_eval, summary={},
                         explanation=g, personal=("country",)).read_text()
    figs = figures(html)
    assert not any(t == "Dependence: country" for t in figs)
    swarm = figs["SHAP summary: contribution of each feature per row (log-odds)"]["data"]
    country = next(t for t in swarm if t["name"] == "country")
    grey = next(t for t in swarm if t["name"] == "no value")
    assert _length(country["x"]) == 0 and _length(grey["x"]) == len(test)
    assert set(grey["text"]) == {"country (personal: value not shown)"}
    shown = [t for t in swarm if t["name"] != "no value"]
    assert not any(v in json.dumps(t.get("text")) for t in shown for v in ("FR", "DE", "US"))
    assert "Personal columns (country) are shown by name only" in html
