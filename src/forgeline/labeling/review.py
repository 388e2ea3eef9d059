"""The review queue: which rows a person should label next, and their answers read back.

Each row gets three scores in [0, 1]:

* ``uncertainty``: how far the label model's top probability is from certain (0 when
  it is 1, 1 when the classes are tied);
* ``disagreement``: the normalised entropy of the sources' votes;
* ``suspicion``: for a row confident learning flags as likely mislabelled, one minus the
  out-of-sample probability of its given label (0 for rows not flagged).

Its ``priority`` is the highest of the three, and ``reason`` names which. Rows already
labelled by a person (gold) never enter the queue. So that the queue is not a run of near
duplicates, the most urgent candidates (``pool`` times the queue's size) are clustered
(k-means over TF-IDF of the text column, or the standardised numeric columns) and taken
one at a time from the cluster whose next row is the most urgent once its priority is
halved for every row already taken from that cluster (each cluster in priority order):
near duplicates spread out, and a cluster of near-certain rows waits (a row 2^k times less
urgent, for k rows of a more urgent cluster). The diversity step of active-learning tools
such as Argilla and modAL's ranked batch sampling, in a simple form.

The queue is exported to CSV with an empty ``label`` column; :func:`read_review` reads a
filled-in file back as gold labels, validated whole before anything is returned: an
unknown row id, a label that is not a class, or one id given two labels is an error that
names the rows, and nothing is merged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from forgeline.errors import InvalidInput, NotFound
from forgeline.labeling.matrix import LabelMatrix
from forgeline.labeling.suspects import Suspects

if TYPE_CHECKING:
    from scipy import sparse

__all__ = ["LABEL", "merge_gold", "read_review", "review_queue", "write_review"]

LABEL = "label"  # the column a reviewer fills in
SCORES = ("uncertainty", "disagreement", "suspicion")
DECAY = 0.5  # a cluster's k-th row in the queue counts its priority times DECAY ** k


def _uncertainty(probabilities: pd.DataFrame) -> np.ndarray:
    k = probabilities.shape[1]
    top = probabilities.to_numpy().max(axis=1)
    return np.clip((1.0 - top) / (1.0 - 1.0 / k), 0.0, 1.0)


def _embedding(frame: pd.DataFrame, text: str | None) -> sparse.spmatrix | np.ndarray | None:
    if text is not None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(sublinear_tf=True, min_df=1).fit_transform(
            frame[text].fillna("").astype(str))
    numbers = frame.select_dtypes("number")
    if numbers.shape[1] == 0:
        return None
    values = numbers.to_numpy(dtype=float)
    values = np.where(np.isnan(values), np.nanmean(values, axis=0), values)
    return (values - values.mean(axis=0)) / np.where(values.std(axis=0) > 0,
                                                      values.std(axis=0), 1.0)


def _diverse(ids: pd.Index, priority: np.ndarray, cluster: np.ndarray, size: int,
             decay: float = DECAY) -> list[object]:
    """``size`` rows, one pick at a time: the next row (in priority order) of the cluster
    whose next row's priority, times ``decay`` for each row already taken from that
    cluster, is highest (ties: the cluster whose most urgent row came first). Near
    duplicates spread out over the queue, yet a row ``2 ** k`` times less urgent waits for
    ``k`` rows of a more urgent cluster: a cluster of near-certain rows does not take
    every n-th place, as it does in a plain round-robin."""
    queues: dict[int, list[int]] = {}
    for i in np.argsort(-priority, kind="stable"):  # clusters in order of their top row
        queues.setdefault(int(cluster[i]), []).append(int(i))
    lists = list(queues.values())
    taken = [0] * len(lists)
    out: list[object] = []
    while len(out) < size:
        weights = [priority[q[t]] * decay ** t if t < len(q) else -1.0
                   for q, t in zip(lists, taken, strict=True)]
        best = int(np.argmax(weights))
        if weights[best] < 0:
            break
        out.append(ids[lists[best][taken[best]]])
        taken[best] += 1
    return out


def review_queue(frame: pd.DataFrame, *, probabilities: pd.DataFrame | None = None,
                 matrix: LabelMatrix | None = None, suspects: Suspects | None = None,
                 gold: Sequence[object] | pd.Index | None = None, text: str | None = None,
                 size: int = 50, clusters: int = 8, pool: int = 4,
                 seed: int = 0) -> pd.DataFrame:
    """The ``size`` rows of ``frame`` to review next, in order.

    Args:
        frame: the data (index = row ids); its columns are shown to the reviewer.
        probabilities: the label model's class probabilities by row id.
        matrix: the sources' votes (for disagreement).
        suspects: label errors of already-labelled rows.
        gold: ids of rows a person has labelled already (left out).
        text: the text column to cluster on (default: numeric columns, if any).
        size: rows in the queue.
        clusters: clusters for diversity (1 = priority order only).
        pool: the candidates clustered are the ``pool * size`` most urgent rows.

    Returns a frame indexed by row id with ``rank``, ``priority``, ``reason``, the three
    scores, ``cluster``, ``suggested`` (the model's or confident learning's class, where
    known), the frame's columns and an empty ``label`` column.
    """
    if probabilities is None and matrix is None and suspects is None:
        raise InvalidInput("A review queue needs label-model probabilities, source votes or "
                           "label errors to rank rows by.")
    if size < 1 or clusters < 1 or pool < 1:
        raise InvalidInput("The review queue's size, clusters and pool must be at least 1.")
    if text is not None and text not in frame.columns:
        raise InvalidInput(f"The text column {text!r} is not in the data.",
                           hint=f"Columns: {', '.join(map(str, frame.columns))}.")
    scores = pd.DataFrame(0.0, index=frame.index, columns=list(SCORES))
    suggested = pd.Series(pd.NA, index=frame.index, dtype="string")
    if probabilities is not None:
        p = probabilities.reindex(frame.index)
        scores["uncertainty"] = np.nan_to_num(_uncertainty(p.fillna(1.0 / p.shape[1])))
        known = p.notna().all(axis=1)
        suggested[known] = p[known].idxmax(axis=1).astype(str)
    if matrix is not None:
        scores["disagreement"] = pd.Series(matrix.disagreement(), index=matrix.index).reindex(
            frame.index).fillna(0.0)
        voted = pd.Series(matrix.votes().sum(axis=1) > 0, index=matrix.index)
        suggested[~voted.reindex(frame.index, fill_value=False)] = pd.NA  # nothing to go on
    if suspects is not None:
        t = suspects.table
        flagged = t[t["issue"]]
        scores.loc[flagged.index.intersection(frame.index), "suspicion"] = (
            1.0 - flagged["quality"]).reindex(flagged.index.intersection(frame.index))
        suggested[flagged.index.intersection(frame.index)] = flagged["suggested"].astype(str)
    candidates = frame.index if gold is None else frame.index.difference(pd.Index(gold),
                                                                        sort=False)
    priority = scores.max(axis=1).reindex(candidates)
    top = priority.sort_values(ascending=False, kind="stable").index[: pool * size]
    cluster = np.zeros(len(top), dtype=np.int64)
    n_clusters = min(clusters, len(top))
    emb = _embedding(frame.loc[top], text) if n_clusters > 1 else None
    if emb is not None:
        from sklearn.cluster import KMeans

        cluster = KMeans(n_clusters=n_clusters, n_init=3, random_state=seed).fit_predict(emb)
    chosen = _diverse(top, priority.loc[top].to_numpy(), cluster, size)
    out = scores.loc[chosen].copy()
    out.insert(0, "rank", np.arange(1, len(chosen) + 1))
    out.insert(1, "priority", out[list(SCORES)].max(axis=1))
    out.insert(2, "reason", out[list(SCORES)].idxmax(axis=1))
    out["cluster"] = pd.Series(cluster, index=top).loc[chosen].to_numpy()
    out["suggested"] = suggested.loc[chosen]
    if suspects is not None:
        out["given"] = suspects.table["given"].reindex(chosen)
    # The reviewer sees the data's columns; "id" is the index column of the CSV already.
    out = out.join(frame.loc[chosen].drop(columns=[c for c in frame.columns if c in out
                                                   or c in (LABEL, "id")]))
    out[LABEL] = ""
    out.index.name = frame.index.name or "id"
    return out


def write_review(queue: pd.DataFrame, path: str | Path) -> Path:
    """The queue as a CSV file (row id first, ``label`` last) for a person to fill in."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    queue.rename_axis("id").to_csv(tmp, index=True)
    tmp.replace(path)
    return path


