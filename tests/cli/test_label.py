"""``forgeline label``: the summary table, the review queue out and back in, ``--json``,
one-line errors; and the labelling lineage ``forgeline runs show`` prints."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import forgeline as fl
from tests.cli.conftest import invoke
from tests.labeling.fakellm import FakeLLMServer
from tests.workflows.labelproject import tweet_llm, write_spec


def test_label_prints_the_sources_and_the_review_queue_then_imports_it(
        fake_llm: FakeLLMServer, tmp_path: Path) -> None:
    llm = tweet_llm(fake_llm)
    spec = write_spec(tmp_path / "p", llm_url=llm.url, rows=120, gold_rows=20)
    data = pd.read_csv(tmp_path / "p" / "tweets.csv")
    data["text"] = "[bold]" + data["text"]  # the data's text is shown as it is, not as markup
    data.to_csv(tmp_path / "p" / "tweets.csv", index=False)
    done = invoke("label", str(spec), "--review", "--set", "review.size=5")
    assert done.exit_code == 0, done.output
    out = done.stdout
    for text in ("Sources", "lf_positive_words", "tiny-test@", "Labelling finished",
                 "accuracy on gold", "20 gold rows", "cache hits", "labelled.parquet",
                 "Review queue", "review.csv"):
        assert text in out, text
    review_file = tmp_path / "p" / "review.csv"
    review = pd.read_csv(review_file, dtype=str, keep_default_na=False)
    assert len(review) == 5 and (review["label"] == "").all()
    assert all(i in out for i in review["id"])  # the table shows the rows the file holds
    assert out.count("[bold]") >= 5
    review["label"] = "negative"
    review.to_csv(review_file, index=False)

    done = invoke("label", str(spec), "--import-review", str(review_file), "--json")
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["gold"]["rows"] == 25 and doc["llm"]["cache_hits"] > 0
    assert not set(review["id"]) & {r["id"] for r in doc["review"]}


def test_runs_show_prints_where_a_training_run_s_labels_came_from(tmp_path: Path) -> None:
    client = fl.Client()
    with client.start_run("m", tags={"forgeline.labels.run": "ab12" * 8,
                                     "forgeline.labels.sources": '{"lf_a": "0f0f"}',
                                     "forgeline.labels.llm": "gemma@http://h/v1"}) as run:
        pass
    done = invoke("runs", "show", run.run_id)
    assert done.exit_code == 0, done.output
    for text in ("labels from run", "ab12" * 8, "lf_a 0f0f", "gemma@http://h/v1"):
        assert text in done.stdout


@pytest.mark.parametrize(("change", "code", "message"), [
    ({"llm": {"url": "http://127.0.0.1:9/v1", "model": "m", "prompt": "p.yaml",
              "max_retries": 0}}, 9, "error: Cannot reach the LLM endpoint http://127.0.0.1:9/v1"),
    ({"data": {"path": "tweets.csv", "text": "body"}}, 2,
     "error: data.text 'body' is not a column of"),
    ({"labels": {"colum": "x"}}, 2, "error: Invalid spec"),
])
def test_errors_are_one_line_and_store_nothing(tmp_path: Path, change: dict[str, object],
                                               code: int, message: str) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "p.yaml").write_text("instruction: Is this tweet negative or positive?\n")
    spec = write_spec(folder, rows=40, gold_rows=5, **change)
    done = invoke("label", str(spec))
    assert done.exit_code == code, done.output
    assert done.stderr.startswith(message), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (folder / "labelled.parquet").exists()
    assert fl.Client().search_runs() == []


def test_llm_url_and_model_flags_override_the_spec(fake_llm: FakeLLMServer,
                                                  tmp_path: Path) -> None:
    llm = tweet_llm(fake_llm)
    spec = write_spec(tmp_path / "p", llm_url="http://127.0.0.1:9/v1", rows=40, gold_rows=5)
    down = invoke("label", str(spec), "--json")
    assert down.exit_code == 9 and "127.0.0.1:9" in down.output
    done = invoke("label", str(spec), "--llm-url", llm.url, "--llm-model", "tiny-test",
                  "--json")
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["llm"]["url"] == llm.url and doc["llm"]["model"] == "tiny-test"
    assert doc["llm"]["rows"] == 40 and doc["llm"]["errors"] == {}
