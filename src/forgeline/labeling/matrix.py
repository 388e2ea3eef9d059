"""The label matrix: the one shape every labelling source is brought to.

``L`` has one row per data row and one column per source (a labelling function, the LLM,
gold/human labels); a cell holds a class index into ``classes`` or ``ABSTAIN`` (-1).
Each column is named and versioned (:class:`Source`): a function by the sha256 of its
source text, the LLM by model name and prompt hash, so that a labelled data set's lineage
says exactly which sources produced it. The matrix is immutable: adding a column returns
a new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forgeline.errors import InvalidInput

__all__ = ["ABSTAIN", "LabelMatrix", "Source", "encode_labels"]

ABSTAIN = -1


@dataclass(frozen=True, slots=True)
class Source:
    """One column of the label matrix: its name, its version and its kind.

    ``kind`` is ``"function"`` (version: sha256 of its source), ``"llm"`` (version: model
    name and prompt hash) or ``"gold"`` (human labels).
    """

    name: str
    version: str
    kind: str = "function"


def encode_labels(values: Iterable[object], classes: Sequence[str]) -> tuple[np.ndarray, int]:
    """Class indices for ``values`` (None/NaN -> ABSTAIN) and the count of values that are
    not one of ``classes`` (also ABSTAIN). Values are compared as strings, so a function
    may return ``1`` for the class ``"1"``."""
    index = {str(c): i for i, c in enumerate(classes)}
    codes: list[int] = []
    unknown = 0
    for value in values:
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            codes.append(ABSTAIN)
            continue
        code = index.get(str(value))
        if code is None:
            unknown += 1
            codes.append(ABSTAIN)
        else:
            codes.append(code)
    return np.asarray(codes, dtype=np.int64), unknown


@dataclass(frozen=True)
class LabelMatrix:
    """Votes of every source for every row (``L``: rows x sources, -1 = abstain)."""

    L: np.ndarray
    classes: tuple[str, ...]
    sources: tuple[Source, ...]
    index: pd.Index

    def __post_init__(self) -> None:
        if self.L.ndim != 2 or self.L.shape != (len(self.index), len(self.sources)):
            raise InvalidInput(
                f"A label matrix of shape {self.L.shape} does not match {len(self.index)} rows "
                f"and {len(self.sources)} sources.")
        if len(self.classes) < 2:
            raise InvalidInput(f"Labelling needs at least two classes, got {list(self.classes)}.",
                               hint="Name every class the labels can take.")
        if self.L.size and (self.L.min() < ABSTAIN or self.L.max() >= len(self.classes)):
            raise InvalidInput("A label matrix holds a value that is not a class index or -1.")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise InvalidInput(f"Two labelling sources share a name: {names}.",
                               hint="Give every source its own name.")

    @classmethod
    def empty(cls, index: Sequence[object] | pd.Index, classes: Sequence[str]) -> LabelMatrix:
        """A matrix with rows and no sources yet."""
        idx = index if isinstance(index, pd.Index) else pd.Index(index)
        return cls(np.empty((len(idx), 0), dtype=np.int64), tuple(str(c) for c in classes), (),
                   idx)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def with_column(self, source: Source, codes: np.ndarray) -> LabelMatrix:
        """A new matrix with one more source (``codes``: class indices or ABSTAIN)."""
        column = np.asarray(codes, dtype=np.int64).reshape(-1, 1)
        return LabelMatrix(np.hstack([self.L, column]), self.classes, (*self.sources, source),
                           self.index)

    def with_labels(self, source: Source, labels: Iterable[object]) -> tuple[LabelMatrix, int]:
        """A new matrix with one more source given as class names; also the count of labels
        that are not one of the classes (kept as abstains)."""
        codes, unknown = encode_labels(labels, self.classes)
        return self.with_column(source, codes), unknown

    def column(self, name: str) -> np.ndarray:
        for i, s in enumerate(self.sources):
            if s.name == name:
                return self.L[:, i]
        raise InvalidInput(f"No labelling source named {name!r}.",
                           hint=f"Sources: {', '.join(s.name for s in self.sources)}.")

    def votes(self) -> np.ndarray:
        """Per row and class, how many sources voted for it (rows x classes)."""
        counts = np.zeros((len(self.index), self.n_classes))
        for j in range(self.L.shape[1]):
            voted = self.L[:, j] != ABSTAIN
            np.add.at(counts, (np.flatnonzero(voted), self.L[voted, j]), 1)
        return counts

    def disagreement(self) -> np.ndarray:
        """Per row, the normalised entropy of its votes: 0 when all voting sources agree (or
        fewer than two voted), 1 when they split evenly over every class."""
        counts = self.votes()
        total = counts.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(total > 0, counts / np.maximum(total, 1), 0.0)
            ent = -(np.where(p > 0, p * np.log(p), 0.0)).sum(axis=1)
        return ent / np.log(self.n_classes)

    def summary(self) -> pd.DataFrame:
        """Per source: coverage (share of rows it labels), overlap (share of rows it labels
        that another source labels too) and conflict (share where another source disagrees)."""
        voted = self.L != ABSTAIN
        rows = []
        for j, s in enumerate(self.sources):
            mine = voted[:, j]
            others = np.delete(voted, j, axis=1)
            other_l = np.delete(self.L, j, axis=1)
            overlap = mine & others.any(axis=1)
            conflict = mine & ((other_l != self.L[:, [j]]) & others).any(axis=1)
            n = max(len(mine), 1)
            rows.append({"source": s.name, "kind": s.kind, "version": s.version,
                         "coverage": mine.sum() / n, "overlap": overlap.sum() / n,
                         "conflict": conflict.sum() / n})
        return pd.DataFrame(rows, columns=["source", "kind", "version", "coverage", "overlap",
                                           "conflict"])
