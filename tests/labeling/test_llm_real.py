"""The LLM labeller end to end with a real model: Gemma 3 270M (a small base model) served
by llama-cpp-python's OpenAI-compatible server, few-shot completions scored by the
log-probability of each label. Runs where both packages are installed (``llm`` marker;
see llamaserver.py), skipped elsewhere with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from forgeline.labeling.llm import LLMConfig, LLMLabeller
from forgeline.labeling.llm_cache import AnswerCache
from forgeline.labeling.prompt import PromptTemplate
from tests.labeling import llamaserver

pytestmark = [pytest.mark.llm,
              pytest.mark.skipif(llamaserver.available() is not None,
                                 reason=f"real LLM: {llamaserver.available()}")]

TEMPLATE = PromptTemplate(
    instruction="Classify each SMS message as spam (unsolicited ads, prizes, scams) or ham "
                "(an ordinary personal message).",
    classes=("ham", "spam"),
    examples=(
        ("Are we still meeting for lunch tomorrow?", "ham"),
        ("WINNER!! You have won a 1000 GBP prize. Call 09061701461 to claim now", "spam"),
        ("Sorry, I'll call you later, I'm in a meeting", "ham"),
        ("FREE entry to our weekly competition, text WIN to 80086 now!", "spam"),
    ))

# (text, is spam): written for this test, in the style of the SMS spam collection
ROWS = [
    ("Hey, what time does the film start tonight?", 0),
    ("Congratulations! You've been selected for a FREE iPhone. Reply YES to claim", 1),
    ("Can you pick up some milk on the way home?", 0),
    ("URGENT: your mobile number has won 2000 cash. Call 09050000327 now", 1),
    ("I'm running 10 minutes late, start without me", 0),
    ("Get a free ringtone every week! Text TONE to 85222. 1.50/msg", 1),
    ("Happy birthday! Hope you have a lovely day", 0),
    ("You have 1 new voicemail. Claim your free prize at www.prize-claim.biz", 1),
    ("Did you finish the report for Monday?", 0),
    ("Final notice: claim your guaranteed 500 pound reward, call 0800 123 456", 1),
    ("Mum says dinner is at 7, don't be late", 0),
    ("Cheap loans approved instantly! No credit check. Reply LOAN now", 1),
    ("Thanks for the lift yesterday, see you Friday", 0),
    ("WIN a luxury holiday for two! Text GO to 87121 to enter the draw", 1),
    ("Ok, I'll bring the charger when I come over", 0),
    ("Your account is suspended. Verify your details at bit.ly/secure-bank now", 1),
    ("Where did you park the car?", 0),
    ("Exclusive offer: 50% off all ringtones, text STOP to opt out", 1),
    ("Good luck with your exam today!", 0),
    ("You are a lucky winner of our weekly cash draw. Call 09066 to collect", 1),
]


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
        assert result.stats.prompt_tokens > 20 * 50 and result.stats.completion_tokens == 20
        assert result.stats.cache_hits == 0 and len(cache) == 20
        again = lab.label(texts)
    assert again.labels.tolist() == result.labels.tolist()
    assert (again.stats.cache_hits, again.stats.requests) == (20, 0)
