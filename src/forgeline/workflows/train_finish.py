"""The second half of ``fl.train``: from the chosen model family to a registered model.

refit the chosen trial on the whole training split → evaluate it on the untouched test
split (per-slice metrics, fairness per sensitive column, the spec's fairness limits and a
mitigated candidate when one fails) → log the run's metrics → write the model package
(signature, profile, card, privacy record), the HTML report and the card → register it when
the test score passes the spec's gate. :func:`finish` is called by
:func:`forgeline.workflows.train.train` inside its run; the helpers that record JSON
artifacts and findings are shared with it.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.dummy import DummyClassifier, DummyRegressor

from forgeline.config import hash_key
from forgeline.data.findings import Finding
from forgeline.data.profile import build_profile, reference_extras
from forgeline.data.schema import Schema
from forgeline.entities import GIT_COMMIT, GIT_DIRTY, Evaluation, ModelVersion, Task
from forgeline.metrics import METRICS
from forgeline.packaging.attributions import (
    EXPLAIN_SECONDS,
    attribution_record,
    explain_or_note,
)
from forgeline.packaging.package import ATTRIBUTIONS_FILE, PRIVACY_FILE, save_package
from forgeline.packaging.signature import Signature
from forgeline.reports import render_card, render_report
from forgeline.tracking.client import Client
from forgeline.tracking.run import ActiveRun
from forgeline.training.evaluate import evaluate
from forgeline.training.layout import (
    ATTRIBUTIONS_PATH,
    EVALUATION_PATH,
    MODEL_PATH,
    REPORT_PATH,
    report_path,
)
from forgeline.training.mitigation import check_fairness, fairness_metrics, fairness_summary
from forgeline.training.spec import TrainSpec
from forgeline.training.trials import TrialOutcome
from forgeline.training.tuning import PACKAGING_S, ModelPlan, TuningResult, score_model
from forgeline.util.progress import Progress
from forgeline.workflows.privacy import PrivacyPlan, hash_columns, scrub

__all__ = ["TrainResult", "finding_record", "finish", "log_json"]


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    task: Task
    metric: str
    score: float  # on the test split
    cv_score: float
    model: str
    params: dict[str, Any]
    model_version: ModelVersion | None
    registered_reason: str  # why it was, or was not, registered
    report: Path  # a local copy of the HTML report
    # how the model family was chosen: rule, chosen, best_by_score, reason, candidates
    selection: dict[str, Any] = field(default_factory=dict)
    # with a time column: the score on the newest quarter of the test rows
    recent_score: float | None = None
    # the spec's fairness limits in one line (met or broken, the mitigated candidate)
    fairness: str | None = None


def _passes(spec: TrainSpec, evaluation: Evaluation, greater_is_better: bool) -> tuple[bool, str]:
    gate = spec.registration
    if not gate.enabled:
        return False, "registration is disabled in the spec"
    if gate.min_score is None:
        return True, "no minimum score set"
    ok = (evaluation.score >= gate.min_score if greater_is_better
          else evaluation.score <= gate.min_score)
    relation = ">=" if greater_is_better else "<="
    verdict = "passes" if ok else "fails"
    return ok, (f"test {evaluation.metric} {evaluation.score:.4f} {verdict} "
                f"{relation} {gate.min_score}")


def _recent_summary(evaluation: Evaluation) -> dict[str, str]:
    """The newest test rows' score, for the report and the card (with a time column)."""
    recent = evaluation.recent
    if not recent:
        return {}
    score = recent["metrics"].get(evaluation.metric)
    key = f"test {evaluation.metric}, newest {recent['share']:.0%} ({recent['column']})"
    return {key: f"{score:.4f} on {recent['rows']} rows from {recent['from']} to "
                 f"{recent['to']}" if score is not None else "not defined on those rows"}


