"""Labelling functions: plain Python functions in a file, applied to every row of a frame.

The convention (no import of Forgeline needed in the user's file): every function **named
``lf_...`` and defined in that file** is a labelling function. It takes one argument, the
row as a ``dict`` of column name to value, and returns a class name (compared as a string,
so ``1`` matches the class ``"1"``) or ``None`` to abstain. Functions imported into the
file (``from x import lf_y``) are not picked up: only what the file defines is versioned
by it. Each function is versioned by the sha256 of its own source text
(``inspect.getsource``), so editing one function changes only its version.

A function that raises on a row abstains on that row; the rows affected are counted per
function with the first error's message, and the run goes on. A returned label that is not
one of the classes is counted the same way and treated as an abstain.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forgeline.errors import InvalidInput, NotFound
from forgeline.labeling.matrix import ABSTAIN, LabelMatrix, Source

__all__ = ["PREFIX", "Applied", "LabelingFunction", "SourceStats", "apply_functions",
           "load_functions"]

PREFIX = "lf_"


@dataclass(frozen=True, slots=True)
class LabelingFunction:
    """A labelling function with its name and version (sha256 of its source)."""

    name: str
    version: str
    fn: Callable[[dict[str, object]], object]

    @property
    def source(self) -> Source:
        return Source(self.name, self.version, "function")


@dataclass(slots=True)
class SourceStats:
    """What went wrong for one function over a frame: rows where it raised (and the first
    error), rows where it returned a label that is not a class (and the first such label)."""

    errors: int = 0
    first_error: str | None = None
    unknown_labels: int = 0
    first_unknown: str | None = None


@dataclass(frozen=True)
class Applied:
    """The label matrix of a set of functions over a frame, each function's stats, and
    which rows each function raised on (``error_rows``: rows x functions)."""

    matrix: LabelMatrix
    stats: dict[str, SourceStats]
    error_rows: np.ndarray

    @property
    def rows_with_errors(self) -> int:
        """Rows on which at least one function raised."""
        return int(self.error_rows.any(axis=1).sum()) if self.error_rows.size else 0


def _one_line(e: BaseException) -> str:
    """An exception as one short line: its type and its message's first line."""
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:200] if lines else ''}".rstrip(": ")


def _bad_file(path: Path, reason: str, hint: str | None = None) -> InvalidInput:
    return InvalidInput(f"Labelling-function file {path} {reason}.",
                        hint=hint or "Fix the file and run again.")


def load_functions(path: str | Path) -> list[LabelingFunction]:
    """The ``lf_*`` functions defined in the Python file ``path``, in file order.

    Raises:
        NotFound: the file does not exist.
        InvalidInput: the file does not import (syntax error, an exception at import), or
            defines no ``lf_*`` function, or one that does not take exactly one argument.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"Labelling-function file {path} does not exist.",
                       hint="Give the path of a .py file that defines lf_* functions.")
    # A fresh module name per load: loading an edited file again never sees the old one.
    name = f"forgeline_lf_{path.stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise _bad_file(path, "is not a Python file", "Give a .py file.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # inspect.getsource finds the file through sys.modules
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise _bad_file(path, f"has a syntax error at line {e.lineno}: {e.msg}") from e
    except Exception as e:  # the user's module code: any failure is theirs to fix
        raise _bad_file(path, f"fails on import: {_one_line(e)}") from e
    functions = []
    for attr, fn in vars(module).items():
        if not attr.startswith(PREFIX) or not inspect.isfunction(fn) or fn.__module__ != name:
            continue
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.default is inspect.Parameter.empty
                  and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if len(params) != 1:
            raise _bad_file(path, f"defines {attr}() with {len(params)} required arguments",
                            "A labelling function takes one argument: the row as a dict.")
        text = inspect.getsource(fn)
        functions.append(LabelingFunction(attr, hashlib.sha256(text.encode()).hexdigest(), fn))
    if not functions:
        raise _bad_file(path, f"defines no labelling function (no function named {PREFIX}*)",
                        f"Name each labelling function {PREFIX}something(row) and return a "
                        "class name or None.")
    return functions


def apply_functions(functions: Sequence[LabelingFunction], frame: pd.DataFrame,
                    classes: Sequence[str], *, matrix: LabelMatrix | None = None) -> Applied:
    """Every function on every row of ``frame``: the label matrix (added to ``matrix`` if
    given, which must have the frame's index) and per function what went wrong."""
    base = matrix if matrix is not None else LabelMatrix.empty(frame.index, classes)
    if len(base.index) != len(frame) or not base.index.equals(frame.index):
        raise InvalidInput("The label matrix and the frame have different rows.",
                           hint="Apply the functions to the frame the matrix was made for.")
    index = {str(c): i for i, c in enumerate(base.classes)}
    records = frame.to_dict("records")
    stats: dict[str, SourceStats] = {}
    errors = np.zeros((len(records), len(functions)), dtype=bool)
    for j, lf in enumerate(functions):
        st = SourceStats()
        codes = np.full(len(records), ABSTAIN, dtype=np.int64)
        for i, row in enumerate(records):
            try:
                value = lf.fn(row)
            except Exception as e:  # a user's function: one bad row never stops the run
                st.errors += 1
                errors[i, j] = True
                if st.first_error is None:
                    st.first_error = _one_line(e)
                continue
            if value is None or (isinstance(value, float) and np.isnan(value)):
                continue
            code = index.get(str(value))
            if code is None:
                st.unknown_labels += 1
                if st.first_unknown is None:
                    st.first_unknown = repr(value)[:80]
            else:
                codes[i] = code
        base = base.with_column(lf.source, codes)
        stats[lf.name] = st
    return Applied(base, stats, errors)
