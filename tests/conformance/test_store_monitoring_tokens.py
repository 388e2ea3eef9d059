"""Monitoring history, team server tokens and registered model tags, against every backend.

Only through the Store interface: the HTTP backend runs this suite too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid

import pytest

from forgeline.entities import ApiToken, MonitoringRecord, Role
from forgeline.errors import AlreadyExists, InvalidInput, NotFound
from forgeline.store import Store, get_store


@pytest.fixture
def store(store_uri: str) -> Store:
    return get_store(store_uri)


def _record(model: str = "fraud", end: int | None = 2_000, created: int = 10_000,
            **changes: object) -> MonitoringRecord:
    record = MonitoringRecord(
        record_id=uuid.uuid4().hex, model=model, version="3",
        window_start=None if end is None else end - 1_000, window_end=end,
        creation_time=created, source="monitor", rows=500, dataset_drift=0.25,
        dataset_drifted=False)
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# -- monitoring history --------------------------------------------------------------------
def test_a_record_round_trips_every_field(store: Store) -> None:
    full = _record(
        version="7", window_start=1_000, window_end=61_000, creation_time=62_000, source="serve",
        rows=12_345, dataset_drift=0.5, dataset_drifted=True, prediction_drift=0.125,
        features={"amount": 0.31, "country": 0.02, "hour of day": 0.0},
        drifted=("amount", "merchant/category"),
        quality={"missing_share": 0.01, "out_of_range_share": 0.0, "unseen_share": 0.5},
        metrics={"roc_auc": 0.91, "log_loss": 0.3}, estimated={"accuracy": 0.875},
        alerts=("drift: amount", "quality"), clock="event time: ts",
        report="/reports/fraud/monitor.html")
    bare = _record(model="churn", version=None, window_start=None, window_end=None,
                   prediction_drift=None, report=None)
    store.record_monitoring(full)
    store.record_monitoring(bare)
    assert store.get_monitoring_history("fraud") == [full]
    assert store.get_monitoring_history("churn") == [bare]
    got = store.get_monitoring_history("fraud")[0]
    assert isinstance(got.drifted, tuple) and isinstance(got.alerts, tuple)
    assert isinstance(got.rows, int) and got.dataset_drifted is True


def test_history_is_oldest_first_by_window_end_else_creation_time(store: Store) -> None:
    late = _record(end=5_000, created=1)
    early = _record(end=1_000, created=9_999)
    unwindowed = _record(end=None, created=3_000)  # placed by when it was recorded
    other_model = _record(model="churn", end=2_000)
    for record in (late, other_model, unwindowed, early):
        store.record_monitoring(record)
    assert store.get_monitoring_history("fraud") == [early, unwindowed, late]
    assert store.get_monitoring_history("churn") == [other_model]


def test_since_and_until_are_inclusive_bounds(store: Store) -> None:
    records = [_record(end=end) for end in (1_000, 2_000, 3_000, 4_000)]
    for record in records:
        store.record_monitoring(record)
    assert store.get_monitoring_history("fraud", since=2_000) == records[1:]
    assert store.get_monitoring_history("fraud", until=3_000) == records[:3]
    assert store.get_monitoring_history("fraud", since=2_000, until=3_000) == records[1:3]
    assert store.get_monitoring_history("fraud", since=4_001) == []


def test_limit_keeps_the_newest(store: Store) -> None:
    records = [_record(end=end) for end in (3_000, 1_000, 4_000, 2_000)]
    for record in records:
        store.record_monitoring(record)
    newest = sorted(records, key=lambda r: r.window_end or 0)[-2:]
    assert store.get_monitoring_history("fraud", limit=2) == newest
    assert store.get_monitoring_history("fraud", until=3_000, limit=1) == [records[0]]
    with pytest.raises(InvalidInput, match="Invalid limit 0 for the monitoring history"):
        store.get_monitoring_history("fraud", limit=0)


def test_recording_the_same_record_id_again_is_a_no_op(store: Store) -> None:
    record = _record()
    store.record_monitoring(record)
    store.record_monitoring(record)
    store.record_monitoring(dataclasses.replace(record, rows=1))  # a retry stores it once
    assert store.get_monitoring_history("fraud") == [record]


def test_an_unknown_model_has_no_history(store: Store) -> None:
    assert store.get_monitoring_history("never-monitored") == []


@pytest.mark.parametrize(("changes", "problem"), [
    ({"record_id": "not-hex"}, "record_id must be 32 lowercase hex characters"),
    ({"model": ""}, "model must be a non-empty name"),
    ({"source": ""}, "source must be 'monitor' or 'serve'"),
    ({"rows": -1}, "rows must be a count"),
    ({"window_start": 5_000, "window_end": 1_000}, "window_start is after window_end"),
    ({"features": {"amount": "high"}}, "features must map names to numbers"),
    ({"alerts": "drift"}, "alerts must be a list of names"),
    ({"dataset_drift": None}, "dataset_drift must be a number"),
    ({"window_end": "yesterday"}, "window_end must be epoch milliseconds"),
])
def test_a_malformed_record_is_refused_and_nothing_is_stored(
        store: Store, changes: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidInput, match=f"Malformed monitoring record .*: {problem}"):
        store.record_monitoring(_record(**changes))
    assert store.get_monitoring_history("fraud") == []


# -- tokens ----------------------------------------------------------------------------------
def test_tokens_are_found_by_the_sha256_of_their_secret(store: Store) -> None:
    ci = store.create_token("ci", Role.WRITER, _sha("s3cret-ci"))
    assert isinstance(ci, ApiToken) and ci.name == "ci" and ci.role is Role.WRITER
    assert ci.creation_time > 0
    admin = store.create_token("alice@risk", Role.ADMIN, _sha("s3cret-alice"))
    assert store.find_token(_sha("s3cret-ci")) == ci
    assert store.find_token(_sha("s3cret-alice")) == admin
    assert store.find_token(_sha("wrong")) is None
    assert store.list_tokens() == [admin, ci]  # by name


def test_a_role_given_as_text_is_kept_as_a_role(store: Store) -> None:
    token = store.create_token("reader", "reader", _sha("r"))  # type: ignore[arg-type]
    assert token.role is Role.READER
    assert store.find_token(_sha("r")) == token


def test_token_names_and_secrets_are_unique(store: Store) -> None:
    first = store.create_token("ci", Role.WRITER, _sha("one"))
    with pytest.raises(AlreadyExists, match="Token 'ci' already exists"):
        store.create_token("ci", Role.ADMIN, _sha("two"))
    with pytest.raises(AlreadyExists, match="Another token already has this secret"):
        store.create_token("ci-2", Role.ADMIN, _sha("one"))
    assert store.list_tokens() == [first]


def test_bad_tokens_are_refused(store: Store) -> None:
    with pytest.raises(InvalidInput, match="Invalid role 'owner': use one of reader, writer, "
                                           "admin"):
        store.create_token("ci", "owner", _sha("x"))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="Invalid token name ''"):
        store.create_token("", Role.READER, _sha("x"))
    with pytest.raises(InvalidInput, match="Invalid token secret digest"):
        store.create_token("ci", Role.READER, "plain-secret")
    assert store.list_tokens() == []


def test_deleting_a_token_revokes_it(store: Store) -> None:
    store.create_token("ci", Role.WRITER, _sha("one"))
    kept = store.create_token("ops", Role.ADMIN, _sha("two"))
    store.delete_token("ci")
    assert store.find_token(_sha("one")) is None
    assert store.list_tokens() == [kept]
    with pytest.raises(NotFound, match="Token 'ci' not found"):
        store.delete_token("ci")
    store.create_token("ci", Role.READER, _sha("three"))  # the name is free again


# -- registered model tags -----------------------------------------------------------------
def test_registered_model_tags_are_set_and_overwritten(store: Store) -> None:
    store.create_registered_model("fraud")
    store.set_registered_model_tag("fraud", "forgeline.protected", "true")
    store.set_registered_model_tag("fraud", "team", "risk")
    store.set_registered_model_tag("fraud", "team", "fraud-ops")
    assert store.get_registered_model("fraud").tags == {"forgeline.protected": "true",
                                                        "team": "fraud-ops"}
    assert {m.name: m.tags for m in store.list_registered_models()} == {
        "fraud": {"forgeline.protected": "true", "team": "fraud-ops"}}


def test_registered_model_tag_errors(store: Store) -> None:
    with pytest.raises(NotFound, match="Model 'nope' is not registered"):
        store.set_registered_model_tag("nope", "team", "risk")
    store.create_registered_model("fraud")
    with pytest.raises(InvalidInput, match="Invalid tag key 'bad\\|key'"):
        store.set_registered_model_tag("fraud", "bad|key", "x")
    assert store.get_registered_model("fraud").tags == {}
