"""Batch scoring: a Parquet or CSV file in, its key columns and the predictions out.

The input streams through in chunks (Parquet row-group batches, CSV chunks), so memory
holds a few chunks at a time whatever the file's size: the local engine's threads score
chunks (with ONNX Runtime, one per core) while the next is read, and the results are
written in order (:meth:`LocalEngine.imap <forgeline.engines.LocalEngine.imap>`, a window
of ``threads + 1`` chunks). The schema is checked before the first row is scored; the
output is written under a temporary name and renamed into place when complete
(:func:`~forgeline.util.files.atomic_path`). With ``engine="ray"`` (Parquet input), ranges
of row groups go to Ray tasks that each read, score and write a part; the driver then
joins the parts in order. Progress goes to a :class:`~forgeline.util.progress.Progress`.

Output columns: the key columns (by default every input column that is not a model
input), ``prediction``, and ``proba_<class>`` per class for classifiers.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from forgeline.engines import LocalEngine, available_cores, get_engine
from forgeline.errors import InvalidInput
from forgeline.packaging.predictor import Predictor, load_model
from forgeline.serving.runtime import Runtime, select_runtime
from forgeline.store.predictions import PREDICTION, proba_columns
from forgeline.store.predictions.format import PROBA_PREFIX
from forgeline.util.files import atomic_path
from forgeline.util.progress import Progress

if TYPE_CHECKING:
    import pyarrow as pa

    from forgeline.packaging.explain import Explainer
    from forgeline.tracking.client import Client

__all__ = ["ScoreSummary", "score_file"]

_PARQUET = (".parquet", ".pq")
_CSV = (".csv",)
_CSV_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class ScoreSummary:
    """What a batch scoring did: rows scored, the scoring time (model loading excluded),
    throughput, the output file and the runtime that scored."""

    rows: int
    seconds: float
    rows_per_s: float
    output: Path | str  # a file, or a folder or s3:// prefix of partitions' scores
    runtime: str = "native"


@dataclass(frozen=True, slots=True)
class _Plan:
    """What every chunk needs: the model, the columns to keep, the output names."""

    predictor: Predictor
    runtime: Runtime
    keys: tuple[str, ...]
    proba_names: tuple[str, ...]
    explainer: Explainer | None = None  # adds contrib_<column> and base_value


def score_file(ref_or_predictor: str | Path | Predictor, input: Path, output: Path, *,
               keys: Sequence[str] | None = None, chunk_rows: int = 100_000,
               engine: str = "local", runtime: str = "auto", progress: Progress | None = None,
               client: Client | None = None, ray_address: str | None = None,
               explain: bool = False) -> ScoreSummary:
    """Score every row of ``input`` and write ``output`` (Parquet, or CSV by its suffix).

    Args:
        ref_or_predictor: a loaded Predictor, a package directory or a model reference.
        input: a ``.parquet``/``.pq`` or ``.csv`` file.
        output: where the scores go; ``.csv`` writes CSV, anything else Parquet.
        keys: input columns copied next to the predictions (default: every input column
            that is not a model input).
        chunk_rows: rows per chunk (Parquet batches, CSV chunks); memory holds one chunk
            per scoring thread plus the one being read.
        engine: ``"local"`` (this process) or ``"ray"`` (Parquet input only).
        runtime: ``"auto"``, ``"onnx"`` or ``"native"`` (see ``select_runtime``).
        progress: told of the scoring as it goes: one task, ``"scoring"``, counted in
            rows (Parquet) or bytes read (CSV); None: :class:`Progress`, which logs.
        client: the registry to resolve a model reference in.
        ray_address: the Ray cluster for ``engine="ray"`` (None: local or RAY_ADDRESS).
        explain: add each input column's contribution (``contrib_<column>``) and the base
            value (``base_value``) of every row, in the units of
            :mod:`forgeline.packaging.explain` (local engine only).

    Raises:
        InvalidInput: an unknown format or engine, ``output`` equal to ``input``, model
            columns missing from the input, unknown keys, or values that do not convert
            (naming the rows), all before anything is written.
        NotFound: no such input file or model.
    """
    input, output = Path(input), Path(output)
    kind = _format(input, "input")
    if not input.is_file():
        from forgeline.errors import NotFound

        raise NotFound(f"No input file {input}.")
    if output.resolve() == input.resolve():
        raise InvalidInput(f"The output {output} is the input file.",
                           hint="Write the scores to another file.")
    if chunk_rows < 1:
        raise InvalidInput(f"chunk_rows must be at least 1, got {chunk_rows}.")
    if engine not in ("local", "ray"):
        raise InvalidInput(f"Unknown engine {engine!r}.", hint="Use local or ray.")
    if engine == "ray" and kind != "parquet":
        raise InvalidInput("engine='ray' reads Parquet input (split by row groups).",
                           hint="Convert the CSV to Parquet, or use engine='local'.")
    if explain and engine != "local":
        raise InvalidInput("Explanations are computed with engine='local' only.",
                           hint="Drop --explain, or score with the local engine.")
    predictor = ref_or_predictor if isinstance(ref_or_predictor, Predictor) else (
        load_model(ref_or_predictor, client))
    columns = _columns(input, kind)
    key_names = _check_columns(predictor, columns, keys, input)
    explainer = None
    if explain:
        from forgeline.packaging.explain import Explainer

        explainer = Explainer(predictor)
    plan = _Plan(predictor, select_runtime(predictor, runtime), key_names,
                 _proba_names(predictor), explainer)
    import pyarrow.parquet as pq

    progress = progress if progress is not None else Progress()
    started = time.monotonic()
    with atomic_path(output) as tmp:
        writer = _Writer(tmp, "csv" if output.suffix.lower() in _CSV else "parquet")
        try:
            rows = (_score_local(plan, input, kind, writer, chunk_rows, progress)
                    if engine == "local" else
                    _score_ray(plan, input, writer, chunk_rows, progress, ray_address))
            writer.close(_empty_schema(plan, pq.read_schema(input) if kind == "parquet"
                                       else None))
        finally:
            writer.abort()
            progress.done()
    seconds = time.monotonic() - started
    return ScoreSummary(rows, seconds, rows / seconds if seconds > 0 else float("inf"),
                        output, plan.runtime.name)


# -- checking up front ------------------------------------------------------------------
def _format(path: Path, what: str) -> str:
    suffix = path.suffix.lower()
    if suffix in _PARQUET:
        return "parquet"
    if suffix in _CSV:
        return "csv"
    raise InvalidInput(f"Cannot read {path}: the {what} must be a Parquet (.parquet, .pq) "
                       "or CSV (.csv) file.")


def _columns(path: Path, kind: str) -> list[str]:
    """The input's column names, from its schema or header alone."""
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except Exception as e:  # ArrowInvalid and OSError: not a Parquet file
            raise InvalidInput(f"Cannot read {path} as Parquet: {e}") from e
    import csv

    with open(path, newline="", encoding="utf-8-sig") as f:
        header = next(csv.reader(f), None)
    if not header:
        raise InvalidInput(f"{path} is empty: a CSV file needs a header line.")
    return header


