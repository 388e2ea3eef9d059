"""One champion/challenger cycle: ``forgeline retrain fraud``.

check the triggers on recent predictions → train a challenger on the original data plus
labelled production data (the most recent labelled rows held out) → score champion and
challenger on those held-out rows → move the champion alias only when the challenger is
better by the margin. The decision, its evidence and the lineage are recorded in a
``retrain`` run whose child is the challenger's training run.

Personal columns (:func:`~forgeline.workflows.privacy.logged_privacy`): the log holds them
as keyed hashes. A ``privacy.policy: hash`` model learns and serves on those very hashes,
so its original rows are hashed with the same key and the challenger trains with
``privacy.hashed`` (no value hashed twice, none left raw). A model that takes a personal
column raw (``warn``) cannot learn from or be judged on logged rows: the cycle is skipped,
its reason saying so.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgeline.config import hash_key
from forgeline.data.io import load_table
from forgeline.entities import ModelVersion, SplitStrategy
from forgeline.errors import InvalidInput
from forgeline.fairness import check_limits, figure_text, group_fairness
from forgeline.metrics import get_metric
from forgeline.monitoring import MonitorConfig, monitor
from forgeline.packaging import Predictor, load_model
from forgeline.store.predictions import (
    LABEL,
    labelled_predictions,
    prediction_log_root,
    read_predictions,
)
from forgeline.tracking.client import Client
from forgeline.training.layout import SPEC_PATH
from forgeline.training.spec import TrainSpec, load_spec
from forgeline.training.tuning import score_model
from forgeline.util.progress import Progress
from forgeline.util.time import parse_duration
from forgeline.workflows.privacy import hash_columns, logged_privacy
from forgeline.workflows.schedule import Schedule
from forgeline.workflows.train import train

__all__ = ["RetrainDecision", "champion_spec", "retrain", "retrain_every"]


@dataclass
class RetrainDecision:
    action: str  # promoted | kept | skipped
    reason: str
    run_id: str
    champion: int
    challenger: int | None = None
    metric: str | None = None
    champion_score: float | None = None
    challenger_score: float | None = None
    triggers_fired: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    # the spec's fairness limits on the gate's rows: {"champion": [...], "challenger":
    # [...]} (forgeline.fairness.check_limits rows), "broken" (limits the challenger breaks
    # and the champion meets) or "note" (why they could not be checked)
    fairness: dict[str, Any] = field(default_factory=dict)


def champion_spec(client: Client, champion: ModelVersion,
                  overrides: Sequence[str] = ()) -> TrainSpec:
    """The spec that trained the champion, from its run, with ``--set`` overrides."""
    if champion.run_id is None or not client.list_artifacts(champion.run_id, SPEC_PATH):
        raise InvalidInput(f"{champion.ref} was not trained by `forgeline train`: its spec is "
                           "unknown.", hint="Train it with forgeline train first.")
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(champion.run_id, SPEC_PATH, tmp)
        raw = json.loads(path.read_text())
    return load_spec(raw, tuple(overrides))


def _training_rows(spec: TrainSpec, labelled: pd.DataFrame, inputs: list[str]) -> pd.DataFrame:
    """Production rows in the shape of the original data: inputs, sensitive columns (when
    the requests carried them), target, time column."""
    sensitive = [c for c in spec.data.sensitive if c in labelled.columns and c not in inputs]
    rows = labelled[[*inputs, *sensitive]].copy()
    rows[spec.data.target] = labelled[LABEL].to_numpy()
    if spec.data.time_column:
        rows[spec.data.time_column] = pd.to_datetime(labelled["ts"]).to_numpy()
    return rows


def retrain(name: str, overrides: Sequence[str] = (), *, force: bool = False,
            client: Client | None = None, progress: Progress | None = None
            ) -> RetrainDecision:
    """Run one cycle for model ``name``; returns what was decided and why.

    Args:
        name: the registered model.
        overrides: ``key=value`` changes to the champion's spec for the challenger.
        force: retrain even when no trigger rule fired.
        client: the store; ``Client()`` by default.
        progress: told what is happening (the challenger's training included).
    """
    client = client or Client()
    progress = progress or Progress()
    settings = client.settings
    champion = client.get_model_version(f"{name}@champion")
    spec = champion_spec(client, champion, overrides)
    rt, gate = spec.retrain, spec.retrain.gate
    if rt.champion != "champion":
        champion = client.get_model_version(f"{name}@{rt.champion}")
    loaded: dict[int, Predictor] = {}

    def model_of(version: int) -> Predictor:  # each package loaded (and verified) once
        if version not in loaded:
            loaded[version] = load_model(f"{name}/{version}", client)
        return loaded[version]

    with client.start_run(name, name="retrain", tags={"forgeline.kind": "retrain"}) as run:
        decision = RetrainDecision("kept", "", run.run_id, champion.version)
        recent = read_predictions(prediction_log_root(settings), name, last=rt.monitor_rows)
        if rt.triggers and not force:
            if recent.empty:
                decision.action, decision.reason = "skipped", "no predictions logged yet"
                return _record(run, decision)
            result = monitor(model_of(champion.version), recent,
                             config=MonitorConfig(rules=rt.triggers))
            decision.triggers_fired = [a.rule for a in result.fired]
            if not decision.triggers_fired:
                decision.action, decision.reason = "skipped", "no trigger fired"
                return _record(run, decision)
        since = (dt.datetime.now(dt.UTC).replace(tzinfo=None)
                 - dt.timedelta(days=rt.window_days)) if rt.window_days else None
        labelled = labelled_predictions(settings, name, since)
        held_out = labelled.tail(gate.recent_rows)
        decision.rows = {"labelled": len(labelled), "gate": len(held_out)}
        if len(held_out) < gate.min_labelled:
            decision.reason = (f"only {len(held_out)} labelled production rows; the gate "
                               f"needs {gate.min_labelled} to compare the models")
            return _record(run, decision)
        inputs = model_of(champion.version).signature.names
        private = logged_privacy(model_of(champion.version).privacy, spec.privacy, labelled,
                                 inputs)
        if private.blocked:
            decision.action, decision.reason = "skipped", private.blocked
            return _record(run, decision)
        parts = [_training_rows(spec, labelled.iloc[: len(labelled) - len(held_out)], inputs)]
        if rt.include_original:
            original = load_table(spec.data.path)
            if private.tokens and spec.privacy.policy == "hash":  # as the log holds them
                original = hash_columns(original, private.tokens, hash_key(settings))
            parts.insert(0, original)
        split: list[str] = []
        if spec.data.time_column and spec.split.strategy in (None, SplitStrategy.TIME):
            # Production rows are the newest, so a time split would make them all the
            # challenger's test rows and it would never learn from them. Its test rows are
            # the gate's instead (the newest), and it trains on everything older.
            gate_rows = _training_rows(spec, held_out, inputs)
            test_size = (len(gate_rows) - 0.5) / (sum(map(len, parts)) + len(gate_rows))
            if test_size < 0.9:
                parts.append(gate_rows)
                split = ["split.strategy=time", f"split.test_size={test_size}"]
        data = pd.concat(parts, ignore_index=True)
        decision.rows["training"] = len(data) - (len(held_out) if split else 0)
        folder = settings.home.absolute() / "retrain" / name / run.run_id
        folder.mkdir(parents=True, exist_ok=True)
        data.to_parquet(folder / "training.parquet", index=False)
        training = decision.rows["training"]
        progress.note(f"Training a challenger on {training:,} rows "
                      f"({training - (len(parts[0]) if rt.include_original else 0):,} "
                      "from production)" + (f", tested on the gate's {len(held_out):,}"
                                            if split else ""))
        present = set(data.columns)  # production rows carry only the model's inputs
        d = spec.data
        group = d.group_column if d.group_column in present else "null"
        sensitive = [c for c in d.sensitive if c in present]
        result = train(spec, [f"data.path={folder / 'training.parquet'}",
                              f"data.drop={[c for c in d.drop if c in present]}",
                              f"data.sensitive={sensitive}",
                              *([] if sensitive else ["fairness.limits=[]"]),
                              f"data.group_column={group}",
                              f"register.alias={rt.challenger}", "register.min_score=null",
                              *private.overrides, *split],
                       client=client, progress=progress, parent_run_id=run.run_id)
        if result.model_version is None:
            decision.reason = f"the challenger was not registered: {result.registered_reason}"
            return _record(run, decision)
        decision.challenger, decision.metric = result.model_version.version, result.metric
        metric = get_metric(result.metric, result.task)
        y = held_out[LABEL]
        scores = {}
        for role, version in (("champion", champion.version),
                              ("challenger", result.model_version.version)):
            predictor = model_of(version)
            frame = predictor.signature.validate(held_out[predictor.signature.names])
            scores[role] = score_model(predictor.model, frame, y.astype(
                pd.Series(predictor.signature.classes or [0.0]).dtype), metric)
        decision.champion_score, decision.challenger_score = scores["champion"], scores[
            "challenger"]
        gain = scores["challenger"] - scores["champion"]
        gain = gain if metric.greater_is_better else -gain
        decision.fairness = _fairness_gate(spec, held_out, {
            "champion": model_of(champion.version),
            "challenger": model_of(result.model_version.version)})
        if decision.fairness.get("broken"):
            decision.reason = (
                "the challenger breaks fairness limit(s) the champion meets on the gate's "
                f"{len(held_out)} rows: " + "; ".join(decision.fairness["broken"])
                + f" (challenger {metric.name} {scores['challenger']:.4f}, champion "
                f"{scores['champion']:.4f})")
        elif gain > gate.margin:
            client.set_alias(name, rt.champion, result.model_version.version)
            decision.action = "promoted"
            decision.reason = (f"challenger {metric.name} {scores['challenger']:.4f} beats "
                               f"champion {scores['champion']:.4f} by more than {gate.margin}")
        else:
            decision.reason = (f"challenger {metric.name} {scores['challenger']:.4f} does not "
                               f"beat champion {scores['champion']:.4f} by more than "
                               f"{gate.margin}")
        if decision.fairness.get("note"):
            decision.reason += f"; {decision.fairness['note']}"
        return _record(run, decision)


def _fairness_gate(spec: TrainSpec, held_out: pd.DataFrame,
                   predictors: dict[str, Predictor]) -> dict[str, Any]:
    """The spec's fairness limits for each model on the gate's labelled rows, grouped by
    the sensitive columns the logged requests carried (sent as request fields the model
    does not take, they are logged in clear unless personal)."""
    limits = spec.fairness.parsed()
    if not limits:
        return {}
    columns = [c for c in spec.data.sensitive if c in held_out.columns
               and held_out[c].notna().any()]
    if not columns:
        return {"note": "fairness limits not checked: the prediction log holds none of the "
                        f"sensitive columns ({', '.join(spec.data.sensitive)}); send them "
                        "with the requests to have the gate check them"}
    out: dict[str, Any] = {}
    for role, predictor in predictors.items():
        classes = predictor.signature.classes or [0, 1]
        frame = predictor.signature.validate(held_out[predictor.signature.names])
        y = held_out[LABEL].astype(pd.Series(classes).dtype).to_numpy()
        proba = np.asarray(predictor.model.predict_proba(frame), dtype=float)[:, 1]
        label = np.asarray(predictor.model.predict(frame))
        fair = {c: group_fairness("binary", y, label, held_out[c].to_numpy(),
                                  positive=classes[1], proba=proba,
                                  resamples=spec.fairness.resamples, seed=spec.seed)
                for c in columns}
        out[role] = check_limits(limits, fair)
    out["broken"] = [
        f"{new['limit']} on {new['column']}: challenger {figure_text(new['value'])}, champion "
        f"{figure_text(old['value'])}"
        for old, new in zip(out["champion"], out["challenger"], strict=True)
        if old["passed"] and not new["passed"]]
    return out


def _record(run: Any, decision: RetrainDecision) -> RetrainDecision:
    run.set_tags({"forgeline.retrain.action": decision.action,
                  "forgeline.retrain.reason": decision.reason[:500]})
    run.log_params({"champion": decision.champion, "challenger": decision.challenger})
    for key in ("champion_score", "challenger_score"):
        value = getattr(decision, key)
        if value is not None:
            run.log_metric(key, value)
    for role in ("champion", "challenger"):
        run.log_metrics({f"fairness.{role}.{r['metric']}.{r['column']}": r["value"]
                         for r in decision.fairness.get(role, []) if r["value"] is not None})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "decision.json"
        path.write_text(json.dumps(asdict(decision), indent=2, default=str))
        run.log_artifact(path)
    return decision


def retrain_every(name: str, every_s: float | None = None, *, cycles: int | None = None,
                  client: Client | None = None, progress: Progress | None = None,
                  on_decision: Callable[[RetrainDecision], None] | None = None) -> int:
    """Run :func:`retrain` now and then every ``every_s`` seconds (``forgeline loop``), on
    the one scheduler (:class:`~forgeline.workflows.schedule.Schedule`), until ``cycles``
    cycles are done or the process is interrupted; the number of cycles run.

    Raises:
        InvalidInput: no ``every_s`` and the champion's spec has no ``retrain.every``.
    """
    client = client or Client()
    if every_s is None:
        every = champion_spec(client, client.get_model_version(f"{name}@champion")
                              ).retrain.every
        if every is None:
            raise InvalidInput(f"No schedule for {name}: its spec has no retrain.every.",
                               hint="Give the schedule, or set retrain.every (e.g. 1h) in "
                                    "the spec.")
        every_s = parse_duration(every, "retrain.every")
    schedule = Schedule(lambda: retrain(name, client=client, progress=progress), every_s,
                        name=f"retrain-{name}")
    return schedule.run(cycles, on_decision)
