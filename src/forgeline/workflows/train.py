"""``fl.train(spec)``: from a data file and a spec to a tuned, checked, registered model.

load → version → infer schema and task → validate → split → leakage checks → tune (each
trial a child run) → choose the model family (the one-standard-error rule by default,
see selection.py) → refit on the whole training split → evaluate on the untouched test
split → package → register when the score passes the gate. Everything is recorded in one
run; a failure marks it FAILED and registers nothing. Everything from the refit on is in
train_finish.py.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgeline.config import hash_key
from forgeline.data.findings import Finding, Severity
from forgeline.data.io import load_table
from forgeline.data.leakage import check_leakage, enforce
from forgeline.data.schema import ColumnKind, Schema
from forgeline.data.versioning import dataset_version
from forgeline.engines import get_engine
from forgeline.entities import (
    Policy,
    Task,
)
from forgeline.errors import InvalidInput
from forgeline.metrics import get_metric
from forgeline.store.sql.engine import redacted
from forgeline.tracking.client import Client
from forgeline.tracking.run import ActiveRun
from forgeline.training.features import warm_embeddings, warm_llm
from forgeline.training.layout import (
    CHECKS_PATH,
    SELECTION_PATH,
    SPEC_PATH,
)
from forgeline.training.mitigation import (
    check_sensitive,
)
from forgeline.training.spec import TrainSpec, load_spec
from forgeline.training.spec_llm import check_llm_columns, llm_columns
from forgeline.training.trials import TrialOutcome
from forgeline.training.tuning import (
    EXPLAIN_SHARE,
    Deadline,
    ModelPlan,
    TuningResult,
    cv_folds,
    refit_scale,
    tune,
)
from forgeline.training.zoo import resolve_models
from forgeline.util.progress import Progress
from forgeline.workflows.label_lineage import label_lineage
from forgeline.workflows.prepare import prepare_rows
from forgeline.workflows.privacy import plan_privacy
from forgeline.workflows.train_finish import TrainResult, finding_record, finish, log_json

__all__ = ["TrainResult", "train"]


def _feature_columns(schema: Schema, spec: TrainSpec) -> tuple[str, ...]:
    """Every column but ids, the sensitive columns (sliced on, not learned from) and the
    group column (it says which rows belong together, not what a case is). The time column
    is a feature: its calendar parts and its position in time (the days elapsed), so a
    model can follow a trend and learn the most recent regime; time-split folds measure
    that honestly."""
    d = spec.data
    excluded = {*d.sensitive, d.group_column}
    features = tuple(c for c in schema.names() if c not in excluded
                     and schema[c].kind is not ColumnKind.ID)
    if not features:
        raise InvalidInput("No feature columns are left to learn from.",
                           hint="Check data.drop, data.sensitive and the id columns.")
    return features


def _imbalanced(task: Task, y: pd.Series) -> bool:
    """Class weights are worth trying: the rarest class is under a quarter of the most
    common (the search then keeps them only where the metric says they help)."""
    if task is Task.REGRESSION:
        return False
    counts = y.value_counts()
    return bool(counts.min() < 0.25 * counts.max())


def _kept_together(copies: np.ndarray | None) -> list[Finding]:
    """Say how many groups of copies the split and the folds kept together."""
    if copies is None or not (copies >= 0).any():
        return []
    groups, rows = int(copies.max()) + 1, int((copies >= 0).sum())
    return [Finding("copies_kept_together", Severity.INFO,
                    f"{groups} groups of identical rows ({rows} rows) were each kept on one "
                    "side of the split and in one cross-validation fold, so no test row is a "
                    "copy of a training row (split.dedupe: false turns this off).", (),
                    {"groups": groups, "rows": rows})]


def _log_trial(client: Client, parent: ActiveRun, experiment: str, outcome: TrialOutcome,
               metric: str) -> None:
    """One child run per trial, under the training run."""
    with client.start_run(experiment, name=f"trial-{outcome.number}",
                                 parent_run_id=parent.run_id,
                                 tags={"forgeline.trial.state": outcome.state,
                                       "forgeline.trial.model": outcome.model}) as child:
        child.log_params({"model": outcome.model, **outcome.params})
        for fold, score in enumerate(outcome.fold_scores):
            child.log_metric(f"cv_{metric}_fold", score, step=fold)
        if outcome.score is not None:
            child.log_metric(f"cv_{metric}", outcome.score)
        child.log_metric("seconds", outcome.seconds)
        if outcome.error:
            child.set_tag("forgeline.trial.error", outcome.error[:500])


def train(spec: str | Path | dict[str, Any] | TrainSpec, overrides: Sequence[str] = (), *,
          client: Client | None = None, progress: Progress | None = None,
          parent_run_id: str | None = None, started_at: float | None = None) -> TrainResult:
    """Train, evaluate and (when it passes) register a model described by ``spec``.

    Args:
        spec: a spec file, a dict or a :class:`~forgeline.training.spec.TrainSpec`.
        overrides: ``key=value`` changes to the spec (``tuning.trials=5``).
        client: the store to record in; ``Client()`` by default.
        progress: told what is happening (loading, each tuning trial, the model chosen);
            logs through :mod:`logging` by default.
        parent_run_id: makes the training run a child (e.g. of a retraining cycle).
        started_at: when the whole-run budget (``tuning.time_budget_s``) started, as
            ``time.time()``; now by default (the CLI passes its process's start).
    """
    started_at = time.time() if started_at is None else started_at
    spec = load_spec(spec, tuple(overrides))
    client = client or Client()
    progress = progress or Progress()
    t = spec.tuning
    engine = get_engine(t.engine, t.n_jobs, address=t.ray_address)
    if t.engine != "local":
        progress.status(f"Joining the {t.engine} cluster")
        engine.start()  # a bad address fails here, before a run is recorded
        progress.done()
    d = spec.data
    progress.status("Loading data")
    frame = load_table(d.path)
    check_llm_columns(spec.features.llm, list(frame.columns), target=d.target, drop=d.drop,
                      source=d.path.name)
    progress.done()
    dataset = dataset_version(frame, d.path.stem, str(d.path))
    lineage = label_lineage(client, dataset.digest)  # data written by `forgeline label`
    if lineage:
        spec = _without_label_confidence(spec, frame, progress)
        d = spec.data
    with client.start_run(spec.name, name="train", tags={"forgeline.kind": "train"},
                          parent_run_id=parent_run_id) as run:
        log_json(run, spec.model_dump(mode="json", by_alias=True), SPEC_PATH)
        run.log_dataset(dataset, "source")
        run.set_tags(lineage)
        check_sensitive(frame, d.sensitive)
        privacy = plan_privacy(frame, spec.privacy, d.target, spec.seed)
        if privacy.policy == "fail" and privacy.columns:
            log_json(run, {"findings": [finding_record(f) for f in privacy.findings]},
                      CHECKS_PATH)
        rows = prepare_rows(spec, frame, privacy, hash_key(client.settings)
                            if privacy.policy == "hash" and privacy.columns else b"")
        frame, schema, task, report = rows.frame, rows.schema, rows.task, rows.report
        strategy, copies = rows.strategy, rows.copies
        train_frame, test_frame = rows.train_frame, rows.test_frame
        train_index = train_frame.index
        policy = spec.leakage
        if spec.split.allow_random_on_time and policy.time_travel is Policy.FAIL:
            # The user asked for a random split of time-ordered data: report, don't refuse.
            policy = policy.model_copy(update={"time_travel": Policy.WARN})
        findings = [*report.findings, *privacy.findings, *_kept_together(copies)]
        findings += check_leakage(
            train_frame, test_frame, schema, task, policy, time_column=d.time_column,
            group_column=d.group_column, seed=spec.seed)
        log_json(run, {"validation": report.to_dict(),
                        "findings": [finding_record(f) for f in findings]}, CHECKS_PATH)
        enforce(findings)
        for part, rows in (("train", train_frame), ("test", test_frame)):
            run.log_dataset(dataset_version(rows, f"{d.path.stem}-{part}", str(d.path)), part)

        llm = llm_columns(spec.features.llm, spec.llm)
        features = _feature_columns(schema, spec)
        features += tuple(c for c, _ in llm if c not in features)  # an id-like text too
        X, y = train_frame[list(features)], train_frame[d.target]
        plan = ModelPlan(task, schema, features, get_metric(spec.metric, task).name,
                         spec.seed, _imbalanced(task, y), spec.features.encoding,
                         spec.features.max_onehot, device=spec.device,
                         embeddings=spec.features.embeddings,
                         embedding_model=spec.features.embedding_model,
                         tfidf_too=tuple(c for c in spec.features.text
                                         if c in spec.features.embeddings), llm=llm)
        kinds = resolve_models(spec.models, task, spec.device)
        run.log_params({"task": task.value, "metric": plan.metric, "rows_train": len(X),
                        "rows_test": len(test_frame), "features": len(features),
                        "imbalanced": plan.imbalanced})
        folds = cv_folds(task, y, spec.tuning.cv_folds, spec.seed, strategy=strategy,
                         groups=train_frame[d.group_column] if d.group_column else None,
                         times=train_frame[d.time_column] if d.time_column else None,
                         copies=None if copies is None
                         else copies[frame.index.get_indexer(train_index)])
        embedded = [c for c in spec.features.embeddings if c in features]
        if embedded:  # once, with a progress bar; every fold and trial then reads the cache
            warm_embeddings(frame, embedded, spec.features.embedding_model, progress)
        if llm:  # every question about every text once; the trials then read the cache
            run.log_params({"llm.model": spec.llm.model, "llm.mode": spec.llm.mode,
                            "llm.features": ", ".join(q.feature for q in spec.features.llm)})
            asked = warm_llm(frame, llm, progress)
            run.log_metrics(asked)
            if asked["llm_invalid"]:
                progress.note(f"{asked['llm_invalid']:.0f} of {asked['llm_answers']:.0f} LLM "
                              "answers named none of the allowed answers: missing values.")
        started = time.monotonic()
        budget = spec.tuning.time_budget_s
        timeout = spec.tuning.timeout_s
        deadline = Deadline(fixed=None if timeout is None else time.time() + timeout,
                            run_end=None if budget is None else started_at + budget,
                            explain_s=0.0 if budget is None else EXPLAIN_SHARE * budget,
                            refit_scale=refit_scale(folds, len(X)))
        progress.task("tuning", spec.tuning.trials, "trials")
        pruned = 0

        def on_trial(outcome: TrialOutcome, best: TrialOutcome | None) -> None:
            nonlocal pruned
            _log_trial(client, run, spec.name, outcome, plan.metric)
            pruned += outcome.state == "pruned"
            text = (f"best {plan.metric} {best.score:.4f} ({best.model})"
                    if best is not None and best.score is not None
                    else "no trial finished yet")
            end = deadline.at(best)
            if end is not None:  # the time the search has left, within the budget
                text += f", {max(0.0, end - time.time()):.0f} s left to search"
            progress.advance(1, text + (f", {pruned} pruned" if pruned else ""))

        storage = client.store.study_storage()
        if storage is not None:
            run.set_tags({"forgeline.tuning.study": run.run_id,
                          "forgeline.tuning.storage": redacted(storage)})
        try:
            tuned = tune(plan, kinds, X, y, folds, spec.tuning, engine, on_trial,
                         deadline=deadline, storage=storage, study_name=run.run_id)
        finally:
            progress.done()
        run.log_metric("tuning_seconds", time.monotonic() - started)
        _log_selection(run, progress, tuned, plan.metric)
        return finish(spec, client, run, progress, plan, tuned, train_frame, test_frame,
                       schema, dataset, report, findings, deadline.run_end, privacy)


def _without_label_confidence(spec: TrainSpec, frame: pd.DataFrame, progress: Progress
                              ) -> TrainSpec:
    """A labelled table's ``<target>_confidence`` says how sure the label model was of the
    target: not known when predicting, so never a feature."""
    column = f"{spec.data.target}_confidence"
    if column not in frame.columns or column in spec.data.drop:
        return spec
    progress.note(f"Not learning from {column}: the label model's confidence in the target, "
                  "unknown when predicting.")
    return spec.model_copy(update={"data": spec.data.model_copy(
        update={"drop": (*spec.data.drop, column)})})


def _log_selection(run: ActiveRun, progress: Progress, tuned: TuningResult, metric: str
                   ) -> None:
    """Record which family won by raw CV score, which was chosen, and why."""
    selection = tuned.selection
    chosen = next((c for c in selection.candidates if c.trial == selection.chosen.number),
                  None)
    run.log_params({"select": selection.rule})
    run.set_tags({"forgeline.selection.rule": selection.rule,
                  "forgeline.selection.chosen": selection.chosen.model,
                  "forgeline.selection.chosen_trial": str(selection.chosen.number),
                  "forgeline.selection.best_by_score": selection.best.model,
                  "forgeline.selection.best_trial": str(selection.best.number),
                  "forgeline.selection.reason": selection.reason[:500]})
    if chosen is not None:
        run.log_metric(f"cv_{metric}_se", chosen.se)
    log_json(run, selection.to_dict(), SELECTION_PATH)
    progress.note(f"Chose {selection.chosen.model} (trial {selection.chosen.number}): "
                  f"{selection.reason}.")

