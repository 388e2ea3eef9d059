"""Leakage checks between the training and the test split, and their enforcement.

Each check's severity comes from the spec's ``leakage:`` policy (fail → FAIL, warn → WARN,
ignore → the check does not run). A check that finds nothing adds no finding.

- ``target_leak``: a feature (numeric, boolean or categorical; not the time or group column)
  that alone predicts the target at or above ``target_leak_threshold`` on held-out folds
  (see :mod:`forgeline.data.target_leak`).
- ``train_test_overlap``: test rows identical to a training row on every non-id column and
  the target. Identical rows are copies when chance cannot explain them: with the training
  split's value frequencies, a training row would match that row by chance fewer than
  0.01 times (assuming independent columns). Copies in over 1% of the test rows (and at least
  3) get the policy's severity; fewer copies, or matches that common value combinations
  explain, are info.
- ``time_travel``: with a time column, test rows older than the newest training row.
- ``group_overlap``: with a group column, groups on both sides of the split.
- ``id_columns``: columns used as features that look like identifiers: the heuristic says
  ID but the kind was overridden, or the name says id and nearly every value is distinct.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from forgeline.data import values as v
from forgeline.data.findings import Finding, Severity
from forgeline.data.inference import infer_kind
from forgeline.data.schema import ColumnKind, Schema
from forgeline.data.target_leak import METRICS, feature_scores
from forgeline.entities import Policy, Task
from forgeline.errors import LeakageDetected

__all__ = ["LeakageSpec", "check_leakage", "copy_columns", "copy_groups", "enforce"]

_SEVERITY = {Policy.FAIL: Severity.FAIL, Policy.WARN: Severity.WARN}
COPY_SHARE = 0.01  # copies of training rows in more of the test split than this: leakage
MIN_COPIES = 3  # and at least this many: one coincidence in a small test split is not a leak
CHANCE = 0.01  # expected chance matches below this: an identical row is a copy
_LEARNABLE = (ColumnKind.NUMERIC, ColumnKind.BOOLEAN, ColumnKind.CATEGORICAL)


class LeakageSpec(BaseModel):
    """The spec's ``leakage:`` section: each check's policy and the target-leak threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_leak: Policy = Policy.FAIL
    train_test_overlap: Policy = Policy.FAIL
    time_travel: Policy = Policy.FAIL
    group_overlap: Policy = Policy.FAIL
    id_columns: Policy = Policy.WARN
    target_leak_threshold: float = Field(0.98, gt=0.5, le=1.0)


