"""The model signature: what a model takes in, checked on every prediction.

The signature records each input column's kind, training dtype, whether it had missing
values, the categories and numeric ranges seen in training, and the model's task and
class labels. ``validate`` turns whatever a caller sends into the frame the model was
trained on, or raises one InvalidInput that names every problem at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from forgeline.data.schema import ColumnKind, Schema
from forgeline.entities import Task
from forgeline.errors import InvalidInput
from forgeline.packaging.coercion import (
    ColumnPlan,
    category_key,
    column_values,
    count_unseen,
    frame_from_arrays,
    join_columns,
    stack_frames,
)

__all__ = ["MAX_CATEGORIES", "InputColumn", "Signature"]

_FEW_RECORDS = 64
MAX_CATEGORIES = 1000  # above this many, a column's categories are not recorded
_UNSEEN_POLICIES = ("allow", "error")
_CATEGORY_KINDS = (ColumnKind.CATEGORICAL.value, ColumnKind.BOOLEAN.value)


@dataclass(frozen=True, slots=True)
class InputColumn:
    """One input column as seen in training."""

    name: str
    kind: str  # a ColumnKind value
    dtype: str  # dtype seen in training, e.g. "float64", "object", "bool", "datetime64[ns]"
    nullable: bool  # missing values seen in training (or allowed)
    categories: tuple[str, ...] | None = None  # categorical/boolean: values seen, as strings
    minimum: float | None = None  # numeric range seen in training
    maximum: float | None = None


@dataclass(frozen=True, slots=True)
class Signature:
    """The inputs and outputs of a model.

    Attributes:
        inputs: the input columns, in the order the model takes them.
        task: a :class:`~forgeline.training.spec.Task` value.
        target: the name of the target column.
        classes: classifier labels in the model's order; None for regression.
        unseen_categories: ``"allow"`` (the model handles them; ``unseen`` counts them)
            or ``"error"`` (``validate`` refuses them).
    """

    inputs: tuple[InputColumn, ...]
    task: str
    target: str
    classes: tuple[str | int | float | bool, ...] | None
    unseen_categories: str = "allow"
    _plans: tuple[ColumnPlan, ...] = field(default=(), init=False, repr=False, compare=False)
    _names: pd.Index = field(default=None, init=False, repr=False, compare=False)
    _name_list: list[str] = field(default_factory=list, init=False, repr=False,
                                  compare=False)
    _all_float64: bool = field(default=False, init=False, repr=False, compare=False)
    _bounds: tuple[np.ndarray, ...] = field(default=(), init=False, repr=False,
                                            compare=False)

    def __post_init__(self) -> None:
        if self.unseen_categories not in _UNSEEN_POLICIES:
            raise InvalidInput(
                f"Invalid unseen_categories policy {self.unseen_categories!r}.",
                hint="Use 'allow' (count them) or 'error' (refuse them).")
        try:
            object.__setattr__(self, "task", Task(self.task).value)
        except ValueError:
            raise InvalidInput(f"Invalid task {self.task!r} in the signature.",
                               hint=f"Use one of {', '.join(t.value for t in Task)}.") from None
        object.__setattr__(self, "inputs", tuple(self.inputs))
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "_plans", tuple(
            ColumnPlan(c.name, c.dtype, c.categories if c.kind in _CATEGORY_KINDS else None)
            for c in self.inputs))
        names = [c.name for c in self.inputs]
        object.__setattr__(self, "_name_list", names)
        object.__setattr__(self, "_names", pd.Index(names))
        object.__setattr__(self, "_all_float64", all(
            p.family == "float" and p.dtype == np.float64 for p in self._plans))
        numeric = [c.kind == ColumnKind.NUMERIC.value for c in self.inputs]
        object.__setattr__(self, "_bounds", (  # the training ranges, for out_of_range
            np.array([c.minimum if n and c.minimum is not None else -np.inf
                      for c, n in zip(self.inputs, numeric, strict=True)], dtype=np.float64),
            np.array([c.maximum if n and c.maximum is not None else np.inf
                      for c, n in zip(self.inputs, numeric, strict=True)], dtype=np.float64)))

    @property
    def names(self) -> list[str]:
        """The input column names, in order."""
        return list(self._name_list)

    @property
    def is_classifier(self) -> bool:
        return self.task != Task.REGRESSION.value

    # -- construction and JSON ----------------------------------------------------------
    @classmethod
    def from_frame(cls, X: pd.DataFrame, schema: Schema, task: str,
                   classes: Sequence[Any] | None) -> Signature:
        """The signature of a model trained on ``X`` (the feature columns, in model order).

        Args:
            X: the training features, exactly as passed to the model's ``fit``.
            schema: the inferred schema; gives each column's kind and the target's name.
            task: a Task value.
            classes: the classifier's ``classes_`` (None for regression).
        """
        known = {c.name: c.kind for c in schema.columns}
        inputs = tuple(_input_column(str(name), X[name], known.get(str(name)))
                       for name in X.columns)
        labels = None if classes is None else tuple(
            v.item() if isinstance(v, np.generic) else v for v in classes)
        return cls(inputs, str(Task(task)), schema.target.name, labels)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reads it back."""
        return {
            "inputs": [{"name": c.name, "kind": c.kind, "dtype": c.dtype,
                        "nullable": c.nullable,
                        "categories": None if c.categories is None else list(c.categories),
                        "minimum": c.minimum, "maximum": c.maximum} for c in self.inputs],
            "task": self.task,
            "target": self.target,
            "classes": None if self.classes is None else list(self.classes),
            "unseen_categories": self.unseen_categories,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Signature:
        """Read a dict written by :meth:`to_dict`; InvalidInput when it is malformed."""
        try:
            inputs = tuple(InputColumn(
                name=str(c["name"]), kind=str(ColumnKind(c["kind"])), dtype=str(c["dtype"]),
                nullable=bool(c["nullable"]),
                categories=None if c.get("categories") is None else tuple(
                    str(v) for v in c["categories"]),
                minimum=_opt_float(c.get("minimum")), maximum=_opt_float(c.get("maximum")),
            ) for c in d["inputs"])
            classes = d.get("classes")
            return cls(inputs, str(d["task"]), str(d["target"]),
                       None if classes is None else tuple(classes),
                       str(d.get("unseen_categories", "allow")))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise InvalidInput(
                f"The signature is malformed ({type(e).__name__}: {e}).",
                hint="Write it with Signature.to_dict, or re-save the model package.") from None

    # -- checking input -----------------------------------------------------------------
    def validate(self, df: pd.DataFrame) -> pd.DataFrame:
        """The model's input frame: the signature's columns, in order, in training dtypes.

        Ints go into float columns, numeric strings into numeric columns, ISO 8601 strings
        into datetime columns; extra columns are dropped; nulls are allowed everywhere
        (the pipeline imputes). Returns ``df`` itself when it already conforms.

        Raises:
            InvalidInput: naming every problem at once: the missing columns, each column
                whose values cannot be converted (with the first bad value and its row),
                and unseen categories when ``unseen_categories == "error"``.
        """
        positions = self._positions(df)
        arrays, changed = self._coerce([None if p < 0 else column_values(df, p)
                                        for p in positions])
        if not changed and _exactly_in_order(df, positions):
            return df
        return frame_from_arrays(arrays, self._names, df.index, self._plans)

    def validate_records(self, records: Mapping[str, Any] | Sequence[Mapping[str, Any]]
                         ) -> pd.DataFrame:
        """:meth:`validate` for one record or a list of them, as JSON gives them.

        Same result as ``validate(pd.DataFrame(records))`` at a fraction of its cost: the
        columns are built straight from the records, in the training dtypes. A key absent
        from some records is a missing value there; absent from all, a missing column.
        """
        columns = self.coerce_records(records)
        return columns if isinstance(columns, pd.DataFrame) else self.frame(columns)

    def coerce_records(self, records: Mapping[str, Any] | Sequence[Mapping[str, Any]]
                       ) -> list[Any] | pd.DataFrame:
        """:meth:`validate_records` without building the frame (the server's hot path).

        Returns:
            For a few records, their columns in the signature's order and training dtypes
            (:meth:`frame` or :meth:`combine` make frames of them); for many, the frame.
        """
        rows = [records] if isinstance(records, Mapping) else records
        if not isinstance(rows, Sequence) or isinstance(rows, str) or not all(
                isinstance(r, Mapping) for r in rows):
            raise InvalidInput("Expected a record (a dict of column -> value) or a list of "
                               f"records, got {type(records).__name__}.",
                               hint='For example [{"amount": 12.5, "country": "FR"}].')
        if not rows:
            raise InvalidInput("No records to predict on: the list is empty.",
                               hint="Send at least one record.")
        if len(rows) > _FEW_RECORDS:  # pandas' C loop over records wins from here on
            return self.validate(pd.DataFrame(rows))
        if len(rows) == 1 and self._all_float64:  # one numpy call, ~20x cheaper
            try:
                values = np.array([rows[0][n] for n in self._name_list], dtype=np.float64)
            except (KeyError, TypeError, ValueError, OverflowError):
                pass  # the general path below names what is wrong
            else:
                return [values[i:i + 1] for i in range(len(values))]
        present = set(rows[0]) if len(rows) == 1 else set().union(*rows)
        arrays, _ = self._coerce([
            np.fromiter((r.get(name) for r in rows), dtype=object, count=len(rows))
            if name in present else None for name in self._name_list])
        return arrays

    def frame(self, columns: list[Any]) -> pd.DataFrame:
        """The model's input frame of columns from :meth:`coerce_records`."""
        return frame_from_arrays(columns, self._names, pd.RangeIndex(len(columns[0])),
                                 self._plans)

    def combine(self, parts: Sequence[list[Any] | pd.DataFrame]) -> pd.DataFrame:
        """One input frame of several validated parts (columns or frames), rows in order.

        Columns are joined column by column, frames by :func:`stack_frames`: both far
        cheaper than ``pd.concat``.
        """
        if all(isinstance(p, list) for p in parts):
            joined = join_columns(parts)
            if joined is not None:
                return self.frame(joined)
        return stack_frames([p if isinstance(p, pd.DataFrame) else self.frame(p)
                             for p in parts])

    def _coerce(self, columns: list[Any]) -> tuple[list[Any], bool]:
        """Coerce each column's values (None: absent); raise one error naming every problem.

        Returns the coerced arrays and whether any differs from what was given.
        """
        problems: list[str] = []
        missing = [c.name for c, v in zip(self.inputs, columns, strict=True) if v is None]
        if missing:
            problems.append(f"missing column{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(map(repr, missing))}")
        arrays: list[Any] = []
        changed = False
        check_unseen = self.unseen_categories == "error"
        for column, plan, values in zip(self.inputs, self._plans, columns, strict=True):
            if values is None:
                continue
            converted, problem = plan.coerce(values)
            if problem is not None:
                problems.append(f"column {column.name!r} ({column.kind}, {column.dtype}): "
                                f"{problem}")
                continue
            changed |= converted is not values
            arrays.append(converted)
            if check_unseen and plan.categories is not None:
                count, examples = count_unseen(converted, plan.categories)
                if count:
                    shown = ", ".join(repr(v) for v in examples)
                    problems.append(f"column {column.name!r}: {count} value"
                                    f"{'s' if count > 1 else ''} not seen in training "
                                    f"({shown})")
        if problems:
            raise InvalidInput(
                f"Input does not match the model signature: {'; '.join(problems)}.",
                hint=f"The model takes {len(self.inputs)} columns: "
                     f"{_abbreviate(self.names)}.")
        return arrays, changed

    def out_of_range(self, df: pd.DataFrame) -> dict[str, int]:
        """Per numeric column, how many values lie outside the range seen in training.

        Only columns with at least one such value appear. Values that cannot be read as
        numbers are not counted here (``validate`` reports them).
        """
        positions = self._positions(df)
        if self._all_float64 and _exactly_in_order(df, positions) and all(
                d == np.float64 for d in df.dtypes):  # one 2-D comparison for all columns
            low, high = self._bounds
            values = df.to_numpy(dtype=np.float64)
            outside = ((values < low) | (values > high)).sum(axis=0)
            return {self._name_list[i]: int(outside[i]) for i in np.flatnonzero(outside)}
        counts: dict[str, int] = {}
        for column, pos in zip(self.inputs, positions, strict=True):
            if pos < 0 or column.kind != ColumnKind.NUMERIC.value or (
                    column.minimum is None and column.maximum is None):
                continue
            values = column_values(df, pos)
            if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
                numbers = values
            else:
                numbers = pd.to_numeric(pd.Series(values, copy=False), errors="coerce"
                                        ).to_numpy(dtype=np.float64, na_value=np.nan)
            low = column.minimum if column.minimum is not None else -np.inf
            high = column.maximum if column.maximum is not None else np.inf
            count = int(((numbers < low) | (numbers > high)).sum())
            if count:
                counts[column.name] = count
        return counts

    def unseen(self, df: pd.DataFrame) -> dict[str, int]:
        """Per categorical or boolean column, how many values were not seen in training.

        Only columns with at least one such value appear; missing values do not count.
        """
        counts: dict[str, int] = {}
        for plan, pos in zip(self._plans, self._positions(df), strict=True):
            if pos < 0 or plan.categories is None:
                continue
            converted, problem = plan.coerce(column_values(df, pos))
            if problem is None:
                count, _ = count_unseen(converted, plan.categories)
                if count:
                    counts[plan.name] = count
        return counts

    def _positions(self, df: pd.DataFrame) -> np.ndarray:
        """Where each input column sits in ``df`` (-1: absent)."""
        if not isinstance(df, pd.DataFrame):
            raise InvalidInput(f"Expected a pandas DataFrame, got {type(df).__name__}.",
                               hint="Pass a DataFrame, a dict or a list of dicts.")
        columns = df.columns
        if not columns.is_unique:
            duplicated = sorted({str(c) for c in columns[columns.duplicated()]})
            raise InvalidInput(f"Input has duplicated column names: {', '.join(duplicated)}.",
                               hint="Give each column once.")
        # Plain Python beats Index.get_indexer (~100 us) at the sizes a request has.
        given = columns.tolist()
        names = self._name_list
        if given == names:
            return np.arange(len(names))
        where = {name: i for i, name in enumerate(given)}
        return np.fromiter((where.get(name, -1) for name in names), dtype=np.intp,
                           count=len(names))


def _exactly_in_order(df: pd.DataFrame, positions: np.ndarray) -> bool:
    """Whether ``df`` holds exactly the signature's columns, in its order."""
    return len(df.columns) == len(positions) and bool(
        (positions == np.arange(len(positions))).all())


def _input_column(name: str, values: pd.Series, kind: str | None) -> InputColumn:
    dtype = values.dtype
    if kind is None:  # not in the schema: the closest kind from the dtype
        kind = (ColumnKind.BOOLEAN if pdt.is_bool_dtype(dtype)
                else ColumnKind.NUMERIC if pdt.is_numeric_dtype(dtype)
                else ColumnKind.DATETIME if pdt.is_datetime64_any_dtype(dtype)
                else ColumnKind.CATEGORICAL)
    kind = str(ColumnKind(kind))
    categories = minimum = maximum = None
    present = values.dropna()
    if kind in _CATEGORY_KINDS:
        keys = sorted({category_key(v) for v in pd.unique(present.to_numpy(dtype=object))})
        categories = tuple(keys) if len(keys) <= MAX_CATEGORIES else None
    elif kind == ColumnKind.NUMERIC.value and len(present) and pdt.is_numeric_dtype(dtype):
        minimum, maximum = float(present.min()), float(present.max())
    return InputColumn(name, kind, str(dtype), bool(len(present) < len(values)),
                       categories, minimum, maximum)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _abbreviate(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names) - limit} more)"
