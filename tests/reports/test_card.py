"""render_card: the model card's sections, metrics, caveats and escaping."""

from __future__ import annotations

from dataclasses import replace

from forgeline.reports import render_card
from forgeline.reports.card import PLACEHOLDER
from tests.reports.conftest import EVIL

SECTIONS = ["# Model card: cancer", "## Model details", "## Intended use", "## Training data",
            "## Evaluation", "## Per-slice performance and fairness", "## Caveats and warnings",
            "## How to load"]


def test_card_sections_and_metrics(binary_eval, summary, data, findings) -> None:
    card = render_card(name="cancer", version=3, evaluation=binary_eval, summary=summary,
                       data=data, findings=findings)
    positions = [card.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    for name, value in binary_eval.metrics.items():
        label = f"**{name}**" if name == binary_eval.metric else name
        assert f"| {label} | {value:.4g} |" in card
    assert PLACEHOLDER in card
    assert "| Version | 3 |" in card and "| Training run | r1b2c3 |" in card
    assert "| Digest | sha256:0123abcd |" in card and "| Code version | abc1234 |" in card
    assert "| Dataset | cancer.csv |" in card and "a\\|b (categorical)" in card
    assert 'fl.load_model("cancer@champion")' in card and 'fl.load_model("cancer/3")' in card
    # caveats: failures and warnings, not info; every user string escaped
    assert "**target_leak** (fail)" in card and "**id_columns** (warn)" in card
    assert "missing" not in card.split("## Caveats")[1].split("## How")[0]
    assert EVIL not in card and "&lt;script&gt;alert(1)&lt;/script&gt;" in card
    fair = binary_eval.fairness["sex"]
    assert f"Demographic parity difference: {fair['demographic_parity_difference']:.3g}" in card
    assert "### sex" in card and "### age" in card and "| Q1 [" in card


def test_card_with_intended_use_and_no_slices(regression_eval, summary) -> None:
    ev = replace(regression_eval, slices={}, fairness={})
    card = render_card(name="diabetes", version=None, evaluation=ev,
                       summary={**summary, "alias": "staging"},
                       intended_use="Ranks patients for follow-up calls.")
    assert "Ranks patients for follow-up calls." in card and PLACEHOLDER not in card
    assert "| Version | not registered |" in card
    assert f"| **rmse** | {ev.metrics['rmse']:.4g} | lower is better |" in card
    assert "No sensitive columns were evaluated" in card
    assert 'fl.load_model("diabetes@staging")' in card and "diabetes/" not in card
    assert "No warnings were raised" in card


def test_summary_keys_are_matched_leniently(binary_eval) -> None:
    summary = {"model name": "cancer", "run id": "r9", "model": "lightgbm",
               "test roc_auc": 0.99, "Code-Version": "abc"}
    card = render_card(name="cancer", version=1, evaluation=binary_eval, summary=summary)
    assert "| Training run | r9 |" in card and "| Model type | lightgbm |" in card
    assert "| Code version | abc |" in card