def _check_columns(predictor: Predictor, columns: list[str], keys: Sequence[str] | None,
                   path: Path | str) -> tuple[str, ...]:
    names = predictor.signature.names
    present = set(columns)
    missing = [n for n in names if n not in present]
    if missing:
        raise InvalidInput(f"{path} lacks {len(missing)} of the model's columns: "
                           f"{', '.join(missing[:20])}{' ...' if len(missing) > 20 else ''}.",
                           hint=f"The model takes {', '.join(names[:20])}.")
    if keys is None:
        chosen = [c for c in columns if c not in set(names)]
    else:
        chosen = list(dict.fromkeys(keys))
        unknown = [k for k in chosen if k not in present]
        if unknown:
            raise InvalidInput(f"Key column{'s' if len(unknown) > 1 else ''} "
                               f"{', '.join(map(repr, unknown))} not in {path}.",
                               hint=f"Its columns: {', '.join(columns[:30])}.")
    clash = [k for k in chosen if k == PREDICTION or k.startswith(PROBA_PREFIX)]
    if clash:
        raise InvalidInput(f"Key column {clash[0]!r} would clash with the output's "
                           "prediction columns.", hint="Choose other key columns (keys).")
    return tuple(chosen)


def _proba_names(predictor: Predictor) -> tuple[str, ...]:
    signature = predictor.signature
    if not signature.is_classifier:
        return ()
    classes = signature.classes or tuple(getattr(predictor.model, "classes_", ()))
    return tuple(proba_columns(classes))


# -- scoring ------------------------------------------------------------------------------
class _Chunk(NamedTuple):
    """Rows to score: the model's inputs, the key columns, the first row's number."""

    inputs: pd.DataFrame
    keys: pa.Table
    first_row: int


def _numbered(chunks: Iterable[tuple[pd.DataFrame, pa.Table]], first_row: int = 0
              ) -> Iterator[_Chunk]:
    for inputs, keys in chunks:
        yield _Chunk(inputs, keys, first_row)
        first_row += len(inputs)


