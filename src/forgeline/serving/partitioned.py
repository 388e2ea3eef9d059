"""Batch scoring of a dataset in Parquet partitions, one task per partition:
``forgeline predict fraud@champion 's3://bucket/events/*.parquet' -o s3://bucket/scores/
--engine ray``.

Each task reads one partition (a local file or an ``s3://`` object, see
:mod:`forgeline.data.partitions`), checks its columns against the model's signature,
scores it in chunks and writes ``<output>/<its name>.scores.parquet``, keeping the inputs'
layout under the pattern's root (``2024/01/part-0.parquet`` gives
``2024/01/part-0.scores.parquet``). A local output is written under a temporary name and
renamed into place; an S3 object is uploaded whole (in parts when large) and is visible
only once complete. If any partition fails, the outputs this run wrote are deleted, and
an output location that already holds one of the outputs is refused before anything runs,
so a run leaves either every output or none of its own.

The model goes to the workers as its package's files, in the task function that the engine
sends once per run, and is loaded (its manifest checked) once per worker process: a
cluster needs no shared filesystem and no access to the registry. The object storage
settings of this process (its AWS_* variables) are handed to Ray's workers with the tasks
(:func:`~forgeline.data.partitions.partition_engine`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from forgeline.data.partitions import (
    find_partitions,
    partition_engine,
    partition_name,
    read_partition,
)
from forgeline.errors import AlreadyExists, InvalidInput
from forgeline.packaging.package import MANIFEST_FILE
from forgeline.packaging.predictor import Predictor, load_model
from forgeline.serving.batch import (
    ScoreSummary,
    _check_columns,
    _Chunk,
    _empty_schema,
    _Plan,
    _proba_names,
    _score_chunk,
    _Writer,
)
from forgeline.serving.runtime import select_runtime
from forgeline.store.s3 import delete_objects, list_matching, write_object
from forgeline.util.files import atomic_path
from forgeline.util.progress import Progress

if TYPE_CHECKING:
    from forgeline.tracking.client import Client

__all__ = ["score_partitions"]

SUFFIX = ".scores.parquet"


@dataclass(frozen=True)
class _Package:
    """A model package's files, to be written out and loaded where a task runs."""

    digest: str  # the sha256 of its manifest: one folder per package on each worker
    files: dict[str, bytes]

    @classmethod
    def of(cls, directory: Path) -> _Package:
        files = {p.relative_to(directory).as_posix(): p.read_bytes()
                 for p in sorted(directory.rglob("*")) if p.is_file()}
        return cls(hashlib.sha256(files[MANIFEST_FILE]).hexdigest(), files)

    def folder(self) -> Path:
        """The package written out in this machine's temporary folder (once)."""
        target = Path(tempfile.gettempdir()) / "forgeline-packages" / self.digest
        if not (target / MANIFEST_FILE).is_file():
            with atomic_path(target, directory=True, replace=False) as tmp:
                for name, data in self.files.items():
                    (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                    (tmp / name).write_bytes(data)
        return target


@dataclass(frozen=True)
class _Job:
    """What every partition's task shares."""

    package: _Package
    runtime: str
    keys: tuple[str, ...] | None
    chunk_rows: int


_LOADED: dict[tuple[str, str], tuple[Predictor, object]] = {}  # per worker process


def _score_partition(job: _Job, task: tuple[str, str]) -> int:
    """Score one partition into its output (runs where the engine puts it); its rows."""
    import pyarrow as pa

    source, target = task
    key = (job.package.digest, job.runtime)
    if key not in _LOADED:
        predictor = load_model(job.package.folder())
        _LOADED[key] = (predictor, select_runtime(predictor, job.runtime))
    predictor, runtime = _LOADED[key]
    frame = read_partition(source)
    keys = _check_columns(predictor, list(frame.columns), job.keys, source)
    plan = _Plan(predictor, runtime, keys, _proba_names(predictor))  # type: ignore[arg-type]
    names = list(predictor.signature.names)
    key_table = pa.Table.from_pandas(frame[list(keys)], preserve_index=False)
    with contextlib.ExitStack() as stack:
        s3 = target.startswith("s3://")
        path = (Path(stack.enter_context(tempfile.TemporaryDirectory())) / "part.parquet"
                if s3 else stack.enter_context(atomic_path(target)))
        writer = _Writer(path, "parquet")
        try:
            for start in range(0, len(frame), job.chunk_rows):
                chunk = _Chunk(frame.iloc[start:start + job.chunk_rows][names],
                               key_table.slice(start, job.chunk_rows), start)
                writer.write(_score_chunk(plan, chunk))
            writer.close(_empty_schema(plan, key_table.schema))
        finally:
            writer.abort()
        if s3:
            write_object(path, target)
    return len(frame)


def _targets(pattern: str, sources: list[str], output: str) -> list[str]:
    if not output.startswith("s3://"):
        output = os.path.abspath(os.path.expanduser(output))
    targets = []
    for source in sources:
        name = partition_name(pattern, source)
        stem = name[: -len(".parquet")] if name.endswith(".parquet") else name
        targets.append(f"{output.rstrip('/')}/{stem}{SUFFIX}")
    inputs = {s if s.startswith("s3://") else os.path.abspath(s) for s in sources}
    clash = [t for t in targets if t in inputs]
    if clash:
        raise InvalidInput(f"The output {clash[0]} would overwrite an input partition.",
                           hint="Write the scores under another folder or prefix (-o).")
    return targets


def _existing(targets: list[str], output: str) -> list[str]:
    if output.startswith("s3://"):
        present = set(list_matching(output.rstrip("/") + "/*"))
        return [t for t in targets if t in present]
    return [t for t in targets if Path(t).exists()]


def _remove(targets: list[str], output: str) -> None:
    """Delete the outputs of ``targets`` that were written."""
    written = _existing(targets, output)
    if output.startswith("s3://"):
        delete_objects(written)
    else:
        for target in written:
            Path(target).unlink(missing_ok=True)


def score_partitions(ref_or_predictor: str | Path | Predictor, pattern: str, output: str, *,
                     keys: Sequence[str] | None = None, chunk_rows: int = 100_000,
                     engine: str = "local", runtime: str = "auto",
                     progress: Progress | None = None, client: Client | None = None,
                     ray_address: str | None = None) -> ScoreSummary:
    """Score every partition ``pattern`` names into ``output`` (see the module docstring).

    Args:
        ref_or_predictor: a loaded Predictor, a package directory or a model reference.
        pattern: ``s3://bucket/prefix/*.parquet`` or a local glob of Parquet files.
        output: a folder or an ``s3://bucket/prefix`` for the outputs.
        keys: input columns copied next to the predictions (default: every input column
            that is not a model input).
        chunk_rows: rows scored at a time within a partition.
        engine: ``"local"`` (one partition at a time in this process) or ``"ray"``.
        runtime: ``"auto"``, ``"onnx"`` or ``"native"``.
        progress: told of each partition done.
        client: the registry to resolve a model reference in.
        ray_address: the Ray cluster for ``engine="ray"``.

    Raises:
        NotFound: no partition matches, no such model.
        AlreadyExists: an output is there already.
        InvalidInput: a partition that is not Parquet or lacks the model's columns (named),
            an output over an input, an unknown engine; StoreError: object storage refused.
    """
    if chunk_rows < 1:
        raise InvalidInput(f"chunk_rows must be at least 1, got {chunk_rows}.")
    if engine not in ("local", "ray"):
        raise InvalidInput(f"Unknown engine {engine!r}.", hint="Use local or ray.")
    predictor = ref_or_predictor if isinstance(ref_or_predictor, Predictor) else (
        load_model(ref_or_predictor, client))
    if predictor.path is None or not Path(predictor.path).is_dir():
        raise InvalidInput("Scoring partitions needs the model as a package directory.")
    chosen = select_runtime(predictor, runtime).name  # an unusable runtime fails here
    sources = find_partitions(pattern)
    targets = _targets(pattern, sources, output)
    there = _existing(targets, output)
    if there:
        raise AlreadyExists(f"{there[0]} exists already ({len(there)} of the outputs do).",
                            hint="Write the scores under a new folder or prefix (-o), or "
                                 "remove the old scores.")
    runner = partition_engine(engine, ray_address,
                              output.startswith("s3://") or pattern.startswith("s3://"))
    job = _Job(_Package.of(Path(predictor.path)),
               "onnx" if chosen == "onnxruntime" else "native",
               None if keys is None else tuple(keys), chunk_rows)
    progress = progress if progress is not None else Progress()
    progress.task("scoring", total=len(sources), unit="partitions")
    started = time.monotonic()
    try:
        counts = runner.map(functools.partial(_score_partition, job),
                            list(zip(sources, targets, strict=True)),
                            on_done=lambda _i, _n: progress.advance(1))
    except BaseException:
        _remove(targets, output)  # every output or none
        raise
    finally:
        progress.done()
    seconds = time.monotonic() - started
    rows = int(sum(counts))
    return ScoreSummary(rows, seconds, rows / seconds if seconds > 0 else float("inf"),
                        output, chosen)
