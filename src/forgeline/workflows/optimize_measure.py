"""How ``forgeline optimize`` measures a candidate: every one the same way, in one run.

- score: the spec's metric on the teacher's untouched test split (and every other metric
  of the task, for the package's ``metrics.json``), from one prediction;
- single-row latency p50/p99: ``calls`` one-row predictions through the runtime the
  server would pick for the candidate's package (:func:`select_runtime`, auto), on
  validated test rows (the server validates each request before the runtime), in rounds
  interleaved across the candidates;
- batch throughput: a ``batch_rows``-row batch (test rows drawn with replacement) through
  the loaded package (:class:`~forgeline.packaging.Predictor`, validation included), the
  best of two timed calls after a warm-up;
- size on disk: the bytes of the package's files (:func:`save_package`);
- peak memory: a fresh child process loads the package and predicts the batch; its
  ``ru_maxrss`` (native memory included, which ``tracemalloc`` does not see), and how much
  of it is above what the process had with the libraries loaded (see :data:`_SERVER`).
"""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgeline.entities import Task
from forgeline.metrics import Metric
from forgeline.optimization.candidate import Candidate
from forgeline.packaging import load_model, save_package
from forgeline.packaging.package import ATTRIBUTIONS_FILE, PRIVACY_FILE
from forgeline.packaging.predictor import Predictor
from forgeline.serving.runtime import select_runtime
from forgeline.training.evaluate import task_scores

__all__ = ["Measurement", "Measurer"]

# A small fork server: a child process that loads the libraries once, then forks one
# grandchild per package, which loads it and scores the batch. Each grandchild starts at
# the server's resident size (fork copies its high-water mark), so every candidate is
# measured from the same base, without an interpreter start per candidate; and nothing
# of the caller's ``__main__`` is imported again (a script needs no ``__main__`` guard).
_SERVER = """
import json, os, resource, sys
import pandas as pd
import pyarrow.parquet, sklearn.compose, sklearn.pipeline, skops.io
from forgeline.packaging import load_model

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

print("ready", flush=True)
for line in sys.stdin:
    directory, batch_path = json.loads(line)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read)
            before = peak()
            predictor = load_model(directory)
            batch = pd.read_parquet(batch_path)
            if predictor.signature.is_classifier:
                predictor.predict_proba(batch)
            else:
                predictor.predict(batch)
            os.write(write, f"{before} {peak()}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as answer:
        text = answer.read()
    os.waitpid(pid, 0)
    print(text or "failed", flush=True)
"""


@dataclass
class Measurement:
    """One row of the trade-off table."""

    name: str
    technique: str
    detail: str
    params: dict[str, Any]
    score: float
    change: float  # score minus the teacher's
    drop: float  # how much worse than the teacher (negative: better), in the metric's sense
    latency_p50_ms: float
    latency_p99_ms: float
    rows_per_s: float
    package_bytes: int
    peak_memory_mb: float | None  # the child's peak resident memory, libraries included
    model_memory_mb: float | None  # of which above what the libraries alone take
    runtime: str  # the runtime the server picks for it, and why
    within_budget: bool = False
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