def _score_chunk(plan: _Plan, chunk: _Chunk) -> pa.Table:
    import pyarrow as pa

    inputs, keys, first_row = chunk
    try:
        frame = plan.predictor.signature.validate(inputs)
    except InvalidInput as e:
        raise InvalidInput(f"Rows {first_row}-{first_row + len(inputs) - 1}: {e.message}",
                           hint=e.hint) from None
    prediction = plan.runtime.predict(frame)
    labels = pa.array(_plain(prediction.labels))
    # no key columns: an empty table has no rows to append a column to
    table = (keys.append_column(PREDICTION, labels) if keys.num_columns
             else pa.table({PREDICTION: labels}))
    if prediction.proba is not None:
        for j, name in enumerate(plan.proba_names):
            table = table.append_column(name, pa.array(prediction.proba[:, j],
                                                       type=pa.float64()))
    if plan.explainer is not None:
        contributions = plan.explainer.explain(frame).frame()
        for name in contributions.columns:
            table = table.append_column(name, pa.array(contributions[name].to_numpy(),
                                                       type=pa.float64()))
    return table


def _plain(values: np.ndarray) -> np.ndarray | list[Any]:
    return values.tolist() if values.dtype == object else values


def _parquet_chunks(plan: _Plan, path: Path, chunk_rows: int,
                    row_groups: Sequence[int] | None = None
                    ) -> Iterator[tuple[pd.DataFrame, pa.Table]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = plan.predictor.signature.names
    wanted = list(dict.fromkeys([*names, *plan.keys]))
    # pre_buffer (pyarrow's default) keeps every column chunk it has read until the file
    # is closed: memory would grow with the file. Without it, one row group at a time.
    with pq.ParquetFile(path, pre_buffer=False) as parquet:
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=wanted,
                                          row_groups=row_groups):
            table = pa.Table.from_batches([batch])
            yield table.select(names).to_pandas(), table.select(list(plan.keys))


def _csv_chunks(plan: _Plan, path: Path, chunk_rows: int, advance: Callable[[int], Any]
                ) -> Iterator[tuple[pd.DataFrame, pa.Table]]:
    """CSV in chunks of ``chunk_rows``; key columns as text, as written in the file;
    ``advance(n)`` as each chunk's ``n`` bytes have been read."""
    import pyarrow as pa

    names = plan.predictor.signature.names
    wanted = list(dict.fromkeys([*names, *plan.keys]))
    with open(path, "rb") as f:
        reader = pd.read_csv(f, chunksize=chunk_rows, usecols=wanted,
                             dtype={k: str for k in plan.keys if k not in names},
                             encoding="utf-8-sig")
        position = 0
        for chunk in reader:
            keys = pa.table({k: pa.array(chunk[k], type=pa.string(), from_pandas=True)
                             if k not in names else pa.array(chunk[k], from_pandas=True)
                             for k in plan.keys})
            yield chunk[names], keys
            advance(f.tell() - position)
            position = f.tell()


