"""The champion/challenger gate end to end: real training, a real prediction log, labels."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import forgeline as fl
from forgeline.errors import InvalidInput
from forgeline.registry.client import local_user
from forgeline.serving.predlog import PredictionLog
from forgeline.serving.runtime import NativeRuntime, Prediction
from forgeline.store import close_stores
from forgeline.store.predictions import prediction_log_root, record_feedback
from forgeline.workflows.retrain import retrain
from forgeline.workflows.train import train
from tests.isolation import working_folder

sys.path.insert(0, str(Path(__file__).parents[2] / "examples" / "fraud"))
from generate import generate

# The traffic is timestamped in 2025: take every labelled row, not just the last 30 days.
OVERRIDES = ["retrain.include_original=false", "retrain.window_days=null"]


def _serve_and_log(folder: Path) -> pd.DataFrame:
    """In ``folder`` (the working folder): a champion trained on the first period; the
    later, drifted period served and logged. Returns the served period."""
    frame = generate(9000, customers=900, merchants=120, days=90, drift=1.0,
                     fraud_rate=0.06, seed=5)
    early, late = frame.iloc[:4000], frame.iloc[4000:].reset_index(drop=True)
    early.to_parquet(folder / "early.parquet", index=False)
    spec = {"name": "fraud", "data": {"path": "early.parquet", "target": "is_fraud",
                                      "time_column": "ts", "drop": ["txn_id", "customer_id"],
                                      "sensitive": ["age_band"]},
            "models": ["logistic_regression"], "tuning": {"trials": 2, "cv_folds": 3},
            "register": {"alias": "champion"},
            "retrain": {"gate": {"recent_rows": 1500, "min_labelled": 200}}}
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    train(folder / "spec.yaml")
    client = fl.Client()
    predictor = fl.load_model("fraud@champion")
    log = PredictionLog(prediction_log_root(client.settings), "fraud",
                        classes=predictor.signature.classes)
    late = late.assign(request_id=[f"r{i}" for i in range(len(late))])
    inputs = predictor.signature.validate(late[predictor.signature.names])
    scored = NativeRuntime(predictor).predict(inputs)
    # the server logs the request fields the model does not take (age_band) beside its inputs
    logged = inputs.assign(age_band=late["age_band"].to_numpy())
    for i in range(len(late)):  # one request per transaction, as the server logs them
        log.append(late["request_id"].iat[i], logged.iloc[i:i + 1],
                   Prediction(scored.labels[i:i + 1], scored.proba[i:i + 1]), version=1,
                   runtime="native", ts=late["ts"].iat[i].timestamp())
    assert log.close(timeout_s=180)
    return late


@pytest.fixture(scope="module")
def served_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """Trained and logged once for the module (training is the slow part), in a folder of
    its own with no FORGELINE_* setting, as tests/conftest.py isolates a test."""
    folder = tmp_path_factory.mktemp("served")
    with working_folder(folder):
        late = _serve_and_log(folder)
        close_stores()  # no open connection while tests copy the files
    return folder, late


@pytest.fixture
def served(served_template: tuple[Path, pd.DataFrame],
           tmp_path: Path) -> tuple[fl.Client, pd.DataFrame]:
    """A private copy of the template's working folder (store, artifacts, prediction log)
    as this test's working folder: the champion, and the served period."""
    folder, late = served_template
    shutil.copytree(folder, tmp_path, dirs_exist_ok=True)
    return fl.Client(), late.copy()


def test_no_labels_no_decision(served: tuple[fl.Client, pd.DataFrame]) -> None:
    decision = retrain("fraud", force=True)
    assert decision.action == "kept" and "0 labelled production rows" in decision.reason
    assert fl.Client().get_model_version("fraud@champion").version == 1


def test_labels_that_match_nothing(served: tuple[fl.Client, pd.DataFrame]) -> None:
    client, _ = served
    with pytest.raises(InvalidInput, match="match"):
        record_feedback(client.settings, "fraud",
                        pd.DataFrame({"request_id": ["nope"], "is_fraud": [1]}),
                        label_column="is_fraud")


