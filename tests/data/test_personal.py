"""Detection of personal columns: each kind found, ordinary columns left alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeline.data.findings import Severity
from forgeline.data.personal import (
    PersonalKind,
    detect_personal,
    mask,
    personal_columns,
    personal_findings,
)

N = 200


def _personal() -> pd.DataFrame:
    return pd.DataFrame({
        "contact": [f"person{i}@example.org" for i in range(N)],
        "mobile": [f"+44 20 7946 {i % 1000:04d}" for i in range(N)],
        "cc": ["4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005",
               "6011111111111117"] * (N // 4),
        "account": ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432",
                    "FR1420041010050500013M02606", "NL91ABNA0417164300"] * (N // 4),
        "client": [f"10.{i % 256}.{i % 7}.{i % 200}" if i % 2 else f"2001:db8::{i:x}"
                   for i in range(N)],
        "notes": [f"Spoke to {['Emma', 'Liam', 'Sofia', 'Hans'][i % 4]} Becker about it"
                  if i % 2 else "left a voicemail" for i in range(N)],
    })


def _ordinary(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customer_id": rng.integers(10**9, 10**10, N),  # integer ids
        "account_id": [str(v) for v in rng.integers(10**9, 10**10, N)],  # ids as text
        "long_id": rng.integers(10**15, 10**16, N),  # 16 digits, like a card
        "amount": rng.normal(100, 25, N).round(2),
        "phone_calls": rng.integers(0, 40, N),  # a hinted name on plain counts
        "day": pd.date_range("2024-01-01", periods=N).astype(str),
        "ts": pd.date_range("2024-01-01", periods=N, freq="h"),
        "code": rng.choice(["A12", "B7", "C-3", "DX"], N),
        "city": rng.choice(["New York", "San Francisco", "Los Angeles", "Austin"], N),
        "zip": [f"{v:05d}" for v in rng.integers(0, 99999, N)],
        "sku": [f"SKU-{i:06d}" for i in range(N)],
        "version": rng.choice(["1.2.3", "2.0.1", "10.4"], N),
        "flag": rng.random(N) > 0.5,
        "ratio": [f"{v:.3f}" for v in rng.random(N)],
    })


def test_each_kind_of_personal_data_is_found() -> None:
    found = detect_personal(_personal())
    assert {n: c.kind for n, c in found.items()} == {
        "contact": PersonalKind.EMAIL, "mobile": PersonalKind.PHONE, "cc": PersonalKind.CARD,
        "account": PersonalKind.IBAN, "client": PersonalKind.IP,
        "notes": PersonalKind.NAME}
    assert found["contact"].share == 1.0 and found["notes"].share == pytest.approx(0.5)


def test_ids_amounts_dates_codes_and_places_are_not_personal() -> None:
    assert detect_personal(_ordinary()) == {}


def test_a_card_number_fails_without_its_luhn_check_digit() -> None:
    frame = pd.DataFrame({"cc": ["4111 1111 1111 1112", "5500-0000-0000-0005"] * 50})
    assert detect_personal(frame) == {}


def test_bare_digits_are_a_phone_number_only_where_the_name_says_so() -> None:
    digits = [f"202555{i:04d}" for i in range(100)]
    assert detect_personal(pd.DataFrame({"ref": digits})) == {}
    assert detect_personal(pd.DataFrame({"phone": digits}))["phone"].kind is PersonalKind.PHONE


def test_a_hinted_name_lowers_the_share_needed_but_never_flags_alone() -> None:
    emails = [f"u{i}@example.com" if i % 10 < 4 else "unknown" for i in range(100)]
    assert detect_personal(pd.DataFrame({"contact": emails})) == {}  # 40% < 50%
    assert detect_personal(pd.DataFrame({"email": emails}))["email"].share == 0.4
    assert detect_personal(pd.DataFrame({"email": ["n/a", "none"] * 50})) == {}


def test_declared_and_excluded_columns() -> None:
    frame = pd.concat([_personal(), _ordinary()], axis=1)
    found = personal_columns(frame, declared=["customer_id", "not_in_data"],
                             exclude=["client"], skip=["notes"])
    assert set(found) == {"contact", "mobile", "cc", "account", "customer_id", "not_in_data"}
    assert found["customer_id"].kind is PersonalKind.DECLARED


def test_the_finding_names_columns_and_kinds_but_no_raw_value() -> None:
    frame = _personal()
    found = detect_personal(frame)
    (warn,) = personal_findings(found, "warn")
    (fail,) = personal_findings(found, "fail")
    assert warn.check == "personal_data" and warn.severity is Severity.WARN
    assert fail.severity is Severity.FAIL
    assert set(warn.columns) == set(found)
    assert "'contact' (email, 100% of sampled values)" in warn.message
    text = warn.message + repr(warn.details)
    raw = {str(v) for column in frame for v in frame[column]}
    raw |= {w for v in frame["notes"] for w in v.split() if w[0].isupper()}
    assert not [v for v in raw if v in text and len(v) > 3]
    assert warn.details["columns"]["contact"]["example"] == "p***@e***.org"
    assert personal_findings({}, "fail") == []


@pytest.mark.parametrize(("value", "kind", "masked"), [
    ("jane.doe@example.com", PersonalKind.EMAIL, "j***@e***.com"),
    ("+1 202-555-0143", PersonalKind.PHONE, "*********43"),
    ("4111 1111 1111 1111", PersonalKind.CARD, "************1111"),
    ("DE89 3704 0044 0532 0130 00", PersonalKind.IBAN, "DE******************00"),
    ("192.168.1.20", PersonalKind.IP, "192.*.*.*"),
    ("Met Maria Lopez today", PersonalKind.NAME, "M*** L***"),
    ("anything", PersonalKind.DECLARED, "***"),
])
def test_mask(value: str, kind: PersonalKind, masked: str) -> None:
    assert mask(value, kind) == masked


def test_card_and_phone_numbers_stored_as_numbers_are_found() -> None:
    cards = [4111111111111111, 5500000000000004, 378282246310005, 6011111111111117] * 25
    phones = [2025550100 + i for i in range(100)]
    frame = pd.DataFrame({"cc": cards, "cc_float": [float(c) for c in cards[:-1]] + [np.nan],
                          "phone": phones, "ref": phones,
                          "cc_nullable": pd.array(cards, dtype="Int64")})
    found = detect_personal(frame)
    assert {n: c.kind for n, c in found.items()} == {
        "cc": PersonalKind.CARD, "cc_float": PersonalKind.CARD, "phone": PersonalKind.PHONE,
        "cc_nullable": PersonalKind.CARD}  # bare integers: a phone only by its name
    assert found["cc"].example == "************1111"
    assert found["phone"].example == "********00"
