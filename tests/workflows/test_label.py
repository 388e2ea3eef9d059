"""``forgeline label`` as a library call: real tweets, the example labelling functions, the
fake OpenAI-compatible endpoint on loopback, a real SQLite store; then ``train`` on the
labels, whose run carries the labelling run's lineage."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import forgeline as fl
from forgeline.data.io import load_table
from forgeline.data.versioning import content_digest
from forgeline.errors import InvalidInput, InvalidSpec, NotFound, UpstreamError
from forgeline.workflows.label import label
from forgeline.workflows.label_lineage import RUN_TAG, label_lineage
from forgeline.workflows.train import train
from tests.labeling.fakellm import MODEL, FakeLLMServer
from tests.workflows.labelproject import EXAMPLE_PROMPT, tweet_llm, write_spec

SCHEMA_KEYS = {"name", "created", "rows", "classes", "dataset", "label_model", "gold",
               "sources", "agreement", "thresholds", "llm", "suspects", "review"}


@pytest.fixture
def llm(fake_llm: FakeLLMServer) -> FakeLLMServer:
    return tweet_llm(fake_llm)


def _nothing_recorded(folder: Path) -> None:
    assert not (folder / "labelled.parquet").exists()
    assert fl.Client().search_runs(None, "tags.`forgeline.kind` = 'label'") == []


def test_label_functions_llm_and_gold_then_train_with_lineage(llm: FakeLLMServer,
                                                               tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "p", llm_url=llm.url)
    result = label(spec)
    doc = result.summary
    assert set(doc) == SCHEMA_KEYS
    json.dumps(doc, allow_nan=False)  # plain JSON, no NaN
    out = load_table(result.output)
    data = pd.read_csv(tmp_path / "p" / "tweets.csv")
    assert len(out) == len(data) == doc["rows"] == 300
    assert list(out.columns) == [*data.columns, "label", "label_confidence"]
    gold = data["human_label"].notna()
    assert (out.loc[gold, "label"] == data.loc[gold, "human_label"]).all()
    assert (out.loc[gold, "label_confidence"] == 1.0).all()
    model_rows = ~gold & out["label"].notna()
    assert (out.loc[model_rows, "label_confidence"] >= 0.7).all()
    assert (out.loc[~gold & out["label"].isna(), "label_confidence"] < 0.7).all()
    assert 0.5 < doc["label_model"]["coverage"] < 1.0
    assert doc["label_model"]["labelled"] == int(out["label"].notna().sum())
    assert doc["gold"] == {"rows": 30, "source": "column human_label"}
    assert doc["label_model"]["name"] in ("dawid_skene", "majority")
    assert "gold rows" in doc["label_model"]["reason"]
    assert doc["label_model"]["accuracy"] >= doc["label_model"]["majority_accuracy"]
    # the best single source is judged on at least 5 gold votes (of 30), never on one
    best = doc["label_model"]["best_source"]
    votes = {s["name"]: s["gold_votes"] for s in doc["sources"]}
    assert best is not None and votes[best["name"]] >= 5
    assert best["accuracy"] == max(s["accuracy"] for s in doc["sources"]
                                   if s["gold_votes"] >= 5)
    kinds = {s["name"]: s["kind"] for s in doc["sources"]}
    assert kinds["llm"] == "llm" and kinds["lf_positive_words"] == "function"
    llm_doc = doc["llm"]
    assert llm_doc["rows"] == 300 and llm_doc["cache_hits"] == 0 and llm_doc["errors"] == {}
    assert llm_doc["prompt_tokens"] > 0 and llm_doc["kappa_rows"] == 30
    assert -1.0 <= llm_doc["kappa"] <= 1.0
    assert [t["threshold"] for t in doc["thresholds"]][:2] == [0.5, 0.55]
    assert len(doc["review"]) == 10 and doc["suspects"] == []
    assert not {r["id"] for r in doc["review"]} & {str(i) for i in data.loc[gold, "tweet_id"]}
    # the run: its output data set is the file's content digest, as training computes it
    client = fl.Client()
    run = client.get_run(result.run_id)
    assert run.tags["forgeline.kind"] == "label"
    assert run.tags["forgeline.labels.digest"] == content_digest(out) == result.dataset.digest
    assert json.loads(run.tags["forgeline.labels.sources"])["llm"].startswith("tiny-test@")
    assert run.params["llm_model"] == "tiny-test" and run.params["threshold"] == "0.7"
    datasets = {ctx: d.digest for d, ctx in client.get_run_datasets(run.run_id)}
    assert datasets["labels"] == result.dataset.digest
    artifacts = {a.path for a in client.list_artifacts(run.run_id)}
    assert {"labels.json", "review.csv", "spec.json", "functions/tweets_lfs.py",
            "prompt/tweets_prompt.yaml"} <= artifacts
    assert "report.html" in artifacts
    assert "tweets-sentiment" in result.report.read_text()
    # a second run asks the endpoint nothing: every answer is in the home's cache
    calls = sum(llm.fake.calls.values())
    again = label(spec, ["output.path=again.parquet"])
    assert sum(llm.fake.calls.values()) == calls
    assert again.summary["llm"]["requests"] == 0
    assert again.summary["llm"]["cache_hits"] == data["text"].nunique()  # each asked once

    trained = train({"name": "tweets-model",
                     "data": {"path": str(result.output), "target": "label",
                              "drop": ["tweet_id", "human_label"]},
                     "features": {"text": ["text"]}, "models": ["logistic_regression"],
                     "tuning": {"trials": 1, "cv_folds": 2}, "register": {"enabled": False}})
    tags = client.get_run(trained.run_id).tags
    trained_spec = json.loads(client.download_artifacts(trained.run_id, "spec.json",
                                                        tmp_path / "spec").read_text())
    assert trained_spec["data"]["drop"] == ["tweet_id", "human_label", "label_confidence"]
    checks = json.loads((client.download_artifacts(trained.run_id, "report/checks.json",
                                                   tmp_path / "checks")).read_text())
    unlabelled = int(out["label"].isna().sum())
    assert {"check": "missing_target", "rows": unlabelled} in [
        {"check": f["check"], "rows": f["details"].get("rows")}
        for f in checks["findings"]]  # below the threshold: training drops those rows
    assert tags[RUN_TAG] == again.run_id  # the newest run that wrote these very rows
    assert tags["forgeline.labels.sources"] == run.tags["forgeline.labels.sources"]
    assert tags["forgeline.labels.llm"] == f"tiny-test@{llm.url}"


def test_auto_takes_dawid_skene_without_gold_and_existing_labels_get_suspects(
        tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "p", noisy=True, gold={})
    doc = label(spec).summary
    assert doc["gold"] is None and doc["label_model"]["accuracy"] is None
    assert doc["label_model"]["name"] == "dawid_skene"
    assert "no gold" in doc["label_model"]["reason"]
    frame = pd.read_csv(tmp_path / "p" / "tweets.csv")
    flipped = {str(i) for i in frame["tweet_id"][frame.index % 7 == 3]}
    suspects = [s["id"] for s in doc["suspects"]]
    assert len(suspects) >= 10
    # every seventh label is flipped (14%); most suspects are among them
    assert sum(s in flipped for s in suspects) / len(suspects) >= 0.5
    noisy = next(s for s in doc["sources"] if s["name"] == "noisy_label")
    assert noisy["kind"] == "labels" and noisy["coverage"] == 1.0


def test_a_reviewed_csv_becomes_gold(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "p", gold={})
    first = label(spec, review=True)
    review = pd.read_csv(first.review_file, dtype=str, keep_default_na=False)
    assert (review.columns[0], review.columns[-1]) == ("id", "label")
    assert len(review) == 10
    review.loc[:4, "label"] = "positive"
    review.to_csv(first.review_file, index=False)
    second = label(spec, import_review=[first.review_file])
    assert second.summary["gold"]["rows"] == 5
    out = load_table(second.output).set_index("tweet_id")
    ids = review["id"].astype(int)[:5]
    assert (out.loc[ids, "label"] == "positive").all()
    assert not {r["id"] for r in second.summary["review"]} & set(review["id"][:5])


def test_an_endpoint_that_is_down_stops_the_run_before_anything_is_written(
        tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "p", llm_url="http://127.0.0.1:9/v1")
    with pytest.raises(UpstreamError, match="Cannot reach the LLM endpoint"):
        label(spec, ["llm.max_retries=0"])
    _nothing_recorded(tmp_path / "p")


def test_an_llm_that_labels_no_row_is_an_error(llm: FakeLLMServer, tmp_path: Path) -> None:
    llm.fake.labels = ("joyful", "gloomy")  # answers that name no class of the spec
    spec = write_spec(tmp_path / "p", llm_url=llm.url)
    with pytest.raises(UpstreamError, match=r"labelled none of 300 rows \(300 not_a_label"):
        label(spec)
    _nothing_recorded(tmp_path / "p")


@pytest.mark.parametrize(("change", "error", "message"), [
    ({"data": {"path": "tweets.csv", "text": "body"}}, InvalidInput,
     r"data.text 'body' is not a column of .*tweets.csv"),
    ({"functions": ["broken.py"]}, InvalidInput,
     r"broken.py fails on import: ZeroDivisionError"),
    ({"functions": ["missing.py"]}, NotFound, r"missing.py does not exist"),
    ({"classes": ["negative", "neutral"]}, InvalidInput,
     r"gold labels are not one of the classes \['negative', 'neutral'\] \(e.g. \['positive'\]\)"),
    ({"functions": []}, InvalidSpec, r"names no labelling source"),
    ({"label_model": {"threshold": 2}}, InvalidSpec,
     r"label_model.threshold \(line \d+\): Input should be less than or equal to 1"),
    ({"output": {"column": "text"}}, InvalidSpec, r"output.column 'text' is also data.text"),
    ({"output": {"path": "tweets.csv"}}, InvalidSpec, r"output.path is the data file"),
    ({"output": {"path": "out.txt"}}, InvalidSpec, r"out.txt is neither .parquet nor .csv"),
    ({"data": {"path": "tweets.csv", "text": "text", "id": "human_label"}}, InvalidInput,
     r"The id column 'human_label' has missing or repeated values"),
    ({"llm": {"url": "http://127.0.0.1:9/v1", "model": "m", "prompt": "prompt.yaml"}},
     InvalidSpec, r"prompt.yaml names the classes \['bad', 'good'\], the spec \['negative'"),
])
def test_bad_input_is_one_clear_error_and_nothing_is_written(
        tmp_path: Path, change: dict[str, object], error: type[Exception],
        message: str) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "broken.py").write_text("x = 1 / 0\n")
    (folder / "prompt.yaml").write_text("instruction: Good or bad?\nclasses: [bad, good]\n")
    spec = write_spec(folder, rows=60, gold_rows=10, **change)
    with pytest.raises(error, match=message) as raised:
        label(spec)
    assert raised.value.hint
    _nothing_recorded(folder)


def test_lineage_is_found_through_every_store(store_uri: str) -> None:
    client = fl.Client(store_uri)
    digest = "ab" * 32
    assert label_lineage(client, digest) == {}
    with client.start_run("labels", tags={"forgeline.labels.digest": digest,
                                          "forgeline.labels.llm": "m@http://x/v1"}) as run:
        pass
    with client.start_run("other", tags={"forgeline.labels.digest": "cd" * 32}):
        pass
    assert label_lineage(client, digest) == {RUN_TAG: run.run_id,
                                             "forgeline.labels.llm": "m@http://x/v1"}


def test_rows_the_llm_fails_on_are_counted_and_left_to_the_other_sources(
        llm: FakeLLMServer, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "p", llm_url=llm.url, rows=60, gold_rows=10)
    data = pd.read_csv(tmp_path / "p" / "tweets.csv")
    data.loc[[11, 12, 13], "text"] += " FAIL500"  # the endpoint answers 500 for these
    data.to_csv(tmp_path / "p" / "tweets.csv", index=False)
    result = label(spec, ["llm.max_retries=0"])
    assert result.summary["llm"]["errors"] == {"http": 3}
    source = next(s for s in result.summary["sources"] if s["name"] == "llm")
    assert source["errors"] == 3 and source["coverage"] == 57 / 60
    assert source["error_examples"][0].startswith(f"row {data['tweet_id'][11]}: http: ")
    assert result.warnings == ("the LLM labelled 57 of 60 rows (3 http)",)
    out = load_table(result.output)
    assert out["label"].notna().sum() == result.summary["label_model"]["labelled"] > 30


def test_a_function_that_raises_on_some_rows_abstains_there_and_is_counted(
        tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "lfs.py").write_text(
        "def lf_short(row):\n"
        "    if len(row['text']) < 60:\n"
        "        raise ValueError('too short to judge')\n"
        "    return 'negative' if '?' in row['text'] else None\n")
    spec = write_spec(folder, rows=60, gold_rows=10, functions=["lfs.py"], noisy=True)
    result = label(spec)
    short = int((pd.read_csv(folder / "tweets.csv")["text"].str.len() < 60).sum())
    source = next(s for s in result.summary["sources"] if s["name"] == "lf_short")
    assert 0 < short < 60 and source["errors"] == short
    assert source["error_examples"] == ["ValueError: too short to judge"]
    assert f"lf_short raised on {short} rows (ValueError: too short to judge)" in result.warnings


def test_json_mode_asks_a_chat_model(llm: FakeLLMServer, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "p", llm_url=llm.url, rows=60, gold_rows=10)
    doc = label(spec, ["llm.mode=json"]).summary
    assert doc["llm"]["mode"] == "json" and doc["llm"]["errors"] == {}
    assert len(llm.fake.response_formats) >= 60  # every row through chat completions
    source = next(s for s in doc["sources"] if s["name"] == "llm")
    assert source["coverage"] == 1.0 and source["version"].endswith("/json")


def test_the_example_specs_load() -> None:
    from forgeline.labeling.spec import load_label_spec, load_prompt
    from forgeline.training.spec import load_spec
    from tests.workflows.labelproject import ROOT

    folder = ROOT / "examples" / "labeling"
    spec = load_label_spec(folder / "tweets.yaml")
    assert spec.data.path == folder / "tweets.csv" and spec.functions == (folder / "tweets_lfs.py",)
    assert spec.llm is not None
    prompt = load_prompt(spec.llm.prompt, spec.classes)
    assert prompt.classes == ("negative", "positive") and len(prompt.examples) == 4
    assert load_label_spec(folder / "tweets.yaml", ["llm=null"]).llm is None
    trained_on = load_spec(folder / "train.yaml").data.path
    assert trained_on == spec.output_path == folder / "tweets-labelled.parquet"


def test_number_classes_read_from_columns_with_gaps(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    spec = write_spec(folder, rows=60, gold_rows=10, noisy=True, classes=["0", "1"],
                      functions=[])
    data = pd.read_csv(folder / "tweets.csv")
    codes = {"negative": 0, "positive": 1}
    data["human_label"] = data["human_label"].map(codes)  # floats: 1.0 and NaN
    data["noisy_label"] = data["noisy_label"].map(codes)
    data.to_csv(folder / "tweets.csv", index=False)
    result = label(spec, ["label_model.model=majority"])
    assert result.summary["gold"]["rows"] == 10
    assert result.summary["label_model"]["name"] == "majority"
    assert result.summary["label_model"]["reason"].startswith("chosen in the spec")
    noisy = next(s for s in result.summary["sources"] if s["name"] == "noisy_label")
    assert noisy["errors"] == 0 and noisy["coverage"] == 1.0
    out = load_table(result.output)
    assert out["label"][:10].tolist() == [str(int(v)) for v in data["human_label"][:10]]


def test_an_endpoint_that_wants_an_api_key_gets_it_from_the_environment(
        llm: FakeLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    llm.fake.api_key = "sk-test-5b1e"
    spec = write_spec(tmp_path / "p", rows=60, gold_rows=10, llm={
        "url": llm.url, "model": MODEL, "prompt": str(EXAMPLE_PROMPT),
        "api_key_env": "TEST_LLM_KEY"})
    with pytest.raises(InvalidSpec, match="TEST_LLM_KEY"):
        label(spec)
    _nothing_recorded(tmp_path / "p")
    monkeypatch.setenv("TEST_LLM_KEY", "sk-wrong")
    with pytest.raises(UpstreamError, match="Incorrect API key") as refused:
        label(spec)
    assert "api_key_env" in (refused.value.hint or "")
    _nothing_recorded(tmp_path / "p")
    monkeypatch.setenv("TEST_LLM_KEY", "sk-test-5b1e")
    result = label(spec)
    assert result.summary["llm"]["errors"] == {} and result.summary["llm"]["rows"] == 60
    # the spec names the variable; the key itself is in no file the run wrote
    assert not [p for p in tmp_path.rglob("*")
                if p.is_file() and b"sk-test-5b1e" in p.read_bytes()]
