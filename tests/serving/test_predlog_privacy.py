"""Personal data in the prediction log: stored as a keyed hash, never in clear."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from forgeline.config import hash_key, load_settings
from forgeline.errors import InvalidInput
from forgeline.serving.predlog import PredictionLog
from forgeline.serving.runtime import Prediction
from forgeline.store.predictions import read_predictions
from forgeline.util.privacy import keyed_hash

EMAILS = [f"alice.{i}@example.com" for i in range(40)]


def _request(i: int) -> tuple[pd.DataFrame, Prediction]:
    frame = pd.DataFrame({"amount": [10.0 * i, 3.5], "email": [EMAILS[i], EMAILS[-1 - i]],
                          "contact": [f"bob{i}@test.org", f"carol{i}@test.org"],
                          "country": ["FR", "DE"]})
    proba = np.array([[0.2, 0.8], [0.9, 0.1]])
    return frame, Prediction(np.array(["fraud", "ok"]), proba)


def _parquet_files(root: Path) -> list[Path]:
    files = sorted(root.rglob("*.parquet"))
    assert files
    return files


def test_an_email_column_never_reaches_the_log_in_clear(tmp_path: Path) -> None:
    key = hash_key(load_settings())
    log = PredictionLog(tmp_path, "fraud", flush_rows=10, flush_interval_s=0.05,
                        classes=["ok", "fraud"], personal=["email"], hash_key=key)
    for i in range(20):
        frame, prediction = _request(i)
        assert log.append(f"r{i}", frame, prediction, version=1, runtime="native")
    assert log.close() and log.written == 40
    clear = [*EMAILS, *(f"{p}{i}@test.org" for p in ("bob", "carol") for i in range(20))]
    for path in _parquet_files(tmp_path):
        raw = path.read_bytes()  # the file as stored
        assert not [e for e in clear if e.encode() in raw], path
        table = pq.read_table(path).to_pandas()  # and decoded, page compression undone
        cells = {str(v) for column in table.columns for v in table[column]}
        assert not [e for e in clear if e in cells], path
        assert not [c for c in cells if "@" in c]
    logged = read_predictions(tmp_path, "fraud").set_index(["request_id", "row"])
    assert logged.loc[("r3", 0), "email"] == keyed_hash(EMAILS[3], key)
    assert logged.loc[("r3", 1), "email"] == keyed_hash(EMAILS[-4], key)
    # a field nobody declared, found personal by its values: hashed the same way
    assert logged.loc[("r3", 0), "contact"] == keyed_hash("bob3@test.org", key)
    assert logged.loc[("r3", 0), "country"] == "FR"  # ordinary values stay as they are
    assert logged.loc[("r3", 0), "amount"] == 30.0
    assert log.personal == {"email", "contact"}


def test_the_key_is_kept_in_the_home_with_owner_only_permissions(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    first = hash_key(settings)
    assert len(first) == 32 and hash_key(settings) == first  # stable across restarts
    path = tmp_path / "home" / "hash.key"
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_environment_key_wins(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FORGELINE_HASH_KEY", "s3cret")
    assert hash_key(load_settings(home=tmp_path)) == b"s3cret"
    assert not (tmp_path / "hash.key").exists()


def test_without_a_key_personal_columns_are_left_out(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "fraud", flush_interval_s=0.05, personal=["email"])
    frame, prediction = _request(1)
    assert log.append("r1", frame, prediction, version=1, runtime="native")
    assert log.close()
    logged = read_predictions(tmp_path, "fraud")
    assert "email" not in logged.columns and "contact" not in logged.columns
    assert logged["country"].tolist() == ["FR", "DE"]


def test_a_column_cleared_on_a_full_sample_is_not_examined_again(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "fraud", flush_interval_s=0.05, hash_key=b"k")
    small = pd.DataFrame({"country": ["FR", "DE"] * 5, "note": ["ok"] * 10})
    big = pd.DataFrame({"country": ["FR", "DE"] * 300, "note": ["ok"] * 600})
    cleared = []
    for i, frame in enumerate((small, big)):
        labels = np.array(["ok"] * len(frame))
        assert log.append(f"r{i}", frame, Prediction(labels, None), version=1,
                          runtime="native")
        assert log.flush()
        cleared.append(set(log._cleared))
    assert log.close() and log.personal == set()
    assert cleared == [set(), {"country", "note"}]  # 10 values are not a full sample


def test_an_empty_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "hash.key").write_text("")
    with pytest.raises(InvalidInput, match=r"hash key .*hash.key holds 0 bytes, fewer than 16"):
        hash_key(load_settings(home=tmp_path))


CARDS = [4111111111111111, 5500000000000004, 378282246310005, 6011111111111117,
         4012888888881881, 5105105105105100, 4222222222222, 3530111333300000]


def test_card_and_phone_numbers_stored_as_numbers_never_reach_the_log_in_clear(
        tmp_path: Path) -> None:
    import struct

    key = hash_key(load_settings())
    log = PredictionLog(tmp_path, "fraud", flush_interval_s=0.05, hash_key=key)
    phones = [2025550100 + i for i in range(8)]
    frame = pd.DataFrame({"card": CARDS, "phone": phones, "amount": np.arange(8.0),
                          "card_float": [float(c) for c in CARDS[:7]] + [np.nan],
                          "store_id": [1000000 + 7 * i for i in range(8)]})
    assert log.append("r1", frame, Prediction(np.array(["ok"] * 8), None), version=1,
                      runtime="native")
    assert log.close() and log.written == 8
    assert log.personal == {"card", "phone", "card_float"}
    clear = [*CARDS, *phones]
    (path,) = _parquet_files(tmp_path)
    raw = path.read_bytes()  # as text, as 64-bit integers or as floats (the statistics)
    packed = [form for v in clear for form in (str(v).encode(), struct.pack("<q", v),
                                               struct.pack("<d", float(v)))]
    assert [p for p in packed if p in raw] == []
    table = pq.read_table(path).to_pandas()
    cells = {str(v) for column in table.columns for v in table[column]}
    assert not [v for v in clear if str(v) in cells or f"{float(v)}" in cells]
    logged = read_predictions(tmp_path, "fraud")
    assert logged["card"].tolist() == [keyed_hash(c, key) for c in CARDS]
    # the same token however the number arrived, so labels and audits join on it
    assert logged["card_float"].tolist()[:7] == logged["card"].tolist()[:7]
    assert logged["phone"][0] == keyed_hash(2025550100, key)
    assert logged["store_id"].tolist() == [1000000.0 + 7 * i for i in range(8)]
