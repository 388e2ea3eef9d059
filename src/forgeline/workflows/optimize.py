"""``forgeline optimize fraud@champion``: smaller and faster variants of a registered model.

load the teacher version, the spec that trained it and its data → rebuild the very
train/test split it was evaluated on (:func:`~forgeline.workflows.prepare.prepare_rows`,
checked against the test rows' digest its training run recorded) → gather candidates
from each technique of the optimization stage (distillation here; truncation, pruning,
compilation and quantization where those modules are installed) → measure every
candidate and the teacher the same way in one run
(:mod:`~forgeline.workflows.optimize_measure`) → choose the fastest single-row p50 (p50s
within 5% of the fastest are ties, settled by the smaller package; ``target="edge"``: the
smallest package) whose test score is at most
``max_score_drop`` below the teacher's → register it as the next version of the same
model through an ``optimize`` run, a child of the teacher's training run, with the
teacher named (tag ``forgeline.teacher``), the technique's parameters, the table
(``report/optimize.json``) and its metrics. Aliases never move: the user promotes.

Nothing is recorded when no candidate is within the budget (:class:`NoCandidate`, which
carries the table) or with ``dry_run``.
"""

from __future__ import annotations

import inspect
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from forgeline.config import hash_key
from forgeline.data.io import load_table
from forgeline.data.versioning import dataset_version
from forgeline.entities import ModelVersion, Task
from forgeline.errors import InvalidInput, NotFound
from forgeline.metrics import Metric, get_metric
from forgeline.optimization.candidate import Candidate
from forgeline.optimization.compile import compile_candidates
from forgeline.optimization.distill import distill_candidates, distillable
from forgeline.optimization.quantize import quantize_candidates
from forgeline.optimization.trees import tree_candidates
from forgeline.packaging import load_model
from forgeline.packaging.attributions import attribution_record, explain_or_note
from forgeline.packaging.package import final_estimator
from forgeline.tracking.client import Client
from forgeline.training.layout import MODEL_PATH, SPEC_PATH
from forgeline.training.spec import TrainSpec
from forgeline.util.progress import Progress
from forgeline.workflows.optimize_measure import Measurement, Measurer
from forgeline.workflows.prepare import prepare_rows
from forgeline.workflows.privacy import plan_privacy
from forgeline.workflows.retrain import champion_spec
from forgeline.workflows.train_finish import log_json

__all__ = ["TABLE_PATH", "TARGETS", "TECHNIQUES", "NoCandidate", "OptimizeResult",
           "optimize"]

TABLE_PATH = "report/optimize.json"
TARGETS = ("latency", "edge")
# technique name on the command line -> the Candidate.technique it yields
TECHNIQUES = {"distill": "distillation", "truncate": "truncation", "prune": "pruning",
              "compile": "compilation", "quantize": "quantization"}
_TIE = 0.05  # single-row p50s this close to the fastest are taken as equal
_VALIDATION_SHARE = 0.2  # of the training rows, for techniques that tune on held-out rows


class NoCandidate(InvalidInput):
    """No candidate is within the score budget (or none could be made); ``table`` holds
    what was measured."""

    def __init__(self, message: str, hint: str = "",
                 table: Sequence[Measurement] = (), metric: str = "score") -> None:
        super().__init__(message, hint=hint)
        self.table = list(table)
        self.metric = metric


@dataclass
class OptimizeResult:
    teacher: str  # the teacher's reference, e.g. fraud/3
    metric: str
    target: str
    max_score_drop: float
    table: list[Measurement]  # the teacher first
    chosen: str  # the chosen candidate's name
    reason: str
    skipped: dict[str, str] = field(default_factory=dict)  # technique -> why not tried
    model_version: ModelVersion | None = None  # None with dry_run
    run_id: str | None = None


@dataclass
class _Teacher:
    version: ModelVersion
    spec: TrainSpec
    task: Task
    metric: Metric
    X_train: pd.DataFrame
    y_train: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series


def _techniques(names: Sequence[str] | None) -> list[str]:
    chosen = list(names) if names else list(TECHNIQUES)
    unknown = [n for n in chosen if n not in TECHNIQUES]
    if unknown:
        raise InvalidInput(f"Unknown technique(s): {', '.join(unknown)}.",
                           hint=f"Choose from {', '.join(TECHNIQUES)}.")
    return chosen


