"""``labels.json``: what a labelling run measured, as the report and ``--json`` show it.

The contract with the HTML report (``reports/labeling.py`` renders only this mapping):
plain floats, ``None`` for what is unknown, user text escaped by the renderer and cut to
:data:`TEXT_CHARS` here. Accuracies are on the gold (human) rows, which are never votes:
a source's on the gold rows it voted on, the label model's on the gold rows it labels at
its threshold, before gold overrides them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from forgeline.labeling.label_model import Labels
from forgeline.labeling.matrix import ABSTAIN, LabelMatrix

__all__ = ["THRESHOLDS", "agreement", "gold_codes", "kappa", "review_rows", "short",
           "source_rows", "suspect_rows", "threshold_rows"]

TEXT_CHARS = 200
SHOWN = 50  # suspects and review rows in the JSON
THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99)


def short(value: object, limit: int = TEXT_CHARS) -> str:
    """A user's text on one line, cut to ``limit`` characters."""
    text = " ".join(str(value).split()) if value is not None else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _float(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def gold_codes(gold: pd.Series | None, matrix: LabelMatrix) -> np.ndarray:
    """The gold class index of each row of ``matrix`` (ABSTAIN where there is none)."""
    codes = np.full(len(matrix.index), ABSTAIN, dtype=np.int64)
    if gold is None or gold.empty:
        return codes
    index = {c: i for i, c in enumerate(matrix.classes)}
    aligned = gold.reindex(matrix.index)
    for i, value in enumerate(aligned.tolist()):
        if value is not None and value is not pd.NA and str(value) in index:
            codes[i] = index[str(value)]
    return codes


def _accuracy(votes: np.ndarray, gold: np.ndarray) -> tuple[float | None, int]:
    both = (votes != ABSTAIN) & (gold != ABSTAIN)
    n = int(both.sum())
    return (float((votes[both] == gold[both]).mean()) if n else None), n


def source_rows(matrix: LabelMatrix, gold: np.ndarray,
                errors: Mapping[str, tuple[int, Sequence[str]]]) -> list[dict[str, Any]]:
    """Per source: kind, version, coverage, overlap, conflict, accuracy on gold, errors."""
    table = matrix.summary()
    rows = []
    for j, source in enumerate(matrix.sources):
        stats = table.iloc[j]
        accuracy, votes = _accuracy(matrix.L[:, j], gold)
        count, examples = errors.get(source.name, (0, ()))
        rows.append({"name": source.name, "kind": source.kind, "version": source.version,
                     "coverage": float(stats["coverage"]), "overlap": float(stats["overlap"]),
                     "conflict": float(stats["conflict"]), "accuracy": accuracy,
                     "gold_votes": votes, "errors": int(count),
                     "error_examples": [short(e) for e in list(examples)[:3]]})
    return rows


def agreement(matrix: LabelMatrix) -> dict[str, Any]:
    """Pairwise: the share of rows where both sources vote on which they agree."""
    L = matrix.L
    k = L.shape[1]
    grid: list[list[float | None]] = [[None] * k for _ in range(k)]
    for a in range(k):
        for b in range(k):
            both = (L[:, a] != ABSTAIN) & (L[:, b] != ABSTAIN)
            if both.any():
                grid[a][b] = float((L[both, a] == L[both, b]).mean())
    return {"sources": [s.name for s in matrix.sources], "matrix": grid}


def threshold_rows(raw: Labels, voted: np.ndarray, gold: np.ndarray) -> list[dict[str, Any]]:
    """Coverage (all rows) and accuracy (gold rows) of the model's labels at each threshold;
    ``raw`` is the label model's output without gold overriding anything."""
    confidence = raw.confidence.to_numpy()
    top = raw.probabilities.to_numpy().argmax(axis=1)
    out = []
    for t in THRESHOLDS:
        keep = voted & (confidence >= t)
        judged = keep & (gold != ABSTAIN)
        out.append({"threshold": t, "coverage": float(keep.mean()) if len(keep) else 0.0,
                    "accuracy": float((top[judged] == gold[judged]).mean())
                    if judged.any() else None})
    return out


def kappa(llm: np.ndarray, gold: np.ndarray) -> tuple[float | None, int]:
    """Cohen's kappa between the LLM's labels and the gold ones, on rows with both."""
    from sklearn.metrics import cohen_kappa_score

    both = (llm != ABSTAIN) & (gold != ABSTAIN)
    n = int(both.sum())
    if n < 2:
        return None, n
    with np.errstate(divide="ignore", invalid="ignore"):
        value = cohen_kappa_score(llm[both], gold[both])
    return _float(float(value)), n


def suspect_rows(table: pd.DataFrame | None, text: pd.Series) -> list[dict[str, Any]]:
    """The flagged rows, most suspect first; ``score`` is one minus the out-of-sample
    probability of the given label (1: surely wrong)."""
    if table is None:
        return []
    flagged = table[table["issue"]].head(SHOWN)
    return [{"id": str(i), "given": str(r["given"]), "suggested": str(r["suggested"]),
             "score": float(1.0 - r["quality"]), "text": short(text.get(i))}
            for i, r in flagged.iterrows()]


def review_rows(queue: pd.DataFrame | None, confidence: pd.Series, text: pd.Series
                ) -> list[dict[str, Any]]:
    """The head of the review queue: why each row is in it, the suggested label."""
    if queue is None:
        return []
    out = []
    for i, r in queue.head(SHOWN).iterrows():
        suggested, sure = r.get("suggested"), confidence.get(i)
        out.append({"id": str(i), "reason": str(r["reason"]),
                    "label": None if suggested is None or pd.isna(suggested) else str(suggested),
                    "confidence": 0.0 if sure is None or pd.isna(sure) else float(sure),
                    "text": short(text.get(i))})
    return out
