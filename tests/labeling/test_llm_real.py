"""The LLM labeller end to end with a real model: Gemma 3 270M (a small base model) served
by llama-cpp-python's OpenAI-compatible server, few-shot completions scored by the
log-probability of each label. Runs where both packages are installed (``llm`` marker;
see llamaserver.py), skipped elsewhere with the reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from forgeline.labeling.llm import LLMConfig, LLMLabeller
from forgeline.llm.cache import AnswerCache
from tests.cli.conftest import invoke
from tests.labeling import llamaserver
from tests.labeling.sms import ROWS, TEMPLATE
from tests.workflows.labelproject import EXAMPLE_PROMPT, write_spec

pytestmark = [pytest.mark.llm,
              pytest.mark.skipif(llamaserver.available() is not None,
                                 reason=f"real LLM: {llamaserver.available()}")]


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[llamaserver.LlamaServer]:
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with llamaserver.LlamaServer(log) as server:
        yield server


def test_gemma_labels_sms_spam_through_the_cache(gemma: llamaserver.LlamaServer,
                                                  tmp_path: Path) -> None:
    texts = [t for t, _ in ROWS]
    truth = [y for _, y in ROWS]
    config = LLMConfig(gemma.url, llamaserver.MODEL_ALIAS, concurrency=2, timeout_s=120)
    with AnswerCache(tmp_path / "answers.sqlite") as cache, \
            LLMLabeller(config, TEMPLATE, cache=cache) as lab:
        result = lab.label(texts)
        assert not result.errors, result.errors
        accuracy = sum(int(p == y) for p, y in zip(result.labels, truth, strict=True)) / 20
        assert accuracy >= 0.75, (accuracy, result.labels.tolist())
        # 20 rows and the 3 content-free inputs of the calibration, one token each
        assert result.stats.prompt_tokens > 23 * 100 and result.stats.completion_tokens == 23
        assert result.stats.cache_hits == 0 and len(cache) == 23
        assert result.calibration is not None and result.calibration[1] > 0.5  # leans spam
        again = lab.label(texts)
    assert again.labels.tolist() == result.labels.tolist()
    assert (again.stats.cache_hits, again.stats.requests) == (20, 0)


def test_forgeline_label_with_gemma_end_to_end(gemma: llamaserver.LlamaServer,
                                               tmp_path: Path) -> None:
    """The user's path: a spec with the example functions, the example few-shot prompt and
    the real model; 40 real tweets of which 20 have a human label; `forgeline label`."""
    spec = write_spec(tmp_path / "p", rows=40, gold_rows=20, llm={
        "url": gemma.url, "model": llamaserver.MODEL_ALIAS, "prompt": str(EXAMPLE_PROMPT),
        "concurrency": 2, "calibrate": False, "timeout_s": 120})
    done = invoke("label", str(spec), "--json")
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    llm = doc["llm"]
    assert llm["model"] == llamaserver.MODEL_ALIAS and llm["errors"] == {}
    # 40 completions and the one look at /v1/models that the run starts with
    assert (llm["rows"], llm["requests"], llm["cache_hits"]) == (40, 41, 0)
    assert llm["completion_tokens"] == 40 and llm["prompt_tokens"] > 40 * 100
    assert llm["kappa_rows"] == 20 and llm["kappa"] is not None
    source = next(s for s in doc["sources"] if s["kind"] == "llm")
    # a 270M base model on these mostly negative tweets: right on most gold rows
    assert source["coverage"] == 1.0 and source["accuracy"] >= 0.6, source
    out = pd.read_parquet(tmp_path / "p" / "labelled.parquet")
    assert len(out) == 40 and out["label"].notna().sum() == doc["label_model"]["labelled"]
    again = json.loads(invoke("label", str(spec), "--json").stdout)
    assert (again["llm"]["requests"], again["llm"]["cache_hits"]) == (0, 40)
    assert again["dataset"]["digest"] == doc["dataset"]["digest"]