def _load_teacher(client: Client, ref: str) -> tuple[_Teacher, Any]:
    version = client.get_model_version(ref)
    spec = champion_spec(client, version)
    d = spec.data
    try:
        frame = load_table(d.path)
    except NotFound as e:
        raise InvalidInput(f"The data {version.ref} was trained on is gone: {e}",
                           hint="Restore the file its spec names (data.path), or retrain "
                                "the model.") from None
    privacy = plan_privacy(frame, spec.privacy, d.target, spec.seed)
    rows = prepare_rows(spec, frame, privacy, hash_key(client.settings)
                        if privacy.policy == "hash" and privacy.columns else b"")
    _check_split(client, version, rows.test_frame, d.path)
    predictor = load_model(version.ref, client)
    features = list(predictor.signature.names)
    y_type = pd.Series(predictor.signature.classes or [0.0]).dtype
    train, test = rows.train_frame, rows.test_frame
    metric = get_metric(spec.metric, rows.task)
    teacher = _Teacher(version, spec, rows.task, metric, train[features],
                       _target(train[d.target], rows.task, y_type), test[features],
                       _target(test[d.target], rows.task, y_type))
    return teacher, predictor


def _target(y: pd.Series, task: Task, dtype: Any) -> pd.Series:
    return y if task is Task.REGRESSION else y.astype(dtype)


def _check_split(client: Client, version: ModelVersion, test: pd.DataFrame,
                 path: Path) -> None:
    """The rebuilt test rows must be the teacher's (their digest as its run logged it)."""
    if version.run_id is None:
        return
    logged = {context: ds for ds, context in client.store.get_run_datasets(version.run_id)}
    want = logged.get("test")
    if want is None:
        return
    got = dataset_version(test, f"{path.stem}-test", str(path))
    if got.digest != want.digest:
        raise InvalidInput(f"The test rows rebuilt from {path} are not those {version.ref} "
                           f"was evaluated on (digest {got.digest[:12]}, its run recorded "
                           f"{want.digest[:12]}): the data changed since it was trained.",
                           hint="Restore the data it was trained on, or retrain the model "
                                "and optimize the new version.")


def _gather(teacher: _Teacher, model: Any, techniques: list[str],
            students: dict[str, Any] | None) -> tuple[list[Candidate], dict[str, str]]:
    """Every technique's candidates, and why a technique gave none."""
    found: list[Candidate] = []
    skipped: dict[str, str] = {}
    if "distill" in techniques:
        reason = distillable(model, teacher.task)
        if reason is None:
            found += distill_candidates(
                model, teacher.X_train, teacher.task, teacher.spec.seed,
                students=students if students is not None else _zoo_students(teacher))
        else:
            skipped["distill"] = f"cannot distill: {reason}"
    made: list[Candidate] = []
    if {"truncate", "prune"} & set(techniques):
        X_val, y_val = _validation(teacher)
        made += tree_candidates(model, X_val, y_val, teacher.task, teacher.metric.name)
    if "compile" in techniques:
        made += compile_candidates(model)
    if "quantize" in techniques:
        made += quantize_candidates(model)
    wanted = {TECHNIQUES[t] for t in techniques}
    found += [c for c in made if c.technique in wanted]
    for name in techniques:
        if name not in skipped and not any(c.technique == TECHNIQUES[name] for c in found):
            skipped[name] = f"does not apply to a {type(final_estimator(model)).__name__} model"
    return found, skipped


def _zoo_students(teacher: _Teacher) -> dict[str, Any]:
    """A small MLP student when the model zoo has one (``forgeline[torch]``), with the
    zoo's defaults; for classification its ``fit`` must take ``sample_weight`` (the soft
    targets are fitted through it)."""
    from forgeline.training.zoo import ZOO

    kind = ZOO.get("mlp")
    if kind is None or not kind.installed or teacher.task not in kind.tasks:
        return {}
    estimator = kind.build(teacher.task, {}, teacher.spec.seed, False)
    if teacher.task is not Task.REGRESSION and "sample_weight" not in inspect.signature(
            estimator.fit).parameters:
        return {}
    return {"mlp": estimator}


