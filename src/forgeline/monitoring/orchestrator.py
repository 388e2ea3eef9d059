"""``monitor(model, current)``: drift, data quality, performance and alerts in one run.

The reference is the model's training profile (``profile.json``) unless another is given;
the training data is never needed. The current data is a frame of model inputs: a file of
production rows, or the prediction log (its ``ts``, ``prediction`` and ``proba_<class>``
columns add the over-time views, prediction drift and performance). The over-time views
follow the data's event time when the model's profile names its time column and the data
has it, else the log's ``ts`` (see :func:`~forgeline.monitoring.windows.choose_clock`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgeline.data.pca import reconstruction_errors
from forgeline.engines import LocalEngine
from forgeline.errors import InvalidInput
from forgeline.monitoring.alerts import deliver, evaluate_rules
from forgeline.monitoring.attribution import AttributionDrift, attribution_drift
from forgeline.monitoring.binning import Binned, bin_column
from forgeline.monitoring.config import MonitorConfig
from forgeline.monitoring.drift import FeatureDrift, dataset_drift, feature_drift, window_drift
from forgeline.monitoring.inputs import (
    ColumnJob,
    column_jobs,
    event_column,
    expected_columns,
    is_log,
    log_inputs,
    prediction_binned,
)
from forgeline.monitoring.multivariate import MultivariateResult, multivariate_drift, sample_step
from forgeline.monitoring.perf import PerformanceResult, performance
from forgeline.monitoring.quality import QualityResult, quality
from forgeline.monitoring.reference import Reference, build_reference
from forgeline.monitoring.result import MonitorResult
from forgeline.monitoring.windows import Clock, Windows, choose_clock, split_windows
from forgeline.packaging.predictor import Predictor, load_model
from forgeline.store.predictions import join_feedback, proba_column, stored_name

__all__ = ["alert_payload", "conclude", "monitor"]

_PREDICTION = "prediction"
_THREAD_ROWS = 100_000  # below this, threads cost more than they save
_MAX_THREADS = 8


def _parallel(fn: Callable[[Any], Any], items: list[Any], rows: int) -> list[Any]:
    """``[fn(x) for x in items]``, on the local engine's threads for large frames: the
    numpy and Arrow work inside releases the GIL, so columns are binned side by side on
    every core."""
    workers = min(len(items), os.cpu_count() or 1, _MAX_THREADS)
    if rows < _THREAD_ROWS or workers < 2:
        return [fn(x) for x in items]
    return LocalEngine(workers, workers="threads").map(fn, items)


def _bin_inputs(current: pd.DataFrame, inputs: list[Any], ref: Reference, windows: Windows
                ) -> tuple[dict[str, Binned], dict[str, Any], dict[str, str]]:
    """Each signature input on its reference bins, with its counts (overall, per window);
    the inputs left out, with the reason. Columns are done side by side on threads: the
    numpy and Arrow work of one overlaps with another's ``bincount``."""
    jobs, skipped = column_jobs(inputs, ref, current.columns)

    def one(job: ColumnJob) -> tuple[Binned | None, Any]:
        b = bin_column(job[0], current[job[0]], job[1], job[2])
        return b, None if b is None else b.counts(windows)

    done = _parallel(one, jobs, len(current))
    binned, counts = {}, {}
    for (name, stats, _), (b, tally) in zip(jobs, done, strict=True):
        if b is None:
            skipped[name] = f"{stats.get('kind')} columns have no drift check"
        else:
            binned[name], counts[name] = b, tally
    return binned, counts, skipped


def _predictor(model: str | Path | Predictor) -> Predictor:
    if isinstance(model, Predictor):
        return model
    return load_model(model, lazy=True)  # the model itself only if asked to score


def _labels(current: pd.DataFrame, labels: pd.Series | pd.DataFrame | None, id_column: str,
            label_column: str, warnings: list[str]) -> tuple[pd.Series | None, Any]:
    if labels is None:
        return None, None
    if isinstance(labels, pd.DataFrame):
        joined, stats = join_feedback(current, labels, id_column, label_column)
        if stats.message:
            warnings.append(f"labels: {stats.message}")
        return joined[label_column].reset_index(drop=True), stats
    if len(labels) != len(current):
        raise InvalidInput(f"labels has {len(labels)} values and the current data "
                           f"{len(current)} rows: they must align row by row.",
                           hint="Or pass a feedback table (a DataFrame with ids).")
    return pd.Series(np.asarray(labels, dtype=object)), None


def _score(predictor: Predictor, current: pd.DataFrame) -> pd.DataFrame:
    """The current data with the model's predictions added (``prediction``, ``proba_*``)."""
    extra: dict[str, Any] = {"prediction": predictor.predict(current)}
    if predictor.signature.is_classifier and hasattr(predictor.model, "predict_proba"):
        proba = predictor.predict_proba(current)
        extra.update({proba_column(c): proba[c].to_numpy() for c in proba.columns})
    return current.assign(**extra)