def test_a_challenger_trained_on_corrupted_labels_is_not_promoted(
        served: tuple[fl.Client, pd.DataFrame]) -> None:
    client, late = served
    labels = late[["request_id", "is_fraud"]].copy()
    older = labels.index < len(labels) - 1500  # what the challenger trains on
    labels.loc[older, "is_fraud"] = np.random.default_rng(0).integers(0, 2, older.sum())
    stats = record_feedback(client.settings, "fraud", labels, label_column="is_fraud")
    assert stats.matched == len(labels)
    decision = retrain("fraud", OVERRIDES, force=True)
    assert decision.action == "kept", decision.reason
    assert decision.challenger == 2 and decision.challenger_score < decision.champion_score
    assert client.get_model_version("fraud@champion").version == 1
    assert client.get_model_version("fraud@challenger").version == 2
    run = client.get_run(decision.run_id)
    assert run.tags["forgeline.retrain.action"] == "kept"
    children = client.search_runs("fraud", f"attributes.parent_run_id = '{run.run_id}'")
    assert [c.name for c in children] == ["train"]


def test_a_better_challenger_is_promoted(served: tuple[fl.Client, pd.DataFrame]) -> None:
    client, late = served
    record_feedback(client.settings, "fraud", late[["request_id", "is_fraud"]],
                    label_column="is_fraud")
    decision = retrain("fraud", OVERRIDES, force=True)
    assert decision.challenger == 2
    if decision.challenger_score > decision.champion_score:
        assert decision.action == "promoted"
        assert client.get_model_version("fraud@champion").version == 2
        moved = client.get_alias_history("fraud", "champion", max_results=1)[0]
        assert (moved.version, moved.previous_version, moved.actor) == (2, 1, local_user())
    else:  # the drifted period did not help this time: the gate must then keep it
        assert decision.action == "kept"
    # training set the champion, retraining the challenger, both as this OS user
    moves = [(e.alias, e.version, e.previous_version, e.actor)
             for e in client.get_alias_history("fraud")]
    assert moves[-2:] == [("challenger", 2, None, local_user()),
                          ("champion", 1, None, local_user())]


def test_a_challenger_that_breaks_a_fairness_limit_the_champion_meets_is_not_promoted(
        served: tuple[fl.Client, pd.DataFrame]) -> None:
    """Production labels that follow the age band (every 18-25 transaction 'fraud') teach
    a flexible challenger to flag the young: the limit on the gap in flagged shares
    between age bands, which the champion meets, keeps it out."""
    from fairlearn.metrics import demographic_parity_difference

    client, late = served
    labels = late[["request_id", "is_fraud"]].copy()
    older = labels.index < len(labels) - 1500
    labels.loc[older, "is_fraud"] = (late.loc[older, "age_band"] == "18-25").astype(int)
    record_feedback(client.settings, "fraud", labels, label_column="is_fraud")
    gate = late.iloc[-1500:]
    predictor = fl.load_model("fraud@champion")
    flagged = predictor.predict(gate[predictor.signature.names])
    dpd = demographic_parity_difference(gate["is_fraud"], flagged,
                                        sensitive_features=gate["age_band"])
    limit = f"demographic_parity_difference <= {dpd + 0.05:.4f}"
    decision = retrain("fraud", [*OVERRIDES, f"fairness.limits=['{limit}']",
                                 "fairness.resamples=20", "models=[lightgbm]",
                                 "leakage.target_leak=warn"], force=True)
    assert decision.challenger == 2 and decision.action == "kept", decision.reason
    assert "breaks fairness limit(s) the champion meets" in decision.reason
    champ, chall = decision.fairness["champion"][0], decision.fairness["challenger"][0]
    assert champ["column"] == "age_band" and champ["value"] == pytest.approx(dpd)
    assert champ["passed"] and not chall["passed"]
    assert client.get_model_version("fraud@champion").version == 1