def _validation(teacher: _Teacher) -> tuple[pd.DataFrame, pd.Series]:
    """A seeded share of the training rows (never the test rows) to tune on."""
    picked = teacher.X_train.sample(frac=_VALIDATION_SHARE, random_state=teacher.spec.seed)
    return picked, teacher.y_train.loc[picked.index]


def _choose(table: list[Measurement], target: str, budget: float,
            metric: str) -> tuple[Measurement, str]:
    variants = table[1:]
    for m in variants:
        m.within_budget = m.drop <= budget
    within = [m for m in variants if m.within_budget]
    if not within:
        best = min(variants, key=lambda m: m.drop)
        raise NoCandidate(
            f"No candidate stays within a {metric} drop of {budget:g}: the best, {best.name}, "
            f"drops {best.drop:.4f} ({best.score:.4f} against the teacher's "
            f"{table[0].score:.4f}); nothing was registered.",
            hint=f"Allow more with --max-score-drop {max(best.drop, 0) * 1.1:.3g}, or try "
                 "other techniques (--techniques).", table=table, metric=metric)
    if target == "edge":
        chosen = min(within, key=lambda m: (m.package_bytes, m.latency_p50_ms))
        return chosen, (f"the smallest package within the budget ({chosen.package_bytes:,} "
                        f"bytes, {metric} {chosen.change:+.4f})")
    # p50s within _TIE of the fastest are ties (timing noise): the smallest of them wins
    fastest = min(m.latency_p50_ms for m in within)
    chosen = min((m for m in within if m.latency_p50_ms <= fastest * (1 + _TIE)),
                 key=lambda m: (m.package_bytes, m.latency_p50_ms))
    return chosen, (f"the fastest single row within the budget (p50 "
                    f"{chosen.latency_p50_ms:.3f} ms against the teacher's "
                    f"{table[0].latency_p50_ms:.3f} ms, {metric} {chosen.change:+.4f})")


def optimize(ref: str, *, max_score_drop: float = 0.005, target: str = "latency",
             techniques: Sequence[str] | None = None, dry_run: bool = False,
             client: Client | None = None, progress: Progress | None = None,
             students: dict[str, Any] | None = None, latency_calls: int = 300,
             batch_rows: int = 10_000, memory: bool = True) -> OptimizeResult:
    """Try smaller and faster variants of ``ref`` and register the one chosen.

    Args:
        ref: the teacher (``fraud@champion``, ``fraud/3``, ``fraud``).
        max_score_drop: how much lower (in the spec's metric) a variant may score on the
            test split than the teacher.
        target: ``"latency"`` (the fastest single-row p50) or ``"edge"`` (the smallest
            package).
        techniques: names from :data:`TECHNIQUES`; all by default.
        dry_run: measure and choose, register nothing.
        client: the store; ``Client()`` by default.
        progress: told what is happening.
        students: more students to distil into (unfitted estimators by name).
        latency_calls, batch_rows, memory: how each candidate is measured
            (:class:`~forgeline.workflows.optimize_measure.Measurer`).

    Raises:
        NotFound: no such model or version.
        InvalidInput: a bad argument, a model not trained by ``forgeline train``, data that
            changed since, or :class:`NoCandidate`.
    """
    if target not in TARGETS:
        raise InvalidInput(f"Unknown target {target!r}.", hint=f"Use {' or '.join(TARGETS)}.")
    if not max_score_drop >= 0:
        raise InvalidInput(f"The score budget must be 0 or more, got {max_score_drop}.",
                           hint="Pass e.g. --max-score-drop 0.005.")
    chosen_techniques = _techniques(techniques)
    client = client or Client()
    progress = progress or Progress()
    progress.status(f"Loading {ref}, its spec and its training data")
    teacher, predictor = _load_teacher(client, ref)
    model = predictor.model
    progress.status("Making the candidates")
    candidates, skipped = _gather(teacher, model, chosen_techniques, students)
    progress.done()
    if not candidates:
        raise NoCandidate(f"None of the techniques apply to {teacher.version.ref}: "
                          + "; ".join(f"{k}: {v}" for k, v in skipped.items()) + ".",
                          hint="Optimize a tree ensemble or neural model, or choose other "
                               "techniques (--techniques).")
    everyone = [Candidate("teacher", "none", model, {}, f"{teacher.version.ref} as registered"),
                *candidates]
    with tempfile.TemporaryDirectory() as tmp:
        measurer = Measurer(predictor, teacher.X_test, teacher.y_test, teacher.task,
                            teacher.metric, Path(tmp), calls=latency_calls,
                            batch_rows=batch_rows, memory=memory, seed=teacher.spec.seed)
        progress.task("measuring", len(everyone), "candidates")
        table, runtimes = [], []
        try:
            for candidate in everyone:
                measured, runtime = measurer.measure(candidate)
                table.append(measured)
                runtimes.append(runtime)
                progress.advance(1, candidate.name)
        finally:
            measurer.close()
            progress.done()
        progress.status(f"Timing single rows through each runtime ({latency_calls} calls)")
        measurer.latencies(table, runtimes)
        progress.done()
        chosen, reason = _choose(table, target, max_score_drop, teacher.metric.name)
        result = OptimizeResult(teacher.version.ref, teacher.metric.name, target,
                                max_score_drop, table, chosen.name, reason, skipped)
        if dry_run:
            return result
        winner = next(c for c in candidates if c.name == chosen.name)
        progress.status(f"Explaining {chosen.name} on the test split")
        explained, _ = explain_or_note(winner.model, teacher.X_test,
                                       background=teacher.X_train, seed=teacher.spec.seed)
        package = measurer.final_package(
            winner, chosen, None if explained is None else attribution_record(explained))
        progress.status(f"Registering {chosen.name}")
        _register(client, teacher, winner, chosen, result, package)
        progress.done()
    return result