def _multivariate(ref: Reference, binned: Mapping[str, Binned], config: MonitorConfig,
                  windows: Windows, warnings: list[str]) -> Any:
    section = ref.profile.get("multivariate")
    if not section:
        return None
    numbers = {n: b.numbers for n, b in binned.items() if b.numbers is not None}
    absent = [c for c in section["columns"] if c not in numbers]
    if absent:
        warnings.append(f"multivariate drift skipped: column(s) {', '.join(absent)} of its "
                        "reference are not in the current data")
        return None
    step = sample_step(len(next(iter(numbers.values()))))
    errors = reconstruction_errors(section, {n: a[::step] for n, a in numbers.items()})
    result = multivariate_drift(section, errors, config.multivariate_sigma,
                                windows.every(step), max(1, config.min_window_rows // step))
    result.step = step
    return result


def _clock(current: pd.DataFrame, config: MonitorConfig, event: str | None,
           warnings: list[str]) -> Clock:
    """The windows' clock; a warning when the model has an event time the data lacks."""
    log = is_log(current)
    clock = choose_clock(current, config, event, log=log)
    if event is not None and clock.kind != "event" and config.time_column is None \
            and config.window is not None:
        wanted = " or ".join(repr(c) for c in dict.fromkeys(
            [stored_name(event), *(() if log else (event,))]))
        where, how = (("the prediction log", "join it to the log by request id") if log
                      else ("the data", "add it to the data"))
        warnings.append(f"windows by {clock.label}, not by event time: {where} has no "
                        f"{wanted} column with times (the model's data.time_column is "
                        f"{event!r}); {how} to window by when the rows happened")
    return clock


def _period(current: pd.DataFrame, column: str | None) -> dict[str, str | None]:
    if column is None or column not in current.columns:
        return {"start": None, "end": None}
    times = pd.to_datetime(current[column], errors="coerce", utc=True)
    if times.notna().sum() == 0:
        return {"start": None, "end": None}
    return {"start": times.min().isoformat(), "end": times.max().isoformat()}


def _versions(current: pd.DataFrame, predictor: Predictor, warnings: list[str]) -> None:
    mv = predictor.model_version
    if mv is None or "model_version" not in current.columns:
        return
    seen = sorted({str(x) for x in current["model_version"].dropna().unique()})
    others = [x for x in seen if x != str(mv.version)]
    if others:
        warnings.append(f"the data holds predictions of version(s) {', '.join(seen)}; it is "
                        f"compared with the reference of version {mv.version}")


def monitor(ref_or_predictor: str | Path | Predictor, current: pd.DataFrame, *,
            reference: Mapping[str, Any] | pd.DataFrame | None = None,
            config: MonitorConfig | None = None,
            labels: pd.Series | pd.DataFrame | None = None, id_column: str = "request_id",
            label_column: str | None = None, score: bool = False) -> MonitorResult:
    """Compare production data with the model's reference: drift, quality, performance.

    Args:
        ref_or_predictor: a model reference (``fraud@champion``, ``fraud/3``, a package
            directory) or a loaded :class:`~forgeline.packaging.Predictor`.
        current: the production rows: model inputs, optionally the prediction log's
            columns (``ts``, ``prediction``, ``proba_<class>``, ``request_id``).
        reference: a profile dict or a DataFrame instead of the model's training profile.
        config: thresholds, methods, windows, alert rules and delivery.
        labels: true labels: a Series aligned with ``current`` row by row, or a feedback
            table (DataFrame) joined on ``id_column``.
        id_column: the id shared by ``current`` and a feedback table.
        label_column: the label column of a feedback table (the model's target by default).
        score: predict on ``current`` first when it has no ``prediction`` column.

    Raises:
        InvalidInput: ``current`` is not a DataFrame or has no rows; a malformed reference;
            labels that do not align.
        InvalidSpec: a bad rule or config.
    """
    config = config or MonitorConfig()
    if not isinstance(current, pd.DataFrame):
        raise InvalidInput(f"The current data must be a pandas DataFrame, not "
                           f"{type(current).__name__}.")
    if len(current) == 0:
        raise InvalidInput("The current data has no rows: nothing to monitor.")
    predictor = _predictor(ref_or_predictor)
    sig = predictor.signature
    ref = build_reference(predictor.profile, sig, reference)
    warnings: list[str] = []
    _versions(current, predictor, warnings)  # before the log's own columns may be replaced
    current, unmonitored = log_inputs(current.reset_index(drop=True), sig)
    label_name = label_column or sig.target
    label_values, feedback = _labels(current, labels, id_column, label_name, warnings)
    if score and "prediction" not in current.columns:
        if all(n in current.columns for n in sig.names):
            current = _score(predictor, current)
        else:
            warnings.append("not scored: the current data lacks signature columns")
    event = event_column(ref, predictor.profile)
    clock = _clock(current, config, event, warnings)
    windows = split_windows(current, config, clock)
    inputs = [c for c in sig.inputs if c.name not in unmonitored]
    binned, counts, skipped = _bin_inputs(current, inputs, ref, windows)
    skipped.update(unmonitored)
    features = {name: feature_drift(b, config, counts[name][0]) for name, b in binned.items()}
    pred_binned = prediction_binned(ref.profile.get("prediction"), current, sig.classes)
    prediction: FeatureDrift | None = None
    per_window = {name: (b, counts[name][1]) for name, b in binned.items()}
    if pred_binned is not None:
        pred_counts = pred_binned.counts(windows)
        prediction = feature_drift(pred_binned, config, pred_counts[0])
        per_window[_PREDICTION] = (pred_binned, pred_counts[1])
    missing = [c.name for c in inputs if c.name not in current.columns]
    if missing:
        warnings.append(f"{len(missing)} signature column(s) missing from the current data: "
                        f"{', '.join(missing)}; the report covers the columns present")
    ignore = expected_columns(label_name, id_column, config, clock, event, unmonitored)
    checked = quality(current, [(c.name, c.kind, c.dtype) for c in inputs], ref.profile,
                      binned, config, ignore)
    pred_section = ref.profile.get("prediction") or {}
    perf = performance(current, label_values, sig.task, sig.classes, predictor.metrics or {},
                       config=config, windows=windows,
                       calibration=pred_section.get("calibration"),
                       sensitive=predictor.privacy.get("sensitive") or ())
    if perf is not None:
        perf.feedback = feedback
        if label_values is not None and perf.labelled == 0 and feedback is None:
            warnings.append("labels: none of the given labels is usable")
    return conclude(
        predictor, ref, config, rows=len(current), period=_period(current, clock.source),
        clock=clock, features=features, skipped=skipped, prediction=prediction,
        quality=checked, warnings=warnings, performance=perf,
        multivariate=_multivariate(ref, binned, config, windows, warnings),
        windows=window_drift(per_window, windows, config, _PREDICTION),
        windows_by=windows.by,
        attribution=attribution_drift(predictor, current, config, warnings))


def conclude(predictor: Predictor, ref: Reference, config: MonitorConfig, *, rows: int,
             period: dict[str, str | None], clock: Clock, features: dict[str, FeatureDrift],
             skipped: dict[str, str], prediction: FeatureDrift | None, quality: QualityResult,
             warnings: list[str], performance: PerformanceResult | None = None,
             multivariate: MultivariateResult | None = None,
             windows: list[dict[str, Any]] | None = None, windows_by: str = "none",
             attribution: AttributionDrift | None = None) -> MonitorResult:
    """The result of a run from its parts: the dataset drift of ``features``, the alert
    rules evaluated and, when one fired, delivered. Shared by :func:`monitor` and the
    partitioned run (:mod:`.partitions`)."""
    mv = predictor.model_version
    result = MonitorResult(
        model=mv.name if mv is not None else str(predictor.path),
        version=None if mv is None else str(mv.version), task=predictor.signature.task,
        rows=rows, period=period, reference=ref.source,
        reference_rows=ref.profile.get("rows"), config=config, features=features,
        dataset=dataset_drift(features, config), skipped=skipped, prediction=prediction,
        multivariate=multivariate, quality=quality, performance=performance,
        windows=windows or [], windows_by=windows_by,
        generated=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), warnings=warnings,
        clock=clock, attribution=attribution)
    result.alerts = evaluate_rules(config.rules, result.values())
    if result.fired and (config.webhook or config.command):
        result.warnings.extend(deliver(alert_payload(result), config))
    return result


def alert_payload(result: MonitorResult) -> dict[str, Any]:
    """The JSON an alert delivers: which rules fired and the headline numbers."""
    return {
        "model": result.model, "version": result.version, "generated": result.generated,
        "rows": result.rows, "period": result.period, "clock": result.clock.label,
        "fired": [{"rule": a.rule, "values": a.matches} for a in result.fired],
        "dataset_drift": {"share": result.dataset.share, "drifted": result.dataset.drifted,
                          "features": result.dataset.drifted_features},
        "prediction_drift": None if result.prediction is None else {
            "method": result.prediction.method, "score": result.prediction.score,
            "drifted": result.prediction.drifted},
        "quality_issues": [i.message for i in result.quality.issues],
        "attribution_drift": None if result.attribution is None else {
            "drifted": result.attribution.drifted,
            "features": result.attribution.drifted_features},
    }
