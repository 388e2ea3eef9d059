"""Column kinds and the schema of a training frame.

``infer_schema`` lives in :mod:`forgeline.data.inference`; these types are the contract
shared by data checks, feature processing, the model signature and monitoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["ColumnInfo", "ColumnKind", "Schema"]


class ColumnKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    TEXT = "text"
    ID = "id"  # unique-per-row identifiers: never a feature unless declared otherwise


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    name: str
    kind: ColumnKind
    dtype: str  # pandas dtype as loaded, e.g. "float64", "object", "datetime64[ns]"
    n_unique: int
    missing_share: float


@dataclass(frozen=True, slots=True)
class Schema:
    """Every column of the frame except the target, plus the target's own info."""

    columns: tuple[ColumnInfo, ...]
    target: ColumnInfo

    def __getitem__(self, name: str) -> ColumnInfo:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def names(self, *kinds: ColumnKind) -> list[str]:
        """Column names of the given kinds (every column when none are given)."""
        return [c.name for c in self.columns if not kinds or c.kind in kinds]
