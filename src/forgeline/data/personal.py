"""Columns that look like personal data: detection, masking and the ``personal_data`` finding.

Each column is judged on a sample of its non-missing values (``SAMPLE`` at most): the
share of them that is an email address, a phone number (validated by ``phonenumbers``,
Google's libphonenumber), a payment card number (13-19 digits passing the Luhn check,
``stdnum.luhn``), an IBAN (``stdnum.iban``: country format and check digits), an IP
address (``ipaddress``, v4 or v6), or text holding a person's name ("Firstname Surname",
the first name from Faker's first-name lists of several locales -- no NER model can be
downloaded here, and a list of real first names next to a capitalised word is a precise,
cheap signal). A column is flagged when that share reaches ``MATCH_SHARE`` (names:
``NAME_SHARE`` of the rows), or a lower ``HINTED_SHARE`` when its name says what it holds
(``email``, ``phone``, ``iban``...): the name raises confidence, never flags on its own.

Numbers are judged too, since a card or phone number is often stored as one: integers
(and floats that all hold whole numbers, as an integer column with a missing value
arrives) are tried as card numbers, and as phone numbers where the column's name says
``phone``. False positives avoided on purpose: floats with fractions and dates are never
personal; numeric ids rarely pass Luhn for half their values; a string of bare digits or
an integer is not taken as a phone number (ids, codes), only one written as a phone number
is (``+``, separators, or the column's name says ``phone``).

Findings never carry raw values: at most a masked example (``j***@e***.com``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import pandas as pd

from forgeline.data.findings import Finding, Severity

__all__ = ["HINTED_SHARE", "MATCH_SHARE", "NAME_SHARE", "SAMPLE", "PersonalColumn", "PersonalKind",
           "detect_personal", "mask", "personal_columns", "personal_findings"]

SAMPLE = 500
MATCH_SHARE = 0.5
HINTED_SHARE = 0.3
NAME_SHARE = 0.3
NAME_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR")
PHONE_REGION = "US"  # numbers written without a country code are read as this region's


class PersonalKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    CARD = "card"
    IBAN = "iban"
    IP = "ip"
    NAME = "name"
    DECLARED = "declared"  # listed in privacy.personal, whatever it holds


@dataclass(frozen=True, slots=True)
class PersonalColumn:
    """A column holding personal data: what kind, the share of sampled values that matched,
    and one masked example (never a raw value)."""

    name: str
    kind: PersonalKind
    share: float
    example: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind.value, "share": round(self.share, 4),
                "example": self.example}


_HINTS = {PersonalKind.EMAIL: ("email", "e_mail", "mail"),
          PersonalKind.PHONE: ("phone", "mobile", "tel", "msisdn"),
          PersonalKind.CARD: ("card", "pan", "ccnum", "credit"),
          PersonalKind.IBAN: ("iban", "account"),
          PersonalKind.IP: ("ip", "ip_address", "ipaddr", "client_ip"),
          PersonalKind.NAME: ("name", "customer", "note", "comment", "text")}

_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
                    r"\.[A-Za-z]{2,}")
_PHONE_CHARS = re.compile(r"\+?[\d\s().-]{7,24}")
_CARD_CHARS = re.compile(r"\d[\d -]{11,22}\d")
_IBAN_CHARS = re.compile(r"[A-Za-z]{2}\d{2}[A-Za-z0-9 ]{8,36}")
# a lookahead, so "Met Maria Lopez" yields both "Met Maria" and "Maria Lopez"
_NAME_PAIR = re.compile(r"(?=\b([A-Z][a-z]{1,20})\s+([A-Z][a-z]+(?:-[A-Z][a-z]+)?)\b)")


@lru_cache(maxsize=1)
def _first_names() -> frozenset[str]:
    import importlib

    names: set[str] = set()
    for locale in NAME_LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        names.update(str(n) for n in provider.first_names)
    return frozenset(n for n in names if len(n) > 1)


def _is_email(text: str) -> bool:
    return _EMAIL.fullmatch(text) is not None


def _is_phone(text: str, hinted: bool) -> bool:
    import phonenumbers

    if _PHONE_CHARS.fullmatch(text) is None or (text.isdigit() and not hinted):
        return False
    try:
        number = phonenumbers.parse(text, PHONE_REGION)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number)


def _is_card(text: str) -> bool:
    from stdnum import luhn

    if _CARD_CHARS.fullmatch(text) is None:
        return False
    digits = re.sub(r"[ -]", "", text)
    return 13 <= len(digits) <= 19 and luhn.is_valid(digits)


def _is_iban(text: str) -> bool:
    from stdnum import iban

    return _IBAN_CHARS.fullmatch(text) is not None and iban.is_valid(text)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _name_pair(text: str) -> tuple[str, str] | None:
    names = _first_names()
    return next(((first, last) for first, last in _NAME_PAIR.findall(text)
                 if first in names), None)


def _has_name(text: str) -> bool:
    return _name_pair(text) is not None


def _hinted(column: str) -> set[PersonalKind]:
    words = set(re.split(r"[^a-z0-9]+", column.lower())) | {column.lower()}
    return {kind for kind, hints in _HINTS.items() if words & set(hints)}


def _sample(series: pd.Series, size: int, seed: int) -> pd.Series:
    present = series.dropna()
    return present.sample(size, random_state=seed) if len(present) > size else present


def _whole_numbers(values: pd.Series) -> list[str] | None:
    """The values as integer text when every one is a whole number; None otherwise."""
    import numpy as np

    numbers = values.to_numpy(dtype=np.float64)
    if not np.isfinite(numbers).all() or (numbers % 1 != 0).any():
        return None
    return [str(v) for v in values.astype(np.int64)] if values.dtype.kind == "f" else \
        [str(v) for v in values]


def _judge(name: str, series: pd.Series, size: int, seed: int) -> PersonalColumn | None:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return None
    values = _sample(series, size, seed)
    if values.empty:
        return None
    hinted = _hinted(name)
    numeric = pd.api.types.is_numeric_dtype(dtype)
    texts = _whole_numbers(values) if numeric else [str(v).strip() for v in values]
    if texts is None:  # a float with a fraction: an amount, a rate, a measure
        return None
    phone = {PersonalKind.PHONE: lambda t: _is_phone(t, PersonalKind.PHONE in hinted)}
    checks = ({PersonalKind.CARD: _is_card, **phone} if numeric else {
        PersonalKind.EMAIL: _is_email, PersonalKind.CARD: _is_card,
        PersonalKind.IBAN: _is_iban, PersonalKind.IP: _is_ip, **phone,
        PersonalKind.NAME: _has_name})
    best: PersonalColumn | None = None
    for kind, check in checks.items():
        matched = [t for t in texts if check(t)]
        share = len(matched) / len(texts)
        needed = HINTED_SHARE if kind in hinted else (
            NAME_SHARE if kind is PersonalKind.NAME else MATCH_SHARE)
        if matched and share >= needed and (best is None or share > best.share):
            best = PersonalColumn(name, kind, share, mask(matched[0], kind))
    return best


def detect_personal(df: pd.DataFrame, columns: Iterable[str] | None = None, *,
                    sample: int = SAMPLE, seed: int = 0) -> dict[str, PersonalColumn]:
    """The columns of ``df`` (or of ``columns``) that look personal, by column name."""
    found = {}
    for name in (df.columns if columns is None else columns):
        judged = _judge(str(name), df[name], sample, seed)
        if judged is not None:
            found[str(name)] = judged
    return found


def personal_columns(df: pd.DataFrame, *, declared: Collection[str] = (),
                     exclude: Collection[str] = (), skip: Collection[str] = (),
                     seed: int = 0) -> dict[str, PersonalColumn]:
    """Detected columns (but those in ``exclude`` or ``skip``) plus the ``declared`` ones.

    Args:
        df: the data.
        declared: personal whatever they hold (a declared column absent from ``df`` is
            kept too: it may arrive in requests).
        exclude: never personal, whatever detection says.
        skip: not examined (the target).
        seed: for the sample of values.
    """
    ignored = {*exclude, *skip}
    found = detect_personal(df, [c for c in df.columns if c not in ignored], seed=seed)
    for name in declared:
        if name not in found:
            found[name] = PersonalColumn(name, PersonalKind.DECLARED, 1.0)
    return found


def personal_findings(found: dict[str, PersonalColumn], policy: str) -> list[Finding]:
    """One ``personal_data`` finding listing ``found`` and what ``policy`` does with them
    (FAIL severity under ``fail``, WARN otherwise); none when nothing was found."""
    if not found:
        return []
    listed = ", ".join(f"{c.name!r} ({c.kind.value}"
                       + (f", {c.share:.0%} of sampled values" if c.kind is not
                          PersonalKind.DECLARED else ", declared") + ")"
                       for c in found.values())
    effect = {"warn": "kept as they are (privacy.policy: warn); the prediction log stores "
                      "them hashed",
              "fail": "training stops (privacy.policy: fail)",
              "drop": "left out of the features (privacy.policy: drop)",
              "hash": "replaced by their keyed hash before training (privacy.policy: hash)"}
    return [Finding("personal_data", Severity.FAIL if policy == "fail" else Severity.WARN,
                    f"Personal data in {listed}: {effect[policy]}. List a column in "
                    "privacy.exclude if it is not personal.", tuple(found),
                    {"policy": policy, "columns": {n: c.to_dict() for n, c in found.items()}})]


def _stars(part: str) -> str:
    return part[:1] + "***" if part else "***"


def mask(value: object, kind: PersonalKind) -> str:
    """A masked form of a personal value that shows its shape, not its content."""
    text = str(value).strip()
    if kind is PersonalKind.EMAIL and "@" in text:
        user, _, domain = text.rpartition("@")
        host, _, tld = domain.rpartition(".")
        return f"{_stars(user)}@{_stars(host)}.{tld}"
    if kind in (PersonalKind.PHONE, PersonalKind.CARD):
        digits = re.sub(r"\D", "", text)
        keep = 4 if kind is PersonalKind.CARD else 2
        return "*" * max(len(digits) - keep, 0) + digits[-keep:]
    if kind is PersonalKind.IBAN:
        compact = text.replace(" ", "")
        return compact[:2] + "*" * max(len(compact) - 4, 0) + compact[-2:]
    if kind is PersonalKind.IP:
        return (text.split(".")[0] + ".*.*.*") if "." in text else text.split(":")[0] + ":*"
    if kind is PersonalKind.NAME:
        pair = _name_pair(text)
        return f"{pair[0][0]}*** {pair[1][0]}***" if pair else "***"
    return "***"
