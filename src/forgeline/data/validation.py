"""Validate a training frame against its schema: hard errors, then findings.

Hard errors (InvalidInput, never a finding) stop training because nothing sensible can be
learned or the pipeline would fail later with a worse message: an empty frame, a target
that is entirely missing, and columns of mixed garbage -- a column inferred (or declared)
numeric whose text holds values that are not numbers ("?", "n/a ", "12,50"). A text column
that merely mixes Python types (``"A"``, ``"B"``, ``3``) is an ordinary categorical column
read from a messy source: it is a ``mixed_types`` finding, and its values are used as text.

Findings (check ids): ``missing_values`` (warn: a column over 50% missing),
``constant_column`` (warn), ``duplicate_rows`` (info; warn over 5% of rows),
``mixed_types`` (warn), ``missing_target`` (warn: training drops those rows),
``class_imbalance`` (info: the rarest class under 5%), ``high_cardinality`` (info: a
categorical column with over 100 values, or over half of its values distinct).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from forgeline.data import values as v
from forgeline.data.findings import Finding, Severity
from forgeline.data.schema import ColumnInfo, ColumnKind, Schema
from forgeline.entities import Task
from forgeline.errors import InvalidInput

__all__ = ["ValidationReport", "validate"]

MOSTLY_MISSING = 0.5
DUPLICATES_WARN = 0.05
IMBALANCE = 0.05
HIGH_CARDINALITY = 100


@dataclass(frozen=True)
class ValidationReport:
    """What validation saw. ``columns`` maps each column (target included) to kind, dtype,
    missing_share, n_unique, constant and mixed_types."""

    rows: int
    columns: dict[str, dict[str, Any]]
    duplicate_rows: int
    target_missing: int
    class_balance: dict[str, float] | None
    findings: tuple[Finding, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return {"rows": self.rows, "columns": {k: dict(c) for k, c in self.columns.items()},
                "duplicate_rows": self.duplicate_rows, "target_missing": self.target_missing,
                "class_balance": None if self.class_balance is None else dict(
                    self.class_balance),
                "findings": [{"check": f.check, "severity": f.severity.value,
                              "message": f.message, "columns": list(f.columns),
                              "details": f.details} for f in self.findings]}


def _names(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _check_garbage(df: pd.DataFrame, schema: Schema, task: Task) -> None:
    """Raise for every numeric column whose text holds values that are not numbers."""
    problems = []
    checked = [c for c in schema.columns if c.kind is ColumnKind.NUMERIC]
    if schema.target.kind is ColumnKind.NUMERIC or task is Task.REGRESSION:
        checked.append(schema.target)
    for info in checked:
        bad, examples = v.junk(df[info.name])
        if bad:
            share = bad / max(int(df[info.name].notna().sum()), 1)
            problems.append(f"{info.name!r} ({share:.1%} of its values, {bad} rows, e.g. "
                            f"{', '.join(repr(e) for e in examples[:3])})")
    if problems:
        raise InvalidInput(
            "Mixed garbage: column(s) of numbers holding values that are not numbers: "
            + "; ".join(problems) + ".",
            hint="Clean them (an empty cell is read as missing), declare a column in "
                 "features.categorical if it holds categories, or drop it with data.drop.")


def _column(series: pd.Series, info: ColumnInfo) -> dict[str, Any]:
    n_unique = v.nunique(series)
    return {"kind": info.kind.value, "dtype": str(series.dtype),
            "missing_share": float(series.isna().mean()), "n_unique": n_unique,
            "constant": n_unique <= 1, "mixed_types": v.is_mixed(series)}


def _duplicates(df: pd.DataFrame, infos: list[ColumnInfo]) -> int:
    names = [i.name for i in infos if i.kind is not ColumnKind.ID]
    if not names:
        return 0
    part = df[names]
    try:
        hashes = pd.util.hash_pandas_object(part, index=False)
    except TypeError:
        hashes = pd.util.hash_pandas_object(part.astype(str), index=False)
    return int(hashes.duplicated().sum())


def _column_findings(df: pd.DataFrame, columns: dict[str, dict[str, Any]],
                     infos: list[ColumnInfo], target: str) -> list[Finding]:
    found = []
    features = {n: c for n, c in columns.items() if n != target}  # missing_target covers it
    missing = {n: c["missing_share"] for n, c in features.items()
               if c["missing_share"] > MOSTLY_MISSING and not c["constant"]}
    if missing:
        listed = ", ".join(f"{n!r} ({s:.0%} missing)" for n, s in missing.items())
        found.append(Finding("missing_values", Severity.WARN,
                             f"Mostly missing: {listed}. Such columns carry little signal; "
                             "drop them with data.drop or check the export.",
                             tuple(missing), {"missing_share": missing}))
    constant = [n for n, c in features.items() if c["constant"]]
    if constant:
        found.append(Finding("constant_column", Severity.WARN,
                             f"Constant (one value or none): {_names(constant)}. A column "
                             "that never changes cannot help a model; drop it with data.drop.",
                             tuple(constant)))
    for info in infos:
        column = columns[info.name]
        if column["mixed_types"]:
            types = v.type_names(df[info.name])
            found.append(Finding(
                "mixed_types", Severity.WARN,
                f"Column {info.name!r} mixes value types ({', '.join(types[:4])}); its values "
                "are used as text, so 3 and '3' are one category. Convert the column to one "
                "type if that is wrong.", (info.name,), {"types": types}))
        wide = column["n_unique"] > HIGH_CARDINALITY or (
            column["n_unique"] > 20 and column["n_unique"] > 0.5 * (len(df) * (
                1 - column["missing_share"])))
        if info.kind is ColumnKind.CATEGORICAL and wide and info.name != target:
            found.append(Finding(
                "high_cardinality", Severity.INFO,
                f"Column {info.name!r} has {column['n_unique']} distinct values: it is "
                "target-encoded, and values seen once teach little. Group rare values, or "
                "drop it if it is an identifier.", (info.name,),
                {"n_unique": column["n_unique"]}))
    return found


def _target_findings(y: pd.Series, task: Task, rows: int
                     ) -> tuple[int, dict[str, float] | None, list[Finding]]:
    found = []
    target_missing = int(y.isna().sum())
    if target_missing:
        found.append(Finding("missing_target", Severity.WARN,
                             f"{target_missing} rows ({target_missing / rows:.1%}) have no "
                             f"target value; training drops them.", (str(y.name),),
                             {"rows": target_missing}))
    balance = None
    if task is not Task.REGRESSION:
        counts = v.category_counts(y)
        shares = counts / counts.sum()
        balance = {str(k): float(s) for k, s in shares.items()}
        rarest, share = str(shares.index[-1]), float(shares.iloc[-1])
        if share < IMBALANCE:
            found.append(Finding(
                "class_imbalance", Severity.INFO,
                f"Class {rarest!r} is only {share:.1%} of the labelled rows: accuracy would "
                "mislead, so judge the model by roc_auc, f1 or per-class recall (training "
                "tries balanced class weights too).", (str(y.name),), {"class_balance": balance}))
    return target_missing, balance, found


def validate(df: pd.DataFrame, schema: Schema, task: Task) -> ValidationReport:
    """Check ``df`` against ``schema`` for training a ``task`` model.

    Raises:
        InvalidInput: the frame is empty, a schema column is missing from it, the target is
            entirely missing, or a numeric column holds values that are not numbers.
    """
    if len(df) == 0 or len(df.columns) == 0:
        raise InvalidInput(f"The data is empty ({len(df)} rows, {len(df.columns)} columns).",
                           hint="Training needs rows with a target value.")
    infos = [c for c in schema.columns if c.name in df.columns]
    absent = [c.name for c in schema.columns if c.name not in df.columns]
    if schema.target.name not in df.columns:
        absent.append(schema.target.name)
    if absent:
        raise InvalidInput(f"Column(s) {_names(absent)} of the schema are not in the data.",
                           hint="Infer the schema from the same frame you validate.")
    infos.append(schema.target)
    y = df[schema.target.name]
    if y.isna().all():
        raise InvalidInput(f"Target {schema.target.name!r} is missing on every row.",
                           hint="Check data.target names the column with the labels.")
    _check_garbage(df, schema, task)
    columns = {i.name: _column(df[i.name], i) for i in infos}
    duplicates = _duplicates(df, infos)
    findings = _column_findings(df, columns, infos, schema.target.name)
    if duplicates:
        share = duplicates / len(df)
        findings.append(Finding(
            "duplicate_rows", Severity.WARN if share > DUPLICATES_WARN else Severity.INFO,
            f"{duplicates} rows ({share:.1%}) repeat an earlier row exactly (id columns "
            "ignored): they count twice and can land on both sides of the split. Remove them "
            "unless they are genuine repeats.", (), {"rows": duplicates, "share": share}))
    target_missing, balance, target_found = _target_findings(y, task, len(df))
    findings += target_found
    return ValidationReport(rows=len(df), columns=columns, duplicate_rows=duplicates,
                            target_missing=target_missing, class_balance=balance,
                            findings=tuple(findings))