def _register(client: Client, teacher: _Teacher, candidate: Candidate, chosen: Measurement,
              result: OptimizeResult, package: Path) -> None:
    mv = teacher.version
    tags = {"forgeline.kind": "optimize", "forgeline.teacher": mv.ref,
            "forgeline.optimize.technique": candidate.technique,
            "forgeline.optimize.candidate": candidate.name}
    with client.start_run(teacher.spec.name, name="optimize", tags=tags,
                          parent_run_id=mv.run_id) as run:
        log_json(run, teacher.spec.model_dump(mode="json", by_alias=True), SPEC_PATH)
        if mv.run_id is not None:  # the teacher's data is this version's data
            for dataset, context in client.store.get_run_datasets(mv.run_id):
                run.log_dataset(dataset, context)
        run.log_params({"teacher": mv.ref, "technique": candidate.technique,
                        "candidate": candidate.name, "target": result.target,
                        "max_score_drop": result.max_score_drop,
                        **{f"optimize.{k}": v for k, v in candidate.params.items()}})
        run.log_metrics({f"test_{k}": v for k, v in chosen.metrics.items()})
        run.log_metrics({"score_change": chosen.change,
                         "latency_p50_ms": chosen.latency_p50_ms,
                         "latency_p99_ms": chosen.latency_p99_ms,
                         "batch_rows_per_s": chosen.rows_per_s,
                         "package_bytes": float(chosen.package_bytes),
                         **{k: v for k, v in (("peak_memory_mb", chosen.peak_memory_mb),
                                              ("model_memory_mb", chosen.model_memory_mb))
                            if v is not None}})
        log_json(run, _record(result), TABLE_PATH)
        run.log_artifact(package, MODEL_PATH)
        run.flush()
        version = client.register_model(
            mv.name, run.run_id, MODEL_PATH,
            description=f"{candidate.detail}; teacher {mv.ref}, test {result.metric} "
                        f"{chosen.score:.4f} ({chosen.change:+.4f})",
            tags={"forgeline.teacher": mv.ref, "forgeline.technique": candidate.technique,
                  "forgeline.candidate": candidate.name})
        run.set_tags({"forgeline.registered": version.ref})
    result.model_version, result.run_id = version, run.run_id


def _record(result: OptimizeResult) -> dict[str, Any]:
    return json.loads(json.dumps({
        "teacher": result.teacher, "metric": result.metric, "target": result.target,
        "max_score_drop": result.max_score_drop, "chosen": result.chosen,
        "reason": result.reason, "skipped": result.skipped,
        "table": [m.to_dict() for m in result.table]}, default=str))