class Measurer:
    """Measures candidates against one teacher (``teacher`` is the loaded version).

    Args:
        teacher: the teacher's predictor (its signature, profile and privacy record are
            every candidate's).
        X_test, y_test: the test split's inputs and target.
        task, metric: what the score is.
        folder: where each candidate's package is written (one sub-folder each).
        calls: single-row predictions timed per candidate.
        batch_rows: the rows of the batch.
        memory: measure peak memory in a child process.
        seed: draws the batch's rows.
    """

    def __init__(self, teacher: Predictor, X_test: pd.DataFrame, y_test: pd.Series,
                 task: Task, metric: Metric, folder: Path, *, calls: int = 300,
                 batch_rows: int = 10_000, memory: bool = True, seed: int = 0) -> None:
        self.teacher, self.task, self.metric = teacher, task, metric
        self.X_test, self.y_test = X_test, y_test
        self.folder, self.calls, self.memory = folder, calls, memory
        validated = teacher.signature.validate(X_test)
        self.rows = [validated.iloc[[i]] for i in range(min(len(validated), 200))]
        self.batch = X_test.sample(batch_rows, replace=True, random_state=seed)
        self.batch_path = folder / "batch.parquet"
        self.batch.reset_index(drop=True).to_parquet(self.batch_path, index=False)
        self.privacy = teacher.privacy
        self.reference: float | None = None  # the teacher's score, once measured
        self._server: subprocess.Popen[str] | None = None

    def package(self, candidate: Candidate, metrics: dict[str, float], card: str, *,
                folder: str | None = None, more: Mapping[str, str] | None = None) -> Path:
        """The candidate as a model package (the teacher's signature, profile, privacy),
        in ``folder`` (default: the candidate's name), with ``more`` files."""
        directory = self.folder / (folder or candidate.name)
        extra = ({PRIVACY_FILE: json.dumps(self.privacy, indent=2)}
                 if self.privacy.get("policy") is not None else {})
        return save_package(directory, candidate.model, self.teacher.signature,
                            profile=self.teacher.profile, metrics=metrics, card=card,
                            extra_files={**extra, **(more or {})})

    def final_package(self, candidate: Candidate, measured: Measurement,
                      attributions: dict[str, Any] | None) -> Path:
        """The chosen candidate's package as it is registered: with its own global
        attributions (``attributions.json``, what monitoring's attribution drift compares
        with), which the measured packages leave out to keep measuring fast."""
        more = {} if attributions is None else {
            ATTRIBUTIONS_FILE: json.dumps(attributions, indent=2)}
        return self.package(candidate, measured.metrics,
                            _card(candidate, self.metric.name, measured.score),
                            folder=f"{candidate.name}.registered", more=more)

    def measure(self, candidate: Candidate) -> tuple[Measurement, Any]:
        """Everything but the latency (see :meth:`latencies`); and the runtime to time."""
        metrics = {name: value for name, value in task_scores(  # defined ones: JSON
            candidate.model, self.X_test, self.y_test, self.task).items()
            if not math.isnan(value)}
        score = metrics.get(self.metric.name, float("nan"))
        if self.reference is None:
            self.reference = score  # the first candidate measured is the teacher
        change = score - self.reference
        drop = -change if self.metric.greater_is_better else change
        card = _card(candidate, self.metric.name, score)
        directory = self.package(candidate, metrics, card)
        predictor = load_model(directory)
        runtime = select_runtime(predictor)
        measured = Measurement(candidate.name, candidate.technique, candidate.detail,
                               dict(candidate.params), score, change, drop, float("nan"),
                               float("nan"), self._throughput(predictor), _bytes(directory),
                               *self._peak_memory(directory), runtime.detail or runtime.name,
                               metrics=metrics)
        return measured, runtime

    def latencies(self, table: list[Measurement], runtimes: list[Any],
                  rounds: int = 10) -> None:
        """Single-row p50 and p99 of each runtime, into ``table``: the calls are made in
        ``rounds`` interleaved rounds, so a burst of load elsewhere on the machine falls
        on every candidate alike rather than on one."""
        for runtime in runtimes:
            for row in self.rows[:20]:  # warm-up: caches, lazy initialisation
                runtime.predict(row)
        per_round = max(1, self.calls // rounds)
        times = [np.empty(per_round * rounds) for _ in runtimes]
        for r in range(rounds):
            for runtime, out in zip(runtimes, times, strict=True):
                for i in range(r * per_round, (r + 1) * per_round):
                    row = self.rows[i % len(self.rows)]
                    start = time.perf_counter()
                    runtime.predict(row)
                    out[i] = time.perf_counter() - start
        for m, out in zip(table, times, strict=True):
            m.latency_p50_ms = float(np.percentile(out, 50) * 1e3)
            m.latency_p99_ms = float(np.percentile(out, 99) * 1e3)

    def _throughput(self, predictor: Predictor) -> float:
        call = (predictor.predict_proba if predictor.signature.is_classifier
                else predictor.predict)
        call(self.batch.iloc[:100])
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            call(self.batch)
            best = min(best, time.perf_counter() - start)
        return len(self.batch) / best

    def _peak_memory(self, directory: Path) -> tuple[float | None, float | None]:
        """(peak, above the libraries) in MB, from a fresh process forked per candidate by
        :data:`_SERVER` (ru_maxrss never goes down, so one process per candidate)."""
        if not self.memory:
            return None, None
        try:
            if self._server is None:
                self._server = subprocess.Popen(
                    [sys.executable, "-c", _SERVER], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                assert self._server.stdout is not None
                self._server.stdout.readline()  # "ready": the libraries are loaded
            assert self._server.stdin is not None and self._server.stdout is not None
            self._server.stdin.write(json.dumps([str(directory), str(self.batch_path)]) + "\n")
            self._server.stdin.flush()
            before, after = (int(v) for v in self._server.stdout.readline().split())
        except (OSError, ValueError, AssertionError):  # no figure, not a failed run
            return None, None
        return after / 1024, max(after - before, 0) / 1024  # KiB on Linux

    def close(self) -> None:
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.stdin.close()  # type: ignore[union-attr]
            try:
                self._server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()
            self._server = None


def _card(candidate: Candidate, metric: str, score: float) -> str:
    params = ", ".join(f"{k}={v}" for k, v in candidate.params.items())
    return (f"# {candidate.name}\n\n{candidate.detail}.\n\n- technique: {candidate.technique}"
            f"\n- test {metric}: {score:.4f}\n- parameters: {params or '-'}\n")