def finish(spec: TrainSpec, client: Client, run: ActiveRun, progress: Progress,
            plan: ModelPlan, tuned: TuningResult, train_frame: pd.DataFrame,
            test_frame: pd.DataFrame, schema: Schema, dataset: Any, report: Any,
            findings: list[Finding], run_end: float | None, privacy: PrivacyPlan
            ) -> TrainResult:
    """Refit ``tuned``'s chosen trial, evaluate, package, report and (when it passes the
    gate) register it, all in ``run``; ``run_end`` bounds the time left for explanations
    (the whole-run budget's end, as ``time.time()``, or None)."""
    d, best, features = spec.data, tuned.chosen, list(plan.features)
    progress.status(f"Refitting {best.model} on the training split and evaluating")
    model = plan.pipeline(best.model, best.params).fit(train_frame[features],
                                                        train_frame[d.target])
    sensitive = test_frame[list(d.sensitive)] if d.sensitive else None
    if sensitive is not None and privacy.policy != "hash":  # (hash: tokens already)
        # a personal column sliced on: its slices are named by keyed hashes, not values
        sensitive = hash_columns(sensitive, privacy.columns, hash_key(client.settings))
    evaluation = evaluate(model, test_frame[features], test_frame[d.target], plan.task,
                          metric=plan.metric, sensitive=sensitive, seed=spec.seed,
                          times=test_frame[d.time_column] if d.time_column else None,
                          importance_seconds=None if run_end is None
                          else max(0.0, run_end - time.time() - PACKAGING_S),
                          fairness_resamples=spec.fairness.resamples)
    if spec.fairness.limits:
        progress.status("Checking the fairness limits")
        evaluation = replace(evaluation, fairness_limits=check_fairness(
            spec.fairness, model, evaluation,
            *[(part[features], part[d.target], part[list(d.sensitive)])
              for part in (train_frame, test_frame)], seed=spec.seed))
    progress.status("Explaining the model on the test split")
    explained, unexplained = explain_or_note(
        model, test_frame[features], background=train_frame[features], seed=spec.seed,
        seconds=EXPLAIN_SECONDS if run_end is None
        else min(EXPLAIN_SECONDS, max(1.0, run_end - time.time() - PACKAGING_S)))
    record = None if explained is None else attribution_record(explained)
    attributions = {} if record is None else {ATTRIBUTIONS_FILE: json.dumps(record, indent=2)}
    progress.status("Writing the model package and the report")
    run.log_params({"model": best.model, **{f"model.{k}": v for k, v in best.params.items()}})
    run.log_metrics({f"test_{k}": v for k, v in evaluation.metrics.items()})
    if evaluation.recent:  # the newest quarter of the test rows, by the time column
        run.log_metrics({f"test_newest_{k}": v for k, v in evaluation.recent["metrics"].items()
                         if v is not None})
    run.log_metric(f"cv_{plan.metric}", best.score or float("nan"))
    run.log_metrics(fairness_metrics(evaluation))
    tags = client.get_run(run.run_id).tags
    limits_line = fairness_summary(evaluation)
    summary = {"model name": spec.name, "run id": run.run_id, "task": plan.task.value,
               "model": best.model, f"test {plan.metric}": round(evaluation.score, 4),
               f"cv {plan.metric}": round(best.score or float("nan"), 4),
               **_recent_summary(evaluation), **limits_line,
               "model selection": tuned.selection.reason, **_llm_summary(spec),
               "dataset": f"{dataset.name} ({dataset.digest[:12]})",
               "rows (train / test)": f"{len(train_frame)} / {len(test_frame)}",
               "time": datetime.now(UTC).isoformat(timespec="seconds"),
               "code version": tags.get(GIT_COMMIT, "not in a git repository")
               + (" (uncommitted changes)" if tags.get(GIT_DIRTY) == "true" else "")}
    data = {"name": dataset.name, "digest": dataset.digest,
            **{k: v for k, v in report.to_dict().items() if k != "findings"}}
    if plan.task is not Task.REGRESSION:  # the report wants rows per class, not shares
        labelled = pd.concat([train_frame[d.target], test_frame[d.target]])
        data["class_balance"] = {str(k): int(v) for k, v in labelled.value_counts().items()}
    baseline = _baseline(plan, train_frame[features], train_frame[d.target],
                         test_frame[features], test_frame[d.target])
    private = privacy.record(features, d.sensitive)
    card = render_card(name=spec.name, version=None, evaluation=evaluation, summary=summary,
                       data=data, findings=findings, privacy=private, llm=_llm_card(spec))
    classes = getattr(model, "classes_", None)
    signature = Signature.from_frame(train_frame[features], schema, plan.task.value,
                                     None if classes is None else list(classes))
    profile = build_profile(train_frame[[*features, d.target]], schema)
    # What monitoring compares production with beyond the columns: the test predictions'
    # distribution, a PCA reference for multivariate drift, and the event-time column
    # (not a feature) that its time windows follow.
    times = train_frame[d.time_column] if d.time_column in train_frame.columns else None
    profile.update(reference_extras(model, train_frame[features], test_frame[features], schema,
                                    plan.task.value, classes, y_test=test_frame[d.target],
                                    profile=profile, seed=spec.seed, times=times,
                                    personal=privacy.columns))
    signature = scrub(signature, profile, privacy.columns)
    with tempfile.TemporaryDirectory() as tmp:
        package = save_package(Path(tmp) / "model", model, signature, profile=profile,
                               metrics=evaluation.to_dict()["metrics"], card=card,
                               extra_files={PRIVACY_FILE: json.dumps(private, indent=2),
                                            **attributions})
        run.log_artifact(package, MODEL_PATH)
        html = render_report(Path(tmp) / "report.html", title=f"{spec.name}: training report",
                             evaluation=evaluation, summary=summary, data=data,
                             findings=findings, trials=[_trial(t) for t in tuned.trials],
                             baseline=baseline, explanation=explained,
                             explanation_note=unexplained, personal=tuple(privacy.columns))
        run.log_artifact(html, str(Path(REPORT_PATH).parent))
        (Path(tmp) / "card.md").write_text(card)
        run.log_artifact(Path(tmp) / "card.md", str(Path(REPORT_PATH).parent))
    log_json(run, evaluation.to_dict(), EVALUATION_PATH)
    if record is not None:
        log_json(run, record, ATTRIBUTIONS_PATH)
    ok, reason = _passes(spec, evaluation, plan.scorer.greater_is_better)
    version = None
    run.flush()
    if ok:
        alias = spec.registration.alias
        version = client.register_model(spec.name, run.run_id, MODEL_PATH,
                                        description=f"{best.model}, test {plan.metric} "
                                                    f"{evaluation.score:.4f}",
                                        aliases=[alias] if alias else [])
    run.set_tags({"forgeline.registered": str(version.ref if version else "no"),
                  "forgeline.registered.reason": reason})
    local = report_path(client, run.run_id)
    progress.done()
    return TrainResult(run.run_id, plan.task, plan.metric, evaluation.score,
                       best.score or float("nan"), best.model, best.params, version, reason,
                       local, tuned.selection.to_dict(),
                       (evaluation.recent or {}).get("metrics", {}).get(plan.metric),
                       limits_line.get("fairness limits"))


