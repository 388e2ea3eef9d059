"""Retraining on logged rows of a personal feature: the same keyed hash everywhere (policy
hash), or no cycle at all where the model takes the raw value (policy warn)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

import forgeline as fl
from forgeline.config import hash_key
from forgeline.serving.predlog import PredictionLog
from forgeline.serving.runtime import NativeRuntime
from forgeline.store.predictions import prediction_log_root, record_feedback
from forgeline.util.privacy import keyed_hash
from forgeline.workflows.retrain import retrain
from forgeline.workflows.train import train
from tests.workflows.test_train_privacy import _categories

TRAIN, SERVED = 400, 240


def _frame() -> pd.DataFrame:
    """Customers 0-59 in the original data, 60-79 only in production; a customer's
    email says a lot about the label."""
    rng = np.random.default_rng(1)
    n = TRAIN + SERVED
    customer = np.concatenate([rng.integers(0, 60, TRAIN), rng.integers(40, 80, SERVED)])
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "email": [f"client{c}@shop-{c % 5}.com" for c in customer],
                         "y": ((customer % 3 == 0) ^ (x + 0.3 * rng.normal(size=n) > 1.2))
                         .astype(int)})


def _served(tmp_path: Path, policy: str) -> tuple[fl.Client, pd.DataFrame]:
    """A champion trained on the original rows; the later rows served, logged, labelled."""
    frame = _frame()
    frame.iloc[:TRAIN].to_csv(tmp_path / "data.csv", index=False)
    spec = {"name": "m", "data": {"path": str(tmp_path / "data.csv"), "target": "y"},
            "models": ["logistic_regression"], "tuning": {"trials": 1, "cv_folds": 2},
            "register": {"alias": "champion"}, "privacy": {"policy": policy},
            "retrain": {"window_days": None, "gate": {"recent_rows": 60,
                                                      "min_labelled": 20}}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    train(tmp_path / "spec.yaml")
    client = fl.Client()
    predictor = fl.load_model("m@champion")
    log = PredictionLog(prediction_log_root(client.settings), "m",  # as the server opens it
                        classes=predictor.signature.classes,
                        personal=set(predictor.privacy["columns"]),
                        hash_key=hash_key(client.settings))
    late = frame.iloc[TRAIN:].reset_index(drop=True)
    late = late.assign(request_id=[f"r{i}" for i in range(len(late))])
    inputs = predictor.signature.validate(late[predictor.signature.names])
    scored = NativeRuntime(predictor).predict(inputs)  # hashes the email itself
    assert log.append(list(late["request_id"]), inputs, scored, version=1, runtime="native",
                      rows=[1] * len(late))
    assert log.close()
    record_feedback(client.settings, "m", late[["request_id", "y"]], label_column="y")
    return client, late


def test_hash_policy_retrains_on_the_tokens_the_log_holds(tmp_path: Path) -> None:
    client, late = _served(tmp_path, "hash")
    decision = retrain("m", force=True)
    assert decision.challenger == 2, decision.reason
    key = hash_key(client.settings)
    data = pd.read_parquet(client.settings.home / "retrain" / "m" / decision.run_id
                           / "training.parquet")
    assert len(data) == TRAIN + SERVED - 60  # original rows + logged rows but the gate's
    emails = set(_frame()["email"])
    assert set(data["email"]) <= {keyed_hash(e, key) for e in emails}  # each hashed once
    challenger = fl.load_model("m/2")
    assert challenger.privacy["columns"]["email"]["handling"] == "HMAC-SHA256 before training"
    assert challenger.hashed_inputs == ("email",)  # requests hashed like the log's values
    seen = {str(v) for step in _categories(challenger.model) for v in step}
    only_served = "client79@shop-4.com"  # a customer who came after the champion
    assert only_served in set(late["email"]) - set(_frame()["email"][:TRAIN])
    assert keyed_hash(only_served, key) in seen and not seen & emails
    rows = late.iloc[:20][["x", "email"]]
    assert len(challenger.predict(rows)) == 20


def test_warn_policy_skips_the_cycle_and_says_why(tmp_path: Path) -> None:
    client, _ = _served(tmp_path, "warn")
    decision = retrain("m", force=True)
    assert decision.action == "skipped" and decision.challenger is None
    assert decision.reason.startswith(
        "the champion takes personal column(s) 'email' as raw values (privacy.policy: warn) "
        "but the prediction log holds only their keyed hashes")
    assert "set privacy.policy: hash" in decision.reason
    assert [v.version for v in client.search_model_versions("m")] == [1]


def test_what_logged_tokens_allow_under_each_policy() -> None:
    from forgeline.training.spec import PrivacySpec
    from forgeline.workflows.privacy import LoggedPrivacy, logged_privacy

    logged = pd.DataFrame({"x": [1.0, 2.0], "email": [keyed_hash("a@b.com", b"k" * 16), None],
                           "note": [keyed_hash("Call Anna Smith", b"k" * 16)] * 2,
                           "code": ["A1", "B2"]})
    hashed = {"policy": "hash", "columns": {"email": {
        "feature": True, "handling": "HMAC-SHA256 before training"}}}
    inputs = ["x", "email", "code"]
    assert logged_privacy(hashed, PrivacySpec(policy="hash"), logged, inputs) == LoggedPrivacy(
        ("email",), ("privacy.hashed=['email']",), None)
    dropped = logged_privacy(hashed, PrivacySpec(policy="drop", personal=("ssn",)), logged,
                             inputs)
    assert dropped.overrides == ("privacy.personal=['ssn', 'email']",) and not dropped.blocked
    assert "challenger's privacy.policy warn would train on the keyed hashes of 'email'" in (
        logged_privacy(hashed, PrivacySpec(), logged, inputs).blocked or "")
    # a field the log hashed on detection, which the model takes raw
    found = logged_privacy({"policy": "warn", "columns": {}}, PrivacySpec(), logged,
                           ["x", "note", "code"])
    assert found.tokens == ("note",)
    assert (found.blocked or "").startswith("the champion takes personal column(s) 'note'")
    assert logged_privacy({}, PrivacySpec(), logged, ["x", "code"]) == LoggedPrivacy(
        (), (), None)
