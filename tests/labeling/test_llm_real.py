"""The LLM labeller end to end with a real model: Gemma 3 270M (a small base model) served
by llama-cpp-python's OpenAI-compatible server, few-shot completions scored by the
log-probability of each label. Runs where both packages are installed (``llm`` marker;
see llamaserver.py), skipped elsewhere with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from forgeline.labeling.llm import LLMConfig, LLMLabeller
from forgeline.llm.cache import AnswerCache
from tests.labeling import llamaserver
from tests.labeling.sms import ROWS, TEMPLATE

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