class _Writer:
    """Parquet (or CSV) written table by table, every table cast to the first's schema."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind, self._writer, self.schema = path, kind, None, None

    def write(self, table: pa.Table) -> None:
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        if self._writer is None:
            self.schema = table.schema
            self._writer = (pcsv.CSVWriter(str(self.path), table.schema) if self.kind == "csv"
                            else pq.ParquetWriter(str(self.path), table.schema,
                                                  compression="zstd"))
        elif table.schema != self.schema:
            table = table.cast(self.schema)
        self._writer.write_table(table)

    def close(self, empty_schema: pa.Schema) -> None:
        if self._writer is None:  # no rows at all: still a valid, empty file
            self.write(empty_schema.empty_table())
        self._writer.close()
        self._writer = None

    def abort(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None


def _empty_schema(plan: _Plan, source: pa.Schema | None) -> pa.Schema:
    """The output's schema with no rows: the key columns typed as in ``source`` (the
    input's schema; None: text, as a CSV's are), the prediction, the probabilities."""
    import pyarrow as pa

    fields = [source.field(k) if source is not None else pa.field(k, pa.string())
              for k in plan.keys]
    classes = plan.predictor.signature.classes
    label = (pa.array(list(classes)).type if classes else pa.float64())
    fields.append(pa.field(PREDICTION, label))
    fields += [pa.field(n, pa.float64()) for n in plan.proba_names]
    if plan.explainer is not None:
        fields += [pa.field(f"contrib_{c}", pa.float64()) for c in plan.explainer.columns]
        fields.append(pa.field("base_value", pa.float64()))
    return pa.schema(fields)


def _scoring_threads(plan: _Plan) -> int:
    """Threads scoring chunks side by side: one per core for ONNX Runtime (each session
    call runs on one core and releases the GIL); one for the native model, whose library
    already spreads a call over the cores (the thread still overlaps reading and writing)."""
    if plan.runtime.name != "onnxruntime":
        return 1
    return max(1, min(available_cores(), 8))


def _score_local(plan: _Plan, path: Path, kind: str, writer: _Writer, chunk_rows: int,
                 progress: Progress) -> int:
    """Read, score and write chunk by chunk: chunks are scored in the engine's threads
    while the next is read (a window of ``threads + 1``: every thread busy while the
    calling thread reads), and written in order; at most ``threads + 1`` chunks are in
    memory besides the one being read."""
    import pyarrow.parquet as pq

    if kind == "parquet":
        progress.task("scoring", total=pq.ParquetFile(path).metadata.num_rows, unit="rows")
        chunks = _parquet_chunks(plan, path, chunk_rows)
    else:
        progress.task("scoring", total=path.stat().st_size, unit="bytes")
        chunks = _csv_chunks(plan, path, chunk_rows, progress.advance)
    threads = _scoring_threads(plan)
    engine = LocalEngine(threads, workers="threads")
    rows = 0
    scored = engine.imap(functools.partial(_score_chunk, plan), _numbered(chunks),
                         window=threads + 1)
    with contextlib.closing(scored):
        for table in scored:
            writer.write(table)
            rows += table.num_rows
            if kind == "parquet":
                progress.advance(table.num_rows)
    return rows


# -- Ray: row-group ranges as tasks -------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Part:
    """One task: score some row groups of ``source`` into the Parquet file ``target``."""

    package: str
    runtime: str
    source: str
    row_groups: tuple[int, ...]
    keys: tuple[str, ...]
    chunk_rows: int
    target: str
    first_row: int


_WORKER_PLANS: dict[tuple[str, str, tuple[str, ...]], _Plan] = {}  # per worker process


def _score_part(part: _Part) -> int:
    """Score one part (runs in a Ray worker); the number of rows written."""
    import pyarrow.parquet as pq

    key = (part.package, part.runtime, part.keys)
    plan = _WORKER_PLANS.get(key)
    if plan is None:
        predictor = load_model(Path(part.package))
        plan = _Plan(predictor, select_runtime(predictor, part.runtime), part.keys,
                     _proba_names(predictor))
        _WORKER_PLANS[key] = plan
    rows, writer = 0, None
    source = Path(part.source)
    with atomic_path(part.target) as tmp:
        try:
            for chunk in _numbered(_parquet_chunks(plan, source, part.chunk_rows,
                                                   part.row_groups), part.first_row):
                table = _score_chunk(plan, chunk)
                if writer is None:
                    writer = pq.ParquetWriter(str(tmp), table.schema)
                writer.write_table(table.cast(writer.schema))
                rows += len(chunk.inputs)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:  # row groups without rows: an empty part all the same
            pq.write_table(_empty_schema(plan, pq.read_schema(source)).empty_table(),
                           str(tmp))
    return rows


def _parts(plan: _Plan, path: Path, chunk_rows: int, directory: Path, runtime: str
           ) -> list[_Part]:
    """Consecutive row groups, about ``chunk_rows`` rows (at least one group) per part."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    parts, groups, rows, first = [], [], 0, 0
    for g in range(meta.num_row_groups):
        groups.append(g)
        rows += meta.row_group(g).num_rows
        if rows >= chunk_rows or g == meta.num_row_groups - 1:
            parts.append(_Part(str(plan.predictor.path.absolute()), runtime,
                               str(path.absolute()), tuple(groups), plan.keys, chunk_rows,
                               str(directory / f"part-{len(parts):05d}.parquet"), first))
            first += rows
            groups, rows = [], 0
    return parts


def _score_ray(plan: _Plan, path: Path, writer: _Writer, chunk_rows: int,
               progress: Progress, address: str | None) -> int:
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    if plan.predictor.path is None or not Path(plan.predictor.path).is_dir():
        raise InvalidInput("engine='ray' needs the model as a package directory the "
                           "workers can read.")
    # the workers serve what the driver chose, and check it again where they run
    chosen = "onnx" if plan.runtime.name == "onnxruntime" else "native"
    directory = writer.path.with_name(writer.path.name + ".parts")
    directory.mkdir()
    try:
        parts = _parts(plan, path, chunk_rows, directory, chosen)
        progress.task("scoring", total=pq.ParquetFile(path).metadata.num_rows, unit="rows")
        counts = get_engine("ray", address=address).map(
            _score_part, parts, on_done=lambda _, n: progress.advance(n))
        for part, count in zip(parts, counts, strict=True):
            if count:
                with pq.ParquetFile(part.target, pre_buffer=False) as source:
                    for batch in source.iter_batches(batch_size=chunk_rows):
                        writer.write(pa.Table.from_batches([batch]))
        return int(sum(counts))
    finally:
        shutil.rmtree(directory, ignore_errors=True)

