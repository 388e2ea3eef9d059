"""Model-agnostic Shapley values over the input columns, for models with no exact method.

``shap``'s Exact explainer (all coalitions, up to 12 columns) or Permutation explainer
(more columns) with an independent masker over background rows. Both are additive: a row's
values sum to its output minus the mean output over the background. The maskers take
numbers, and the input columns are of any type (categories, dates, texts), so each column
is masked by row position: a coalition is a matrix of row numbers into one table of the
background and the rows explained, and the model sees the real values those numbers name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["BACKGROUND_ROWS", "column_shapley"]

BACKGROUND_ROWS = 100  # rows of background every coalition is averaged over
_EXACT_UP_TO = 12  # columns; 2**12 coalitions per row


def column_shapley(output: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame,
                   background: pd.DataFrame, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Shapley values of ``output`` (rows -> rows x outputs) per column of ``X``.

    Returns:
        rows x outputs x columns values, and rows x outputs base values (the background's
        mean output).
    """
    import shap

    columns = list(X.columns)
    if len(background) > BACKGROUND_ROWS:
        background = background.sample(BACKGROUND_ROWS, random_state=seed)
    table = pd.concat([background[columns], X], ignore_index=True)
    cells = {c: table[c] for c in columns}

    def model(Z: np.ndarray) -> np.ndarray:
        index = np.asarray(Z, dtype=np.int64)
        frame = pd.DataFrame({c: cells[c].iloc[index[:, j]].to_numpy()
                              for j, c in enumerate(columns)})
        return output(frame.astype(table.dtypes.to_dict()))

    ids = np.arange(len(table))
    masker = shap.maskers.Independent(np.repeat(ids[:len(background), None], len(columns), 1),
                                      max_samples=len(background))
    rows = np.repeat(ids[len(background):, None], len(columns), 1)
    if len(columns) <= _EXACT_UP_TO:
        explainer: Any = shap.ExactExplainer(model, masker)
        result = explainer(rows, silent=True)
    else:
        explainer = shap.PermutationExplainer(model, masker, seed=seed)
        result = explainer(rows, max_evals=max(500, 2 * len(columns) + 1), silent=True)
    values = np.asarray(result.values, dtype=float)  # rows x columns x outputs
    base = np.asarray(result.base_values, dtype=float).reshape(len(X), -1)
    return values.reshape(len(X), len(columns), -1).transpose(0, 2, 1), base
