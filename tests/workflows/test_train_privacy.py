"""The spec's privacy: section in training: each policy, and no raw value in what is kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import forgeline as fl
from forgeline.config import hash_key, load_settings
from forgeline.entities import RunStatus
from forgeline.errors import InvalidSpec, PersonalDataFound
from forgeline.serving.runtime import select_runtime
from forgeline.training.layout import CHECKS_PATH, EVALUATION_PATH, MODEL_PATH, REPORT_PATH
from forgeline.training.spec import load_spec
from forgeline.util.privacy import keyed_hash
from forgeline.workflows.train import train

N = 300


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 2))
    return pd.DataFrame({
        "a": x[:, 0], "b": x[:, 1],
        "email": [f"customer{i % 40}@mail-{i % 40 % 7}.com" for i in range(N)],
        "segment": rng.choice(["retail", "online", "partner"], N),
        "y": (x[:, 0] + 0.5 * rng.normal(size=N) > 0).astype(int)})


def _spec(tmp_path: Path, **privacy: object) -> Path:
    _frame().to_csv(tmp_path / "data.csv", index=False)
    body = {"name": "m", "data": {"path": "data.csv", "target": "y"},
            "tuning": {"trials": 1, "cv_folds": 2}, "models": ["logistic_regression"],
            "privacy": privacy}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(body))
    return tmp_path / "spec.yaml"


def _artifacts(client: fl.Client, run_id: str, tmp_path: Path) -> dict[str, str]:
    """Every text artifact of the run: path -> content."""
    root = client.download_artifacts(run_id, dst=tmp_path / "dl")
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*")
            if p.is_file() and p.suffix in (".json", ".md", ".html", ".txt")}


def _no_email(texts: dict[str, str]) -> None:
    emails = list(_frame()["email"])
    leaked = {path: e for path, text in texts.items() for e in emails if e in text}
    assert leaked == {}


def test_warn_keeps_the_column_but_no_raw_value_reaches_the_package_or_reports(
        tmp_path: Path) -> None:
    result = train(_spec(tmp_path))
    client = fl.Client()
    texts = _artifacts(client, result.run_id, tmp_path)
    assert {f"{MODEL_PATH}/privacy.json", f"{MODEL_PATH}/profile.json",
            f"{MODEL_PATH}/signature.json", REPORT_PATH, CHECKS_PATH} <= set(texts)
    _no_email(texts)
    checks = json.loads(texts[CHECKS_PATH])
    (finding,) = [f for f in checks["findings"] if f["check"] == "personal_data"]
    assert finding["severity"] == "warn" and finding["columns"] == ["email"]
    package = fl.load_model("m")
    assert package.privacy["columns"]["email"] == {
        "kind": "email", "feature": True, "handling": "kept as is",
        "prediction_log": "HMAC-SHA256"}
    assert package.profile["columns"]["email"]["personal"] is True
    assert package.profile["columns"]["email"]["categories"] == {}
    assert package.profile["columns"]["segment"]["categories"]  # others keep theirs
    card = texts[f"{MODEL_PATH}/card.md"]
    assert "## Personal and sensitive data" in card and "| email | email | yes |" in card


def test_fail_stops_the_run_naming_the_columns(tmp_path: Path) -> None:
    with pytest.raises(PersonalDataFound) as e:
        train(_spec(tmp_path, policy="fail"))
    assert e.value.message == ("Personal data in column(s) 'email' (email) and "
                               "privacy.policy is fail.")
    client = fl.Client()
    (run,) = client.search_runs("m")
    assert run.status is RunStatus.FAILED
    assert client.list_registered_models() == []


def test_drop_leaves_the_column_out_of_the_features(tmp_path: Path) -> None:
    train(_spec(tmp_path, policy="drop"))
    package = fl.load_model("m")
    assert "email" not in [c.name for c in package.signature.inputs]
    assert package.privacy["columns"]["email"]["handling"] == "not a feature (dropped)"
    assert package.privacy["columns"]["email"]["feature"] is False


def test_hash_trains_on_the_keyed_hash(tmp_path: Path) -> None:
    result = train(_spec(tmp_path, policy="hash", personal=["segment"]))
    client = fl.Client()
    _no_email(_artifacts(client, result.run_id, tmp_path))
    package = fl.load_model("m")
    assert package.privacy["columns"]["segment"]["kind"] == "declared"
    assert package.privacy["columns"]["email"]["handling"] == "HMAC-SHA256 before training"
    key_file = load_settings().home / "hash.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = hash_key(load_settings())
    model = package.model  # the fitted pipeline saw tokens, not addresses
    seen = {str(v) for step in _categories(model) for v in step}
    assert keyed_hash("retail", key) in seen and "retail" not in seen
    rows = _frame().drop(columns="y").head(20)
    assert package.hashed_inputs == ("email", "segment")
    assert package.prepare(rows)["segment"].tolist() == [keyed_hash(v, key)
                                                         for v in rows["segment"]]
    assert len(package.predict(rows)) == 20
    runtime = select_runtime(package)  # serving hashes raw request values the same way
    assert runtime.name == "native" and "hashes personal inputs" in runtime.detail
    served = runtime.predict(package.signature.validate(rows)).labels
    assert list(served) == list(package.predict(rows))


def _categories(model: object) -> list[list[object]]:
    """The categories any encoder of the pipeline learned."""
    found: list[list[object]] = []
    for value in vars(model).values():
        if (isinstance(value, list) and value
                and all(isinstance(v, np.ndarray) for v in value)):
            found += [list(v) for v in value]
    steps = getattr(model, "steps", None) or getattr(model, "transformers_", None) or []
    for step in steps:
        found += _categories(step[1])
    return found


def test_already_hashed_columns_need_the_hash_policy() -> None:
    with pytest.raises(InvalidSpec) as e:
        load_spec({"name": "m", "data": {"path": "d.csv", "target": "y"},
                   "privacy": {"hashed": ["email"]}})
    assert e.value.message == (
        "Invalid spec (dict): privacy: privacy.hashed (email) needs privacy.policy hash, "
        "not warn: the model must see its requests hashed the same way.")


REGIONS = ["Zorbland", "Quixmoor", "Vandreth"]  # declared personal, and sliced on
CARDS = [4111111111111111, 5500000000000004, 378282246310005, 6011111111111117,
         4012888888881881, 5105105105105100]


def _with_numbers(n: int, offset: int = 0) -> pd.DataFrame:
    """The frame plus a card number and a phone number stored as integers."""
    frame = _frame().head(n).copy()
    frame["email"] = [f"customer{(i + offset) % 40}@mail-{(i + offset) % 40 % 7}.com"
                      for i in range(n)]
    frame["card"] = [CARDS[(i + offset) % 6] for i in range(n)]
    frame["phone"] = [2025550100 + (i + offset) % 80 for i in range(n)]
    frame["region"] = [REGIONS[i % 3] for i in range(n)]
    return frame


def test_no_raw_personal_value_in_the_profile_signature_reports_card_or_monitoring(
        tmp_path: Path) -> None:
    """Policy warn on an email, a card number and a phone number (the last two numbers)
    and a declared personal column sliced on: the package's JSON, the training report and
    evaluation, the card, and the monitoring report (HTML and JSON) on raw production rows,
    some never seen in training, show none of their values."""
    from forgeline.monitoring import monitor
    from forgeline.reports import render_monitor_report

    spec = _spec(tmp_path, personal=["region"])
    train_rows = _with_numbers(N)
    train_rows.to_csv(tmp_path / "data.csv", index=False)
    result = train(spec, ["data.sensitive=[region]"])
    client = fl.Client()
    texts = _artifacts(client, result.run_id, tmp_path)
    package = fl.load_model("m")
    assert {n for n, c in package.privacy["columns"].items() if c["feature"]} == {
        "email", "card", "phone"}
    current = _with_numbers(200, offset=30)  # cards and phones beyond training
    current.loc[:9, "phone"] = 4155550123  # out of the training range
    monitored = monitor(package, current.drop(columns="y"))
    texts["monitor.json"] = json.dumps(monitored.to_dict(), default=str)
    texts["monitor.html"] = render_monitor_report(monitored, tmp_path / "m.html").read_text()
    raw = {str(v) for c in ("email", "card", "phone", "region")
           for v in pd.concat([train_rows[c], current[c]])}
    raw |= {f"{float(v):.6g}" for v in [*CARDS, 2025550100, 2025550179]}  # as a float shows
    leaked = {path: sorted(v for v in raw if v in text) for path, text in texts.items()}
    assert {p: v for p, v in leaked.items() if v} == {}
    assert set(monitored.skipped) >= {"email", "card", "phone"}
    assert "personal data: its values are not kept" in texts["monitor.html"]
    stats = package.profile["columns"]["phone"]
    assert stats["personal"] is True and "min" not in stats and "bins" not in stats
    assert {"a", "b"} <= set(monitored.features)  # the other columns are still compared
    key = hash_key(load_settings())
    sliced = json.loads(texts[EVALUATION_PATH])["slices"]["region"]
    assert {s["value"] for s in sliced} == {keyed_hash(r, key) for r in REGIONS}
