"""LLM features (``features: {llm: [...]}``): trained from a spec against the fake
OpenAI-compatible server of tests/labeling/fakellm.py, packaged, loaded, scored through the
answer cache, and served over real HTTP (200; 502 with the LLM down; 504 when it is slow).

The table: support tickets. Whether a ticket is escalated depends on whether its memo asks
for a refund (said many ways; the fake LLM says yes to "refund" and "money back") and on
its amount; the memo's topic is a category question.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import forgeline as fl
from forgeline.cli import main
from forgeline.errors import InvalidSpec, UpstreamError, UpstreamTimeout
from forgeline.packaging.llm_features import LLMFeatures, llm_stats, reset_llm_stats
from forgeline.serving.app import create_app
from forgeline.serving.config import ServeConfig
from forgeline.serving.runtime import select_runtime
from forgeline.store import close_stores
from forgeline.training.spec import load_spec
from forgeline.workflows.train import train
from tests.labeling import llamaserver
from tests.labeling.fakellm import MODEL, FakeLLMServer
from tests.serving.conftest import LiveServer

REFUND = ["I want a refund for my {t}", "please give me my money back for the {t}",
          "refund the {t} now", "I expect my money back, the {t} is broken"]
OTHER = ["where is my {t}", "the {t} arrived late", "how do I track my {t}",
         "thanks, the {t} is fine", "can I change the address for my {t}"]
THINGS = ["order", "parcel", "invoice", "delivery", "package", "billing statement"]
ASK = "Does the customer ask for a refund?"
TOPIC = ["billing", "delivery", "other"]


def tickets(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        refund = bool(rng.random() < 0.4)
        memo = str(rng.choice(REFUND if refund else OTHER)).format(t=rng.choice(THINGS))
        amount = float(rng.gamma(2.0, 20.0))
        escalated = int(refund and amount > 15) if rng.random() > 0.05 else int(rng.random() < .5)
        rows.append({"memo": memo, "amount": amount, "escalated": escalated})
    return pd.DataFrame(rows)


def spec(data: Path, url: str, **extra: object) -> dict:
    return {"name": "tickets", "data": {"path": str(data), "target": "escalated"},
            "features": {"llm": [{"column": "memo", "ask": ASK, "type": "bool",
                                  "examples": [{"text": "refund me", "answer": True}]},
                                 {"column": "memo", "ask": "What is the ticket about?",
                                  "type": "category", "categories": TOPIC, "name": "topic"}]},
            "llm": {"url": url, "model": MODEL, "timeout_s": 5},
            "models": ["logistic_regression"], "tuning": {"trials": 1, "cv_folds": 2},
            "fairness": {"resamples": 0}, "register": {"alias": "champion"}, **extra}


@dataclass(frozen=True)
class Trained:
    root: Path
    data: Path
    llm: FakeLLMServer
    score: float
    asked: int  # questions the training run sent to the LLM

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.root / 'store' / 'forgeline.db'}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    """tickets@champion, trained once with a bool and a category LLM feature on memo."""
    root = tmp_path_factory.mktemp("llmfeat")
    data = root / "tickets.csv"
    tickets().to_csv(data, index=False)
    with FakeLLMServer() as llm, pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("FORGELINE_CACHE_DIR", str(root / "cache"))
        patch.delenv("FORGELINE_LLM_URL", raising=False)
        result = train(spec(data, llm.url), client=fl.Client(
            f"sqlite:///{root / 'store' / 'forgeline.db'}"))
        close_stores()
        assert result.model_version is not None
        yield Trained(root, data, llm, result.score, sum(llm.fake.calls.values()))


@pytest.fixture
def home(trained: Trained, monkeypatch: pytest.MonkeyPatch) -> Trained:
    monkeypatch.chdir(trained.root)
    monkeypatch.setenv("FORGELINE_CACHE_DIR", str(trained.root / "cache"))
    monkeypatch.delenv("FORGELINE_LLM_URL", raising=False)
    trained.llm.reset()
    reset_llm_stats()
    return trained


def _step(predictor: fl.Predictor) -> LLMFeatures:
    return predictor.model[0].named_transformers_["llm_memo"][0]


def test_the_answers_are_features_asked_once(home: Trained) -> None:
    distinct = tickets().memo.nunique()
    # each distinct memo once per question: CV folds, refit, evaluation and explanation
    # all read the answer cache
    assert home.asked == 2 * distinct
    assert home.score >= 0.85
    without = train(spec(home.data, home.llm.url, features={}, register={"enabled": False}),
                    client=fl.Client(home.uri))
    assert home.score > without.score + 0.02  # TF-IDF of 200 memos alone does worse
    predictor = fl.load_model("tickets@champion", client=fl.Client(home.uri))
    names = list(predictor.model[0].get_feature_names_out())
    refund = names.index("llm_memo_customer_ask_refund")
    assert abs(predictor.model[-1].coef_[0][refund]) > 0.5
    assert {"topic=billing", "topic=delivery", "topic=other"} <= set(names)
    run = fl.Client(home.uri).get_run(predictor.model_version.run_id)
    assert run.metrics["llm_answers"] == 2 * distinct == run.metrics["llm_calls"]
    assert run.metrics["llm_invalid"] == 0 and run.params["llm.model"] == MODEL


def test_the_package_records_the_questions_and_needs_no_network_to_load(home: Trained
                                                                         ) -> None:
    predictor = fl.load_model("tickets@champion", client=fl.Client(home.uri))
    step = _step(predictor)
    assert step.model == MODEL and step.url == home.llm.url and step.mode == "logprobs"
    assert [(q["name"], q["type"], q["ask"]) for q in step.questions_] == [
        ("llm_memo_customer_ask_refund", "bool", ASK),
        ("topic", "category", "What is the ticket about?")]
    assert step.questions_[1]["categories"] == TOPIC
    assert step.questions_[0]["examples"] == [["refund me", "yes"]]
    assert all(len(d) == 64 for d in step.digests_)
    requirements = (predictor.path / "requirements.txt").read_text().splitlines()
    assert any(r.startswith("httpx==") for r in requirements)
    card = (predictor.path / "card.md").read_text()
    assert "LLM features" in card and ASK in card
    assert sum(home.llm.fake.calls.values()) == 0  # loading asked nothing


def test_batch_scoring_reads_the_cache_and_asks_only_new_texts(home: Trained) -> None:
    predictor = fl.load_model("tickets@champion", client=fl.Client(home.uri))
    known = tickets().drop(columns="escalated").head(40)
    predictor.predict(known)
    assert sum(home.llm.fake.calls.values()) == 0
    assert llm_stats().cache_hits == 2 * known.memo.nunique()
    fresh = pd.DataFrame([{"memo": "I demand a refund for the lamp", "amount": 90.0},
                          {"memo": "GIBBERISH about the lamp", "amount": 90.0},
                          {"memo": None, "amount": 90.0}])
    proba = predictor.predict_proba(fresh)[1].to_numpy()
    assert home.llm.fake.calls["I demand a refund for the lamp"] == 2  # two questions
    assert proba[0] > 0.5 and np.isfinite(proba).all()
    stats = llm_stats()
    assert stats.invalid == 2 and stats.no_text == 2  # missing values, imputed
    predictor.predict(fresh)
    assert home.llm.fake.calls["I demand a refund for the lamp"] == 2  # cached now


def test_the_llm_url_comes_from_the_environment(home: Trained,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    predictor = fl.load_model("tickets@champion", client=fl.Client(home.uri))
    monkeypatch.setenv("FORGELINE_LLM_URL", "http://127.0.0.1:9/v1")  # nothing listens
    row = pd.DataFrame([{"memo": "a memo never asked before", "amount": 1.0}])
    with pytest.raises(UpstreamError, match=r"The LLM 'tiny-test' at "
                       r"http://127\.0\.0\.1:9/v1 \(features llm_memo_customer_ask_refund, "
                       r"topic of column memo\) failed: Cannot reach"):
        predictor.predict(row)


def test_served_over_http_with_a_502_and_504_policy(home: Trained, tmp_path: Path) -> None:
    predictor = fl.load_model("tickets@champion", client=fl.Client(home.uri))
    assert select_runtime(predictor, "auto").detail == (
        "native: the model asks an LLM for features (llm_memo_customer_ask_refund, topic)")
    config = ServeConfig(model="tickets@champion", store_uri=home.uri, log_predictions=False,
                         cache_dir=str(tmp_path / "models"), llm_url=home.llm.url,
                         llm_timeout_s=0.5)
    app = create_app(config)
    served = app.state.forgeline.deployment.primary
    assert served.llm_probe is not None and served.llm_probe.startswith(
        f"{MODEL} at {home.llm.url}: ") and " ms (" in served.llm_probe
    rows = {"records": [{"memo": "refund my kettle please", "amount": 60.0}]}
    with LiveServer(app) as server:
        ok = httpx.post(f"{server.url}/predict", json=rows, timeout=30)
        assert ok.status_code == 200, ok.text
        assert ok.json()["predictions"] == [1]
        explained = httpx.post(f"{server.url}/explain", json=rows, timeout=30)
        assert explained.status_code == 200, explained.text
        assert "memo" in json.dumps(explained.json())

        home.llm.fake.down = True
        down = httpx.post(f"{server.url}/predict", json={"records": [
            {"memo": "refund my toaster please", "amount": 60.0}]}, timeout=30)
        assert down.status_code == 502, down.text
        assert down.json()["code"] == "UPSTREAM_ERROR"
        assert f"The LLM 'tiny-test' at {home.llm.url}" in down.json()["error"]
        assert httpx.get(f"{server.url}/v2/health/live", timeout=10).status_code == 200
        cached = httpx.post(f"{server.url}/predict", json=rows, timeout=30)
        assert cached.status_code == 200  # answered from the cache, LLM down or not

        home.llm.fake.down = False
        home.llm.fake.delay_s = 2.0
        slow = httpx.post(f"{server.url}/predict", json={"records": [
            {"memo": "refund my fridge please", "amount": 60.0}]}, timeout=30)
        assert slow.status_code == 504, slow.text
        assert slow.json()["code"] == "UPSTREAM_TIMEOUT"
        assert "within 0.5 s" in slow.json()["error"], slow.json()
        home.llm.fake.delay_s = 0.0
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert 'forgeline_llm_feature_answers_total{source="cache"}' in metrics
    assert "forgeline_llm_feature_errors_total" in metrics


@pytest.mark.parametrize(("change", "message"), [
    ({"features": {"llm": [{"column": "memo", "ask": "Topic?", "type": "category"}]}},
     "needs at least two distinct categories"),
    ({"features": {"llm": [{"column": "memo", "ask": "Refund?", "categories": ["a", "b"]}]}},
     "categories are for type category, not bool"),
    ({"features": {"llm": [{"column": "memo", "ask": "Refund?"},
                           {"column": "memo", "ask": "Refund?"}]}},
     "two LLM features are named llm_memo_refund"),
    ({"features": {"llm": [{"column": "memo", "ask": "Topic?", "type": "category",
                            "categories": ["a", "b"],
                            "examples": [{"text": "x", "answer": "c"}]}]}},
     "the example answer 'c' is not one of a, b"),
    ({"features": {"llm": [{"column": "memo", "ask": "How many?", "type": "number",
                            "examples": [{"text": "x", "answer": "many"}]}]}},
     "the example answer 'many' is not a number"),
    ({"llm": {"url": "http://127.0.0.1:9/v1"}}, "features.llm needs llm.model"),
    ({"llm": {"model": MODEL}}, r"features.llm needs llm.url \(or the environment variable "
                                "FORGELINE_LLM_URL\\)"),
])
def test_bad_llm_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: dict,
                       message: str) -> None:
    monkeypatch.delenv("FORGELINE_LLM_URL", raising=False)
    raw = {**spec(tmp_path / "t.csv", "http://127.0.0.1:9/v1"), **change}
    with pytest.raises(InvalidSpec, match=message):
        load_spec(json.loads(json.dumps(raw)))


def test_an_unknown_column_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "t.csv"
    tickets(20).to_csv(data, index=False)
    raw = spec(data, "http://127.0.0.1:9/v1")
    raw["features"]["llm"][0]["column"] = "note"
    with pytest.raises(InvalidSpec, match=r"features.llm\[0\].column 'note' is not a column "
                       r"of t.csv") as raised:
        train(raw, client=fl.Client(f"sqlite:///{tmp_path / 'fl.db'}"))
    assert "memo" in (raised.value.hint or "")
    close_stores()


def test_json_mode_and_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGELINE_CACHE_DIR", str(tmp_path / "cache"))
    memo = pd.Series(["refund 3 items", "where is my order", "GIBBERISH 7", None], name="memo")
    questions = [{"name": "refund", "ask": ASK, "type": "bool"},
                 {"name": "count", "ask": "How many items?", "type": "number"},
                 {"name": "topic", "ask": "Topic?", "type": "category",
                  "categories": ["billing", "order"]}]
    with FakeLLMServer() as llm:
        for mode in ("logprobs", "json"):
            step = LLMFeatures(questions, MODEL, llm.url, mode=mode).fit(memo.to_frame())
            out = step.transform(memo.to_frame())
            assert list(step.get_feature_names_out()) == [
                "refund", "count", "topic=billing", "topic=order"]
            assert out[0, 0] > 0.9 and out[1, 0] < 0.1 and out[0, 1] == 3.0
            assert np.isnan(out[1, 1])  # "none": no number
            assert out[1, 3] > 0.9  # "where is my order": order
            assert np.isnan(out[3]).all()  # no text: not asked
            assert np.isnan(out[2, [0, 2, 3]]).all()  # GIBBERISH: no allowed answer
        unknown = LLMFeatures(questions[:1], "no-such-model", llm.url).fit(memo.to_frame())
        with pytest.raises(UpstreamError, match=r"The LLM 'no-such-model' at .* failed: The "
                           r"LLM endpoint .* does not serve the model 'no-such-model'; it "
                           r"serves \['tiny-test'\]"):
            unknown.transform(memo.to_frame())
        llm.fake.delay_s = 1.0
        slow = LLMFeatures(questions[:1], MODEL, llm.url).fit(memo.to_frame()).connect(
            timeout_s=0.2)
        with pytest.raises(UpstreamTimeout, match=r"within 0\.2 s"):
            slow.transform(pd.DataFrame({"memo": ["a text not cached yet"]}))


def test_an_api_key_is_read_from_the_environment_where_the_model_predicts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_llm: FakeLLMServer) -> None:
    monkeypatch.setenv("FORGELINE_CACHE_DIR", str(tmp_path / "cache"))
    fake_llm.fake.api_key = "sk-feat-77aa"
    memo = pd.DataFrame({"memo": ["refund my order", "where is my parcel"]})
    questions = [{"name": "refund", "ask": ASK, "type": "bool"}]
    step = LLMFeatures(questions, MODEL, fake_llm.url, api_key_env="TEST_LLM_KEY").fit(memo)
    with pytest.raises(InvalidSpec, match="TEST_LLM_KEY"):
        step.transform(memo)
    monkeypatch.setenv("TEST_LLM_KEY", "sk-feat-77aa")
    out = step.transform(memo)
    assert out[0, 0] > 0.9 and out[1, 0] < 0.1
    # what a package keeps is the variable's name, never the key
    assert step.get_params()["api_key_env"] == "TEST_LLM_KEY"
    assert "sk-feat-77aa" not in repr(step.__getstate__())


def test_forgeline_predict_asks_through_the_environment_url(
        home: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    rows = tmp_path / "in.csv"
    pd.DataFrame([{"memo": "refund my stove", "amount": 50.0},
                  {"memo": "where is my stove", "amount": 50.0}]).to_csv(rows, index=False)
    monkeypatch.setenv("FORGELINE_LLM_URL", "http://127.0.0.1:9/v1")  # nothing listens
    with pytest.raises(SystemExit) as exited:
        main(["--store", home.uri, "predict", "tickets@champion", str(rows), "--output",
              str(tmp_path / "out.csv"), "--no-progress"])
    err = capsys.readouterr().err
    assert exited.value.code == 9 and "Traceback" not in err and err.count("\n") <= 2, err
    assert "http://127.0.0.1:9/v1" in err
    monkeypatch.setenv("FORGELINE_LLM_URL", home.llm.url)
    with pytest.raises(SystemExit) as exited:
        main(["--store", home.uri, "predict", "tickets@champion", str(rows), "--output",
              str(tmp_path / "out.csv"), "--no-progress"])
    assert exited.value.code in (0, None)
    scored = pd.read_csv(tmp_path / "out.csv")
    assert list(scored.prediction) == [1, 0]
    assert home.llm.fake.calls["refund my stove"] == 2


@pytest.mark.llm
@pytest.mark.skipif(llamaserver.available() is not None,
                    reason=f"no real LLM here: {llamaserver.available()}")
def test_gemma_answers_the_questions_through_the_cache(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The real Gemma 3 270M behind llama_cpp.server: every answer is an allowed one (the
    few-shot examples show a base model the form), and a second pass asks nothing."""
    monkeypatch.setenv("FORGELINE_CACHE_DIR", str(tmp_path / "cache"))
    memo = pd.DataFrame({"memo": ["I want a refund for my broken kettle",
                                  "Where is my parcel? It has not arrived yet"]})
    questions = [{"name": "refund", "ask": ASK, "type": "bool",
                  "examples": [["Refund my order please, it was broken", "yes"],
                               ["When will my order ship?", "no"]]},
                 {"name": "topic", "ask": "What is the ticket about?", "type": "category",
                  "categories": TOPIC,
                  "examples": [["My invoice shows the wrong price", "billing"],
                               ["The courier left my box at the wrong door", "delivery"],
                               ["Do you sell gift cards?", "other"]]},
                 {"name": "items", "ask": "How many items are mentioned?", "type": "number",
                  "examples": [["I ordered 2 lamps", "2"]]}]
    reset_llm_stats()
    with llamaserver.LlamaServer(tmp_path / "llama.log") as gemma:
        step = LLMFeatures(questions, llamaserver.MODEL_ALIAS, gemma.url).fit(memo)
        first = step.transform(memo)
        assert first.shape == (2, 5) and np.isfinite(first).all(), first
        np.testing.assert_allclose(first[:, 1:4].sum(axis=1), 1.0)
        assert llm_stats().calls == 6 and llm_stats().invalid == 0
        np.testing.assert_array_equal(step.transform(memo), first)
        assert llm_stats().calls == 6 and llm_stats().cache_hits == 6


def test_a_server_starts_with_its_llm_down_and_says_so(home: Trained, tmp_path: Path) -> None:
    config = ServeConfig(model="tickets@champion", store_uri=home.uri, log_predictions=False,
                         cache_dir=str(tmp_path / "models"), llm_url="http://127.0.0.1:9/v1")
    served = create_app(config).state.forgeline.deployment.primary
    assert served.llm_probe is not None
    assert served.llm_probe.startswith(f"{MODEL} at http://127.0.0.1:9/v1: not answering (")
    assert "Cannot reach" in served.llm_probe