def _quoted(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(str(n)) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _target_leak(train: pd.DataFrame, schema: Schema, task: Task, policy: LeakageSpec,
                 skip: set[str], seed: int) -> list[Finding]:
    columns = [c.name for c in schema.columns
               if c.kind in _LEARNABLE and c.name in train.columns and c.name not in skip]
    scores, rows = feature_scores(train, schema, task, columns, seed=seed)
    threshold = policy.target_leak_threshold
    leaking = sorted((n for n, s in scores.items() if s >= threshold), key=lambda n: -scores[n])
    if not leaking:
        return []
    metric = METRICS[task]
    listed = ", ".join(f"{n!r} ({metric} {scores[n]:.3f})" for n in leaking[:5])
    return [Finding(
        "target_leak", _SEVERITY[policy.target_leak],
        f"Target leak: {listed} alone predict(s) {schema.target.name!r} almost perfectly "
        f"(>= {threshold} on held-out folds), so it is probably derived from the target or "
        "only known after it. Drop it with data.drop; if it really is known when predicting, "
        "set leakage.target_leak: warn.", tuple(leaking),
        {"metric": metric, "threshold": threshold, "rows": rows,
         "scores": {n: round(s, 4) for n, s in scores.items()}})]


def _hashes(frame: pd.DataFrame) -> np.ndarray:
    try:
        return pd.util.hash_pandas_object(frame, index=False).to_numpy()
    except TypeError:  # unhashable cells: compare their text
        return pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy()


def _chance_matches(train: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """Per row of ``rows``: how many training rows would equal it by chance, were the
    columns independent (n_train times the product of each value's training frequency)."""
    log_expected = np.full(len(rows), np.log(max(len(train), 1)))
    for name in rows.columns:
        both = pd.concat([train[name], rows[name]], ignore_index=True)
        try:
            codes, _ = pd.factorize(both, use_na_sentinel=False)
        except TypeError:  # unhashable cells: their text
            codes, _ = pd.factorize(both.astype(str), use_na_sentinel=False)
        counts = np.bincount(codes[:len(train)], minlength=int(codes.max()) + 1)
        seen = counts[codes[len(train):]] / max(len(train), 1)
        log_expected += np.log(np.maximum(seen, 1e-300))
    return np.exp(log_expected)


def copy_columns(schema: Schema, frame: pd.DataFrame) -> list[str]:
    """The columns two rows must share to be copies: every non-id column and the target."""
    names = [c.name for c in schema.columns if c.kind is not ColumnKind.ID
             and c.name in frame.columns]
    return [*names, schema.target.name]


def copy_groups(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Per row, the group of rows it is a copy of; -1 for a row that copies no other.

    Copies are rows identical over ``columns`` whose combination of values is too rare to
    repeat by chance: leaving the group's own rows out, fewer than ``CHANCE`` other rows
    would be expected to equal it were the columns independent. That never expects more
    than the train_test_overlap check does for the same rows (it counts the copies on the
    training side too), so every copy that check would report is in a group here. Groups
    are numbered from 0 in the order of their first row.
    """
    groups = np.full(len(frame), -1, dtype=np.int64)
    if len(frame) < 2 or not columns:
        return groups
    data = frame[list(columns)]
    combos = pd.factorize(_hashes(data))[0]
    sizes = np.bincount(combos)
    rows = np.flatnonzero(sizes[combos] > 1)
    if not len(rows):
        return groups
    first = pd.Series(rows).groupby(combos[rows]).first().to_numpy()  # a row per combination
    m = sizes[combos[first]]
    log_expected = np.full(len(first), np.log(len(frame)))
    for name in data.columns:
        try:
            codes = pd.factorize(data[name], use_na_sentinel=False)[0]
        except TypeError:  # unhashable cells: their text
            codes = pd.factorize(data[name].astype(str), use_na_sentinel=False)[0]
        others = np.bincount(codes)[codes[first]] - m  # rows with this value, the group's aside
        log_expected += np.log(np.maximum(others / len(frame), 1e-300))
    copied = set(combos[first[np.exp(log_expected) < CHANCE]].tolist())
    members = rows[np.isin(combos[rows], list(copied))]
    groups[members] = pd.factorize(combos[members])[0]
    return groups


def _overlap(train: pd.DataFrame, test: pd.DataFrame, schema: Schema, policy: Policy
             ) -> list[Finding]:
    names = copy_columns(schema, test)
    identical = np.isin(_hashes(test[names]), _hashes(train[names]))
    n_identical = int(identical.sum())
    if not n_identical:
        return []
    rows = test.loc[identical, names]
    copies = _chance_matches(train[names], rows) < CHANCE
    n_copies = int(copies.sum())
    share = n_copies / len(test)
    details = {"columns": names, "identical_rows": n_identical,
               "identical_share": n_identical / len(test), "copies": n_copies,
               "copies_share": share, "examples": [str(i) for i in rows.index[copies][:5]]}
    if share > COPY_SHARE and n_copies >= MIN_COPIES:
        return [Finding(
            "train_test_overlap", _SEVERITY[policy],
            f"{n_copies} test rows ({share:.1%}) are copies of training rows: the model is "
            "scored on rows it has learned, and the test score overstates it. Remove "
            "duplicate rows from the data (or split by group if they are repeats of one "
            "case); set leakage.train_test_overlap: warn to keep them.", (), details)]
    why = (f"{n_copies} look like copies, too few to matter (under {COPY_SHARE:.0%} of the "
           f"test rows or under {MIN_COPIES})" if n_copies
           else "common combinations of values explain them")
    return [Finding(
        "train_test_overlap", Severity.INFO,
        f"{n_identical} test rows ({n_identical / len(test):.1%}) equal a training row; "
        f"{why}, so this is not treated as leakage.", (), details)]


def _time_travel(train: pd.DataFrame, test: pd.DataFrame, column: str, policy: Policy
                 ) -> list[Finding]:
    train_times = v.time_values(train[column]).dropna()
    test_times = v.time_values(test[column])
    if train_times.empty or test_times.dropna().empty:
        return []
    newest = train_times.max()
    older = test_times < newest
    count = int(older.sum())
    if not count:
        return []
    oldest = test_times.min()
    return [Finding(
        "time_travel", _SEVERITY[policy],
        f"{count} test rows ({count / len(test):.1%}) are older than the newest training "
        f"row (training data reaches {newest}, the test data starts at {oldest}): the model "
        "learns from the future of the rows it is tested on. Use split.strategy: time, or "
        "set leakage.time_travel: warn.", (column,),
        {"rows": count, "share": count / len(test), "newest_train": str(newest),
         "oldest_test": str(oldest)})]


def _group_overlap(train: pd.DataFrame, test: pd.DataFrame, column: str, policy: Policy
                   ) -> list[Finding]:
    shared = pd.Index(train[column].dropna().unique()).intersection(
        pd.Index(test[column].dropna().unique()))
    if shared.empty:
        return []
    examples = sorted(str(g) for g in shared[:200])[:5]
    rows = int(test[column].isin(shared).sum())
    return [Finding(
        "group_overlap", _SEVERITY[policy],
        f"{len(shared)} groups of {column!r} are on both sides of the split (e.g. "
        f"{_quoted(examples)}; {rows} test rows): the model is tested on cases it has seen. "
        "Use split.strategy: group, or set leakage.group_overlap: warn.", (column,),
        {"groups": len(shared), "test_rows": rows, "examples": examples})]


def _id_columns(train: pd.DataFrame, schema: Schema, policy: Policy, skip: set[str]
                ) -> list[Finding]:
    flagged = []
    for info in schema.columns:
        name = info.name
        if info.kind is ColumnKind.ID or name in skip or name not in train.columns:
            continue
        present = train[name].dropna()
        near_unique = len(present) >= 20 and v.nunique(present) >= 0.9 * len(present)
        if (near_unique and v.looks_like_id_name(name)) or (
                info.kind is not ColumnKind.DATETIME and infer_kind(train[name], name)
                is ColumnKind.ID):
            flagged.append(name)
    if not flagged:
        return []
    return [Finding(
        "id_columns", _SEVERITY[policy],
        f"{_quoted(flagged)} look(s) like identifiers (a different value on nearly every row) "
        "but are used as features: a model memorises them and does not generalise. Declare "
        "them in features.id or drop them with data.drop; set leakage.id_columns: ignore to "
        "keep them.", tuple(flagged))]


def check_leakage(train: pd.DataFrame, test: pd.DataFrame, schema: Schema, task: Task,
                  policy: LeakageSpec, *, time_column: str | None, group_column: str | None,
                  seed: int) -> list[Finding]:
    """Run the leakage checks the policy enables (see the module docstring).

    Args:
        train: the training split (feature columns and the target).
        test: the test split, same columns.
        schema: the column kinds; ID columns are never compared or scored.
        task: the learning task, which picks the target_leak score.
        policy: the spec's ``leakage:`` section.
        time_column: the time column, if any (time_travel; excluded from target_leak).
        group_column: the group column, if any (group_overlap; excluded from target_leak).
        seed: for the target_leak sample and folds.
    """
    skip = {c for c in (time_column, group_column) if c}
    findings: list[Finding] = []
    if policy.target_leak is not Policy.IGNORE:
        findings += _target_leak(train, schema, task, policy, skip, seed)
    if policy.train_test_overlap is not Policy.IGNORE and len(test):
        findings += _overlap(train, test, schema, policy.train_test_overlap)
    if (policy.time_travel is not Policy.IGNORE and time_column
            and time_column in train.columns and time_column in test.columns):
        findings += _time_travel(train, test, time_column, policy.time_travel)
    if (policy.group_overlap is not Policy.IGNORE and group_column
            and group_column in train.columns and group_column in test.columns):
        findings += _group_overlap(train, test, group_column, policy.group_overlap)
    if policy.id_columns is not Policy.IGNORE:
        findings += _id_columns(train, schema, policy.id_columns, skip)
    if time_column and time_column in train.columns:
        findings += _ids_with_time(train, schema, time_column)
    return findings


def _ids_with_time(train: pd.DataFrame, schema: Schema, time_column: str) -> list[Finding]:
    """Say so when an identifier grows with time (a transaction number, say): it is not a
    feature (no identifier is), and the time column's days elapsed carry that order."""
    times = v.time_values(train[time_column])
    found = []
    for info in schema.columns:
        if info.kind is not ColumnKind.ID or info.name not in train.columns:
            continue
        raw = train[info.name]
        numbers = v.to_numbers(raw if v.is_number_dtype(raw)
                               else raw.astype(str).str.extract(r"(\d+)\s*$")[0])
        both = pd.DataFrame({"id": numbers.to_numpy(), "time": times.to_numpy()}).dropna()
        if len(both) < 20 or both["id"].nunique() < 20:
            continue
        rho = both["id"].rank().corr(both["time"].rank())
        if abs(rho) >= 0.9:
            found.append(Finding(
                "id_grows_with_time", Severity.INFO,
                f"{info.name!r} grows with {time_column!r} (rank correlation {rho:.2f}): as an "
                "identifier it is not a feature; the time column's days elapsed carry the "
                "same order, so the model can still follow the trend.", (info.name,),
                {"column": info.name, "rank_correlation": round(float(rho), 4)}))
    return found


def enforce(findings: Sequence[Finding]) -> None:
    """Raise LeakageDetected listing every FAIL finding; do nothing when there is none."""
    failed = [f for f in findings if f.severity is Severity.FAIL]
    if not failed:
        return
    listed = " ".join(f"({i}) [{f.check}] {f.message}" for i, f in enumerate(failed, 1))
    raise LeakageDetected(
        f"{len(failed)} leakage check(s) failed: {listed}",
        hint="Fix the data or the split as each says (drop the column, remove duplicates, "
             "split by time or group); to train anyway, set the check to warn in the spec's "
             "leakage: section, e.g. leakage.target_leak: warn.")