def _llm_summary(spec: TrainSpec) -> dict[str, str]:
    """The card's line on LLM features: each question, its type, and the model asked."""
    if not spec.features.llm:
        return {}
    asked = "; ".join(f"{q.feature} ({q.type}): {q.ask}" for q in spec.features.llm)
    return {"LLM features": f"{asked} - asked of {spec.llm.model} ({spec.llm.mode})"}


def _llm_card(spec: TrainSpec) -> dict[str, Any] | None:
    if not spec.features.llm:
        return None
    return {"model": spec.llm.model, "mode": spec.llm.mode,
            "url": spec.llm.resolved_url,
            "features": [{"name": q.feature, "type": q.type, "ask": q.ask,
                          "categories": list(q.categories)} for q in spec.features.llm]}


def _baseline(plan: ModelPlan, X: pd.DataFrame, y: pd.Series, X_test: pd.DataFrame,
              y_test: pd.Series) -> dict[str, float]:
    """Test metrics of a model that knows only the training target's distribution."""
    dummy = (DummyRegressor() if plan.task is Task.REGRESSION
             else DummyClassifier(strategy="prior")).fit(X, y)
    scores = {}
    for name, metric in METRICS.items():
        if plan.task in metric.tasks:
            with contextlib.suppress(ValueError):  # undefined for a constant prediction
                scores[name] = score_model(dummy, X_test, y_test, metric)
    return scores


def finding_record(f: Finding) -> dict[str, Any]:
    return {"check": f.check, "severity": f.severity.value, "message": f.message,
            "columns": list(f.columns), "details": f.details}


def _trial(t: TrialOutcome) -> dict[str, Any]:
    return {"number": t.number, "model": t.model, "score": t.score, "state": t.state,
            "params": t.params, "seconds": round(t.seconds, 2), "defaults": t.defaults}


def log_json(run: ActiveRun, payload: Any, artifact: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact).name
        path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
        parent = str(Path(artifact).parent)
        run.log_artifact(path, None if parent == "." else parent)
