"""Data quality of the current data against the reference profile and the signature.

Per column: the missing share and its change, values outside the training range (the
profile's min/max), categories never seen in training (see :mod:`.binning` for when that
is knowable), values that do not parse as the training type. Per frame: signature columns
that are missing, new columns, and the share of duplicated input rows. Problems are
:class:`~forgeline.data.findings.Finding` objects, as the training checks report them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from forgeline.data import values as v
from forgeline.data.findings import Finding, Severity
from forgeline.data.profile import duplicate_share
from forgeline.monitoring.binning import Binned
from forgeline.monitoring.config import MonitorConfig

__all__ = ["ColumnFacts", "QualityResult", "judge_quality", "quality"]



@dataclass
class QualityResult:
    columns: dict[str, dict[str, Any]]
    missing_columns: list[str]
    new_columns: list[str]
    duplicate_share: float | None
    reference_duplicate_share: float | None
    issues: list[Finding] = field(default_factory=list)


@dataclass(frozen=True)
class ColumnFacts:
    """What quality reads of one current column besides its binning: row and missing
    counts, the dtype, and (a datetime input stored as something else) how many of the
    values sampled do not parse as dates. Facts of parts of the data add up
    (:meth:`merge`), so quality can be judged on data read partition by partition."""

    rows: int
    missing: int
    dtype: str
    numeric_dtype: bool
    bad_dates: int = 0
    sampled_dates: int = 0

    @classmethod
    def of(cls, series: pd.Series, expected_kind: str) -> ColumnFacts:
        bad = sampled = 0
        if expected_kind == "datetime" and not pd.api.types.is_datetime64_any_dtype(series):
            present = v.sample(series.dropna())
            sampled, bad = len(present), int(v.parse_datetimes(present).isna().sum())
        return cls(len(series), int(series.isna().sum()), str(series.dtype),
                   v.is_number_dtype(series), bad, sampled)

    @classmethod
    def merge(cls, parts: Iterable[ColumnFacts]) -> ColumnFacts:
        """The facts of the parts together; a dtype that differs between parts reads
        ``mixed (a, b)`` (the parts' dtypes, in order of first appearance)."""
        parts = list(parts)
        dtypes = list(dict.fromkeys(p.dtype for p in parts))
        return cls(sum(p.rows for p in parts), sum(p.missing for p in parts),
                   dtypes[0] if len(dtypes) == 1 else f"mixed ({', '.join(dtypes)})",
                   all(p.numeric_dtype for p in parts), sum(p.bad_dates for p in parts),
                   sum(p.sampled_dates for p in parts))


def _type_issue(name: str, expected_kind: str, expected_dtype: str, facts: ColumnFacts,
                binned: Binned | None) -> Finding | None:
    found = facts.dtype
    if expected_kind == "numeric" and binned is not None and binned.not_parsed:
        share = binned.not_parsed / max(facts.rows, 1)
        shown = ", ".join(repr(x) for x in binned.not_parsed_examples)
        return Finding("type_change", Severity.WARN,
                       f"{name}: expected numbers ({expected_dtype}), found {found} with "
                       f"{binned.not_parsed} value(s) ({share:.1%}) that are not numbers, "
                       f"e.g. {shown}; they are left out of drift.", (name,),
                       {"expected": expected_dtype, "found": found,
                        "not_parsed": binned.not_parsed})
    if facts.bad_dates:
        return Finding("type_change", Severity.WARN,
                       f"{name}: expected datetimes ({expected_dtype}), found {found}; "
                       f"{facts.bad_dates} of {facts.sampled_dates} sampled values do not "
                       "parse as dates.", (name,), {"expected": expected_dtype, "found": found})
    if expected_kind == "numeric" and not facts.numeric_dtype and facts.rows:
        return Finding("type_change", Severity.INFO,
                       f"{name}: dtype changed from {expected_dtype} to {found}; the values "
                       "still read as numbers.", (name,),
                       {"expected": expected_dtype, "found": found})
    return None


def _column_quality(name: str, facts: ColumnFacts, binned: Binned | None,
                    reference: Mapping[str, Any], config: MonitorConfig
                    ) -> tuple[dict[str, Any], list[Finding]]:
    n = facts.rows
    missing = binned.missing if binned is not None else facts.missing
    share = missing / n if n else 0.0
    ref_share = reference.get("missing_share")
    change = share - ref_share if ref_share is not None else None
    row: dict[str, Any] = {"kind": reference.get("kind"), "missing_share": share,
                           "reference_missing_share": ref_share,
                           "missing_share_change": change}
    issues = []
    if change is not None and abs(change) >= config.missing_share_change:
        severity = Severity.FAIL if share == 1.0 else Severity.WARN
        issues.append(Finding("missing_share", severity,
                              f"{name}: {share:.1%} missing, {ref_share:.1%} in training "
                              f"({change:+.1%}).", (name,), {"change": change}))
    if binned is None:
        return row, issues
    present = max(n - missing - binned.not_parsed, 0)
    if binned.out_of_range is not None:
        oor = binned.out_of_range / present if present else 0.0
        row.update(out_of_range=binned.out_of_range, out_of_range_share=oor)
        if oor > config.out_of_range_share:
            issues.append(Finding(
                "out_of_range", Severity.WARN,
                f"{name}: {binned.out_of_range} value(s) ({oor:.1%}) outside the training "
                f"range [{reference.get('min'):.4g}, {reference.get('max'):.4g}].", (name,),
                {"count": binned.out_of_range, "share": oor}))
    if binned.categorical:
        unseen_share = None if binned.unseen is None else (
            binned.unseen / present if present else 0.0)
        row.update(unseen=binned.unseen, unseen_share=unseen_share,
                   unseen_examples=binned.unseen_examples)
        if unseen_share is not None and unseen_share > config.unseen_share:
            shown = ", ".join(repr(x) for x in binned.unseen_examples)
            issues.append(Finding(
                "unseen_categories", Severity.WARN,
                f"{name}: {binned.unseen} value(s) ({unseen_share:.1%}) in categories never "
                f"seen in training, e.g. {shown}.", (name,),
                {"count": binned.unseen, "share": unseen_share}))
    row["not_parsed"] = binned.not_parsed
    return row, issues


def quality(frame: pd.DataFrame, inputs: list[tuple[str, str, str]],
            profile: Mapping[str, Any], binned: Mapping[str, Binned], config: MonitorConfig,
            ignore: Iterable[str] = ()) -> QualityResult:
    """Quality of ``frame`` against the signature ``inputs`` and the reference ``profile``.

    Args:
        frame: the current data.
        inputs: (name, kind, dtype) of every signature input.
        profile: the reference profile (``columns``; optionally ``quality``).
        binned: the current columns on the reference bins.
        config: the thresholds.
        ignore: columns that are expected besides the inputs (the prediction log's own).
    """
    facts = {name: ColumnFacts.of(frame[name], kind) for name, kind, _ in inputs
             if name in frame.columns}
    names = [n for n, _, _ in inputs]
    dup = duplicate_share(frame, names, [b.buckets for n, b in binned.items() if n in names])
    return judge_quality([str(c) for c in frame.columns], facts, inputs, profile, binned,
                         config, ignore, dup)


def judge_quality(columns: list[str], facts: Mapping[str, ColumnFacts],
                  inputs: list[tuple[str, str, str]], profile: Mapping[str, Any],
                  binned: Mapping[str, Binned], config: MonitorConfig,
                  ignore: Iterable[str] = (), duplicates: float | None = None
                  ) -> QualityResult:
    """:func:`quality` from what was read of the data rather than the data itself.

    Args:
        columns: the current data's columns.
        facts: the facts of each signature input present.
        inputs, profile, binned, config, ignore: as for :func:`quality`.
        duplicates: the share of duplicated input rows (None: not known).
    """
    names = {name for name, _, _ in inputs}
    missing = [name for name, _, _ in inputs if name not in columns]
    ignored = set(ignore)
    new = [c for c in columns if c not in names and c not in ignored
           and not c.startswith("proba_")]
    issues: list[Finding] = []
    if missing:
        issues.append(Finding(
            "missing_columns", Severity.FAIL,
            f"{len(missing)} signature column(s) missing from the current data: "
            f"{', '.join(missing)}; the checks cover the {len(names) - len(missing)} present.",
            tuple(missing)))
    if new:
        issues.append(Finding("new_columns", Severity.INFO,
                              f"{len(new)} column(s) not in the signature: {', '.join(new)}.",
                              tuple(new)))
    rows: dict[str, dict[str, Any]] = {}
    ref_columns = profile.get("columns") or {}
    for name, kind, dtype in inputs:
        if name not in facts:
            continue
        row, found = _column_quality(name, facts[name], binned.get(name),
                                     ref_columns.get(name) or {"kind": kind}, config)
        rows[name] = row
        issues.extend(found)
        typed = _type_issue(name, kind, dtype, facts[name], binned.get(name))
        if typed is not None:
            issues.append(typed)
    ref_dup = (profile.get("quality") or {}).get("duplicate_share")
    if duplicates is not None and duplicates - (ref_dup or 0.0) >= \
            config.duplicate_share_change:
        base = f", {ref_dup:.1%} in training" if ref_dup is not None else ""
        issues.append(Finding("duplicates", Severity.WARN,
                              f"{duplicates:.1%} of the rows repeat an earlier row{base}.",
                              details={"share": duplicates, "reference": ref_dup}))
    return QualityResult(rows, missing, new, duplicates, ref_dup, issues)