def read_review(path: str | Path, *, ids: pd.Index, classes: Sequence[str]) -> pd.Series:
    """The gold labels a person filled into a review CSV, by row id (rows left blank are
    skipped). Validated whole: nothing is returned unless every filled row is valid.

    Raises:
        NotFound: no such file.
        InvalidInput: no ``id`` or ``label`` column; ids that are not rows of the data;
            labels that are not classes; an id given two different labels.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"Review file {path} does not exist.",
                       hint="Export a review queue first, fill in its label column.")
    try:
        filled = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise InvalidInput(f"Review file {path} is not a readable CSV: {e}.") from e
    missing = [c for c in ("id", LABEL) if c not in filled.columns]
    if missing:
        raise InvalidInput(f"Review file {path} has no {' or '.join(missing)} column.",
                           hint="Keep the columns of the exported file; fill in 'label'.")
    filled = filled.assign(**{LABEL: filled[LABEL].str.strip()})
    filled = filled[filled[LABEL] != ""]
    by_text = {str(i): i for i in ids}
    unknown = sorted(set(filled["id"]) - set(by_text))
    if unknown:
        raise InvalidInput(f"Review file {path}: {len(unknown)} row ids are not in the data "
                           f"(e.g. {unknown[:3]}).",
                           hint="Do not edit the id column; nothing was imported.")
    bad = filled[~filled[LABEL].isin([str(c) for c in classes])]
    if len(bad):
        raise InvalidInput(f"Review file {path}: {len(bad)} labels are not one of the classes "
                           f"{list(classes)} (e.g. row {bad['id'].iloc[0]}: "
                           f"{bad[LABEL].iloc[0]!r}).",
                           hint="Correct those labels; nothing was imported.")
    per_id = filled.groupby("id")[LABEL].nunique()
    twice = per_id[per_id > 1]
    if len(twice):
        raise InvalidInput(f"Review file {path}: {len(twice)} row ids have two different "
                           f"labels (e.g. {twice.index[0]}).",
                           hint="Keep one label per row; nothing was imported.")
    filled = filled.drop_duplicates("id")
    index = pd.Index([by_text[i] for i in filled["id"]], name=ids.name)
    return pd.Series(filled[LABEL].to_numpy(), index=index, name="gold", dtype="string")


def merge_gold(existing: pd.Series | None, new: pd.Series) -> pd.Series:
    """Gold labels so far plus new ones; a new label for the same row replaces the old,
    every other existing label is kept."""
    if existing is None or existing.empty:
        return new.copy()
    kept = existing[~existing.index.isin(new.index)]
    return pd.concat([kept, new]).rename("gold")
