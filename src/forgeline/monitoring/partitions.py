"""Monitoring of data too large for one machine: partition by partition, merged exactly.

The current data is a list of Parquet partitions (local files, or ``s3://`` objects read
into memory with boto3). Each engine task reads **one** partition, bins every signature
input on the reference bins (:func:`~forgeline.monitoring.binning.bin_column`, as a
single-frame run does) and returns a small summary without its rows: per column the
counts and value sums per bin, rows, missing, not parsed, out of range, unseen (with the
unseen categories' counts) and the facts quality reads (:class:`ColumnFacts`). The driver
adds the summaries up and judges them with the same functions as
:func:`~forgeline.monitoring.orchestrator.monitor`: drift, dataset drift and the quality
counts equal those of one run over the partitions concatenated (counts exactly, bin sums
to float rounding).

Attribution drift: each task also returns a uniform random sample of up to
``attribution_rows`` of its partition's model inputs; the driver explains
``attribution_rows`` rows drawn from those samples in proportion to each partition's rows
(:func:`~forgeline.monitoring.attribution.attribution_drift`, as a single-frame run does on
its own sample of the rows).

What a partitioned run does not do, and says so in the result's warnings when it applies:

- windows over time (drift, metrics per window): a window's rows may span partitions; the
  run has one overall view, and its period is the first and last time of the clock;
- multivariate (PCA reconstruction) drift: it samples rows across the whole data;
- the share of duplicated rows: a duplicate may sit in another partition (None);
- performance with labels and scoring (``--labels``, ``--score``): refused up front.

Examples of unparseable values, and the dates sampled to check a datetime input, come from
each partition in turn, so they may differ from those of a single-frame run.

Partitions are found, read and spread over an engine by :mod:`forgeline.data.partitions`
(the same as batch scoring's).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgeline.data.partitions import find_partitions, partition_engine, read_partition
from forgeline.engines import Engine
from forgeline.errors import InvalidInput
from forgeline.monitoring.attribution import attribution_drift
from forgeline.monitoring.binning import Binned, Tally, bin_column, merge_binned
from forgeline.monitoring.config import MonitorConfig
from forgeline.monitoring.drift import FeatureDrift, feature_drift
from forgeline.monitoring.inputs import (
    ColumnJob,
    column_jobs,
    event_column,
    expected_columns,
    is_log,
    log_inputs,
    prediction_binned,
)
from forgeline.monitoring.orchestrator import conclude
from forgeline.monitoring.quality import ColumnFacts, judge_quality
from forgeline.monitoring.reference import build_reference
from forgeline.monitoring.result import MonitorResult
from forgeline.monitoring.windows import ROW_ORDER, Clock, choose_clock
from forgeline.packaging.predictor import Predictor, load_model
from forgeline.packaging.signature import Signature
from forgeline.util.progress import Progress

__all__ = ["PartSummary", "monitor_partitions", "summarize"]

@dataclass(frozen=True)
class _Plan:
    """What every task needs: small and picklable (sent once per job)."""

    signature: Signature
    jobs: tuple[ColumnJob, ...]
    inputs: tuple[tuple[str, str, str], ...]  # (name, kind, dtype) of the monitored inputs
    prediction: Mapping[str, Any] | None
    classes: tuple[Any, ...] | None
    config: MonitorConfig
    event: str | None


@dataclass
class PartSummary:
    """One partition, summarised: no rows, only what adds up across partitions."""

    source: str
    rows: int
    columns: list[str]
    binned: dict[str, Binned] = field(default_factory=dict)  # rows stripped
    tallies: dict[str, Tally] = field(default_factory=dict)
    facts: dict[str, ColumnFacts] = field(default_factory=dict)
    unmonitored: dict[str, str] = field(default_factory=dict)
    clock: Clock = ROW_ORDER
    period: tuple[pd.Timestamp, pd.Timestamp] | None = None
    sample: pd.DataFrame | None = None  # model inputs of random rows, for attribution drift


def _stripped(b: Binned) -> Binned:
    b.buckets, b.numbers = np.zeros(0, dtype=np.int8), None
    return b


def _bin(out: PartSummary, name: str, series: pd.Series, stats: Mapping[str, Any],
         known: frozenset[str] | None) -> None:
    b = bin_column(name, series, stats, known)
    if b is not None:
        out.tallies[name] = b.counts()[0]
        out.binned[name] = _stripped(b)


def summarize(plan: _Plan, source: str) -> PartSummary:
    """Read one partition and summarise it on the reference bins (an engine task)."""
    frame = read_partition(source)
    frame, unmonitored = log_inputs(frame.reset_index(drop=True), plan.signature)
    lacking = [n for n, _, _ in plan.inputs if n not in unmonitored and n not in frame.columns]
    if lacking:
        raise InvalidInput(f"Partition {source} lacks the model's column(s) "
                           f"{', '.join(lacking)}.",
                           hint="Every partition must hold every input of the model's "
                                "signature.")
    out = PartSummary(source, len(frame), [str(c) for c in frame.columns],
                      unmonitored=unmonitored)
    for name, stats, known in plan.jobs:
        if name not in unmonitored:
            _bin(out, name, frame[name], stats, known)
    out.facts = {n: ColumnFacts.of(frame[n], kind) for n, kind, _ in plan.inputs
                 if n not in unmonitored}
    pred = prediction_binned(plan.prediction, frame, plan.classes)
    if pred is not None:
        out.tallies["prediction"] = pred.counts()[0]
        out.binned["prediction"] = _stripped(pred)
    names = [n for n in plan.signature.names if n in frame.columns]
    if plan.config.attribution_rows and len(frame):
        out.sample = frame[names].sample(min(len(frame), plan.config.attribution_rows),
                                         random_state=zlib.crc32(source.encode()))
    out.clock = choose_clock(frame, plan.config, plan.event, log=is_log(frame))
    if out.clock.source is not None:
        times = pd.to_datetime(frame[out.clock.source], errors="coerce", utc=True).dropna()
        if len(times):
            out.period = (times.min(), times.max())
    return out


def _merge_tallies(tallies: list[Tally]) -> Tally:
    counts = np.sum([t.counts for t in tallies], axis=0)
    sums = None if any(t.sums is None for t in tallies) else np.sum(
        [t.sums for t in tallies], axis=0)
    return Tally(counts, sums)


def _merged(parts: list[PartSummary], name: str) -> tuple[Binned, Tally] | None:
    have = [p for p in parts if name in p.binned]
    if not have:
        return None
    return merge_binned([p.binned[name] for p in have]), _merge_tallies(
        [p.tallies[name] for p in have])


def _attribution_sample(parts: list[PartSummary], rows: int) -> pd.DataFrame | None:
    """``rows`` of the partitions' samples (all of them when fewer), each sampled row
    weighted by how many of its partition's rows it stands for: the draw is uniform over
    the whole data. (Rounding each partition's share made 999 of 1,000 from three.)"""
    have = [p for p in parts if p.sample is not None and len(p.sample)]
    if not have or rows == 0:
        return None
    pool = pd.concat([p.sample for p in have], ignore_index=True)
    weights = np.concatenate([np.full(len(p.sample), p.rows / len(p.sample)) for p in have])
    return pool.sample(min(rows, len(pool)), weights=weights, random_state=0)


def _clock_and_period(parts: list[PartSummary], warnings: list[str]
                      ) -> tuple[Clock, dict[str, str | None]]:
    clocks = {p.clock for p in parts}
    if len(clocks) > 1:
        warnings.append("the partitions do not share one clock (" + ", ".join(
            sorted(c.label for c in clocks)) + "): the period is not given")
        return ROW_ORDER, {"start": None, "end": None}
    spans = [p.period for p in parts if p.period is not None]
    if not spans:
        return clocks.pop(), {"start": None, "end": None}
    return clocks.pop(), {"start": min(s for s, _ in spans).isoformat(),
                          "end": max(e for _, e in spans).isoformat()}


def monitor_partitions(ref_or_predictor: str | Path | Predictor, partitions: str | Sequence[str],
                       *, engine: str | Engine = "local", ray_address: str | None = None,
                       config: MonitorConfig | None = None,
                       reference: Mapping[str, Any] | pd.DataFrame | None = None,
                       progress: Progress | None = None) -> MonitorResult:
    """Monitor Parquet partitions as one data set, one partition per engine task.

    Args:
        ref_or_predictor: a model reference or a loaded predictor (as for ``monitor``).
        partitions: a pattern (``s3://bucket/prefix/*.parquet``, ``data/part-*.parquet``)
            or the partitions themselves (paths or ``s3://`` URIs).
        engine: ``"local"`` (one partition after the other in this process), ``"ray"``,
            or an :class:`~forgeline.engines.Engine`.
        ray_address: the Ray cluster for ``engine="ray"``.
        config: thresholds, methods, alert rules (its windows are not cut, see the module
            docstring).
        reference: a profile dict or a DataFrame instead of the model's training profile.
        progress: told of the partitions as they are done: one task, ``"partitions"``.

    Raises:
        NotFound: no partition matches.
        InvalidInput: a partition is not Parquet or lacks signature columns; no rows; an
            unreachable Ray cluster.
        StoreError: object storage refused the credentials, or the bucket does not exist.
    """
    config = config or MonitorConfig()
    named = [partitions] if isinstance(partitions, str) else list(partitions)
    runner = partition_engine(engine, ray_address,
                              any(str(s).startswith("s3://") for s in named))
    sources = find_partitions(partitions) if isinstance(partitions, str) else named
    if not sources:
        raise InvalidInput("No partitions to monitor.")
    predictor = ref_or_predictor if isinstance(ref_or_predictor, Predictor) else load_model(
        ref_or_predictor, lazy=True)
    sig = predictor.signature
    ref = build_reference(predictor.profile, sig, reference)
    jobs, skipped = column_jobs(sig.inputs, ref, sig.names)
    section = ref.profile.get("prediction")
    event = event_column(ref, predictor.profile)
    plan = _Plan(sig, tuple(jobs), tuple((c.name, c.kind, c.dtype) for c in sig.inputs),
                 section, sig.classes, config, event)
    progress = progress if progress is not None else Progress()
    progress.task("partitions", total=len(sources), unit="partitions")
    try:
        parts = runner.map(partial(summarize, plan), sources,
                           lambda i, _: progress.advance(1, info=sources[i].rsplit("/", 1)[-1]))
    finally:
        progress.done()
    rows = sum(p.rows for p in parts)
    if rows == 0:
        raise InvalidInput(f"The {len(parts)} partition(s) have no rows: nothing to monitor.")
    parts = [p for p in parts if p.rows]
    warnings: list[str] = []
    unmonitored = {k: v for p in parts for k, v in p.unmonitored.items()}
    binned, features = {}, {}
    for name, stats, _ in jobs:
        if name in unmonitored:
            continue
        merged = _merged(parts, name)
        if merged is None:
            skipped[name] = f"{stats.get('kind')} columns have no drift check"
            continue
        binned[name] = merged[0]
        features[name] = feature_drift(merged[0], config, merged[1])
    skipped.update(unmonitored)
    pred = _merged(parts, "prediction")
    prediction: FeatureDrift | None = None
    if pred is not None:
        prediction = feature_drift(pred[0], config, pred[1])
    inputs = [i for i in plan.inputs if i[0] not in unmonitored]
    facts = {n: ColumnFacts.merge(p.facts[n] for p in parts) for n, _, _ in inputs}
    columns = list(dict.fromkeys(c for p in parts for c in p.columns))
    clock, period = _clock_and_period(parts, warnings)
    ignore = expected_columns(sig.target, "request_id", config, clock, event, unmonitored)
    checked = judge_quality(columns, facts, inputs, ref.profile, binned, config, ignore)
    if config.window is not None:
        warnings.append(f"no windows over time: the {len(sources)} partitions are monitored "
                        "as one whole (a window may span partitions)")
    if ref.profile.get("multivariate"):
        warnings.append("multivariate drift skipped: it samples rows across the whole data, "
                        "which a partitioned run does not hold")
    warnings.append("the share of duplicated rows is not computed: a row's duplicate may be "
                    "in another partition")
    sample = _attribution_sample(parts, config.attribution_rows)
    attribution = (None if sample is None
                   else attribution_drift(predictor, sample, config, warnings))
    return conclude(predictor, ref, config, rows=rows, period=period, clock=clock,
                    features=features, skipped=skipped, prediction=prediction,
                    quality=checked, warnings=warnings, attribution=attribution)
