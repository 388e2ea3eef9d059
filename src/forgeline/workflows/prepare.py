"""The rows a training run learns and is tested on, rebuilt the same way every time.

``fl.train`` calls :func:`prepare_rows` to turn its loaded (and privacy-checked) table into
the schema, the task and the train/test split; ``forgeline optimize`` calls it again on the
same file with the same spec to rebuild the very split its teacher was evaluated on (the
split is a function of the data, the spec and the seed alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forgeline.data.inference import infer_schema, infer_task
from forgeline.data.leakage import copy_columns, copy_groups
from forgeline.data.schema import ColumnKind, Schema
from forgeline.data.split import choose_strategy, split_frame
from forgeline.data.validation import validate
from forgeline.entities import SplitStrategy, Task
from forgeline.training.mitigation import check_task
from forgeline.training.spec import TrainSpec
from forgeline.workflows.privacy import PrivacyPlan, apply_privacy

__all__ = ["PreparedRows", "prepare_rows"]


@dataclass(frozen=True)
class PreparedRows:
    frame: pd.DataFrame  # after the privacy policy, rows with a target only
    schema: Schema
    task: Task
    report: object  # the validation report (data.validation)
    strategy: SplitStrategy
    copies: np.ndarray | None  # per row of frame, its group of identical rows (-1: none)
    train_frame: pd.DataFrame
    test_frame: pd.DataFrame


def _overrides(spec: TrainSpec) -> dict[str, ColumnKind]:
    f = spec.features
    pairs = [(f.numeric, ColumnKind.NUMERIC), (f.categorical, ColumnKind.CATEGORICAL),
             (f.boolean, ColumnKind.BOOLEAN), (f.datetime, ColumnKind.DATETIME),
             (f.text, ColumnKind.TEXT), (f.embeddings, ColumnKind.TEXT), (f.id, ColumnKind.ID)]
    return {name: kind for names, kind in pairs for name in names}


def prepare_rows(spec: TrainSpec, frame: pd.DataFrame, privacy: PrivacyPlan,
                 key: bytes) -> PreparedRows:
    """Apply the privacy policy (``key`` hashes under ``hash``), infer the schema and the
    task, validate, and split off the test rows as the spec says.

    Raises:
        PersonalDataFound: policy ``fail`` and a personal column was found.
        InvalidSpec: fairness settings that do not fit the task.
    """
    d = spec.data
    frame = apply_privacy(frame, privacy, key)
    dropped = tuple(c for c in privacy.drop if c in frame.columns and c not in d.drop)
    schema = infer_schema(frame, d.target, _overrides(spec), (*d.drop, *dropped))
    task = spec.task or infer_task(frame[d.target])
    check_task(spec.fairness, task)
    report = validate(frame, schema, task)
    frame = frame[frame[d.target].notna()]
    strategy = choose_strategy(spec.split.strategy, task, d.time_column, d.group_column)
    copies = (copy_groups(frame, copy_columns(schema, frame)) if spec.split.dedupe
              and strategy in (SplitStrategy.RANDOM, SplitStrategy.STRATIFIED) else None)
    train_index, test_index = split_frame(
        frame, strategy, spec.split.test_size, spec.seed, target=d.target,
        task=task, time_column=d.time_column, group_column=d.group_column,
        allow_random_on_time=spec.split.allow_random_on_time, copies=copies)
    return PreparedRows(frame, schema, task, report, strategy, copies,
                        frame.loc[train_index], frame.loc[test_index])
