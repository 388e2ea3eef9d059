"""``forgeline label SPEC``: label a data set from functions, an LLM, existing and human
labels, and record it like any other data set.

load → labelling functions → the LLM (answers cached under the home's cache folder) →
existing labels → gold (a column and/or reviewed CSVs) → the label model (``auto``: with
gold, whichever of Dawid-Skene and majority vote is more accurate on it; without, Dawid-
Skene from three sources on, majority vote below) → label errors of the existing labels
(cleanlab) → the review queue → the output table → one tracking run.

Everything that can fail on the user's input (a missing column, a functions file that does
not import, an LLM that answers nothing, an unknown gold class) fails before anything is
written: the output file is written atomically, then the run is recorded (``forgeline.kind
= label``) with the output as its ``labels`` data set and the tag
``forgeline.labels.digest``, which is how ``forgeline train`` finds, through any store,
that a table it loads was produced here (:mod:`forgeline.workflows.label_lineage`).

The output has every input row and column plus ``<column>`` (the label; null below the
threshold or where no source voted; the human label on gold rows) and
``<column>_confidence``. An LLM endpoint that fails on some rows leaves those rows to the
other sources (counted in the report, a warning line); one that labels no row at all is an
:class:`~forgeline.errors.UpstreamError`: a run without the source the spec asked for
would be quietly worse.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgeline.data.io import load_table
from forgeline.data.versioning import dataset_version
from forgeline.entities import Dataset
from forgeline.errors import InvalidInput
from forgeline.labeling.label_model import Labels, combine
from forgeline.labeling.matrix import ABSTAIN, LabelMatrix, Source
from forgeline.labeling.review import merge_gold, read_review, review_queue, write_review
from forgeline.labeling.sources import apply_functions, load_functions
from forgeline.labeling.spec import LabelSpec, load_label_spec
from forgeline.reports.labeling import render_labeling_report
from forgeline.tracking.client import Client
from forgeline.util.files import atomic_path
from forgeline.util.progress import Progress
from forgeline.workflows import label_summary as summary
from forgeline.workflows.label_lineage import DIGEST_TAG, LLM_TAG, SOURCES_TAG
from forgeline.workflows.label_llm import LLMRun, ask_llm

__all__ = ["LabelResult", "label"]

KIND = "label"


@dataclass(frozen=True)
class LabelResult:
    """What a labelling run produced: the run, the output file and its version, the
    ``labels.json`` summary, the report (a local copy), the
    review queue and the warnings worth a line each."""

    run_id: str
    output: Path
    dataset: Dataset
    summary: dict[str, Any]
    report: Path
    review: pd.DataFrame | None
    review_file: Path | None = None
    warnings: tuple[str, ...] = field(default=())


def _frame(spec: LabelSpec) -> pd.DataFrame:
    """The data with its row ids as the index (the id column, else the row number)."""
    frame = load_table(spec.data.path)
    wanted = {"data.text": spec.data.text, "data.id": spec.data.id,
              "gold.column": spec.gold.column,
              "labels.column": spec.labels.column if spec.labels else None}
    for key, column in wanted.items():
        if column is not None and column not in frame.columns:
            raise InvalidInput(f"{key} {column!r} is not a column of {spec.data.path}.",
                               hint=f"Columns: {', '.join(map(str, frame.columns[:20]))}.")
    if spec.output.column in frame.columns:
        raise InvalidInput(f"The output column {spec.output.column!r} is already a column of "
                           f"{spec.data.path}.", hint="Set output.column to a new name.")
    if spec.data.id is None:
        return frame.rename_axis("row")
    ids = frame[spec.data.id]
    if ids.isna().any() or ids.duplicated().any():
        raise InvalidInput(f"The id column {spec.data.id!r} has missing or repeated values.",
                           hint="Give a column with one distinct id per row, or leave data.id "
                                "out to use the row number.")
    return frame.set_index(pd.Index(ids, name=spec.data.id), drop=False)


def _as_text(column: pd.Series) -> pd.Series:
    """Labels as class names: a number column with gaps (read as floats) gives ``1``, not
    ``1.0``, for the class ``"1"``; missing stays missing."""
    if pd.api.types.is_float_dtype(column):
        known = column.dropna()
        if (known == known.round()).all():
            return column.astype("Int64").astype("string")
    return column.astype("string")


def _gold(spec: LabelSpec, frame: pd.DataFrame, imported: Sequence[Path]) -> pd.Series | None:
    gold: pd.Series | None = None
    if spec.gold.column is not None:
        column = _as_text(frame[spec.gold.column])
        gold = column[column.notna()].rename("gold")
    for path in (*([spec.gold.file] if spec.gold.file else []), *imported):
        gold = merge_gold(gold, read_review(path, ids=frame.index, classes=spec.classes))
    if gold is not None and len(gold):
        bad = sorted(set(gold.astype(str)) - set(spec.classes))
        if bad:
            raise InvalidInput(f"{int(gold.astype(str).isin(bad).sum())} gold labels are not "
                               f"one of the classes {list(spec.classes)} (e.g. {bad[:3]}).",
                               hint="Correct those labels or add the class to `classes`.")
    return gold if gold is not None and len(gold) else None


def _choose(matrix: LabelMatrix, spec: LabelSpec, gold: pd.Series | None
            ) -> tuple[str, str, dict[str, Labels]]:
    """The label model to ship and why; both models' labels (at the threshold, gold rows
    overridden). With gold, the one more accurate on the gold rows it labels at the
    threshold (what ships), ties to the one that labels more; the reason gives both
    coverages, since a model sure of fewer rows can look better for it."""
    threshold = spec.label_model.threshold
    fitted = {m: combine(matrix, model=m, threshold=threshold, gold=gold)
              for m in ("dawid_skene", "majority")}
    wanted = spec.label_model.model
    if wanted != "auto":
        return wanted, f"chosen in the spec (label_model.model: {wanted})", fitted
    ds, mv = fitted["dawid_skene"], fitted["majority"]
    if ds.gold_accuracy is not None and mv.gold_accuracy is not None:
        n = 0 if gold is None else len(gold)
        (chosen, best), (other_name, other) = sorted(
            fitted.items(), key=lambda kv: (kv[1].gold_accuracy, kv[1].gold_coverage),
            reverse=True)
        title = {"dawid_skene": "Dawid-Skene", "majority": "majority vote"}
        return chosen, (
            f"more accurate on the gold rows it labels at {threshold:g}: "
            f"{best.gold_accuracy:.1%} of {best.gold_coverage:.0%} of {n} against "
            f"{title[other_name]}'s {other.gold_accuracy:.1%} of "
            f"{other.gold_coverage:.0%}"), fitted
    sources = len(matrix.sources)
    if sources >= 3:
        return "dawid_skene", (f"no gold to compare on; with {sources} sources Dawid-Skene "
                               "learns how accurate each one is"), fitted
    return "majority", (f"no gold to compare on; with {sources} source(s) Dawid-Skene cannot "
                        "tell their accuracies apart"), fitted


def _suspects(spec: LabelSpec, frame: pd.DataFrame, progress: Progress
              ) -> tuple[Any, str | None]:
    """Label errors of the existing labels (None with the reason when it cannot run)."""
    from forgeline.labeling.suspects import find_suspects

    assert spec.labels is not None
    column = spec.labels.column
    text = _as_text(frame[column])
    given = text.where(text.isin(spec.classes))
    view = pd.DataFrame({spec.data.text: frame[spec.data.text], column: given})
    progress.status("Looking for label errors")
    try:
        return find_suspects(view, column, classes=spec.classes, text=[spec.data.text],
                             seed=spec.seed), None
    except InvalidInput as e:
        return None, f"label errors not searched: {e.message}"
    finally:
        progress.done()


def _write_output(frame: pd.DataFrame, labels: Labels, spec: LabelSpec) -> Path:
    out = frame.reset_index(drop=True)
    column = spec.output.column
    out[column] = labels.label.to_numpy()
    out[f"{column}_confidence"] = labels.confidence.to_numpy(dtype=float)
    path = spec.output_path
    with atomic_path(path) as tmp:  # the spec allows .parquet, .pq and .csv
        if path.name.lower().endswith(".csv"):
            out.to_csv(tmp, index=False)
        else:
            out.to_parquet(tmp, index=False)
    return path


def _votes(spec: LabelSpec, frame: pd.DataFrame, client: Client, progress: Progress,
           warnings: list[str]) -> tuple[LabelMatrix, dict[str, tuple[int, list[str]]],
                                         LLMRun | None]:
    """Every source's vote on every row; per source the rows it failed on (and up to three
    messages); the LLM's run. What went wrong on some rows is added to ``warnings``."""
    matrix = LabelMatrix.empty(frame.index, spec.classes)
    errors: dict[str, tuple[int, list[str]]] = {}
    if spec.functions:
        functions = [f for path in spec.functions for f in load_functions(path)]
        progress.status(f"Applying {len(functions)} labelling functions")
        applied = apply_functions(functions, frame, spec.classes, matrix=matrix)
        matrix = applied.matrix
        progress.done()
        for name, st in applied.stats.items():
            examples = [m for m in (st.first_error, st.first_unknown and
                                    f"returned {st.first_unknown}, not a class") if m]
            errors[name] = (st.errors + st.unknown_labels, examples)
            if st.errors:
                warnings.append(f"{name} raised on {st.errors} rows ({st.first_error})")
    llm: LLMRun | None = None
    if spec.llm is not None:
        llm = ask_llm(spec, frame[spec.data.text], client.settings.resolved_cache_dir, progress)
        matrix = matrix.with_column(Source(spec.llm.name, llm.labels.version, "llm"),
                                    llm.codes)
        errors[spec.llm.name] = (llm.labels.stats.failed, llm.examples)
        if llm.labels.stats.failed:
            warnings.append(f"the LLM labelled {llm.labels.stats.rows - llm.labels.stats.failed}"
                            f" of {llm.labels.stats.rows} rows ({llm.error_text()})")
    if spec.labels is not None:
        column = _as_text(frame[spec.labels.column])
        version = hashlib.sha256(pd.util.hash_pandas_object(column, index=False)
                                 .to_numpy().tobytes()).hexdigest()
        matrix, unknown = matrix.with_labels(Source(spec.labels.column, version, "labels"),
                                             column.tolist())
        errors[spec.labels.column] = (unknown, [f"{unknown} labels are not one of the classes"]
                                      if unknown else [])
    return matrix, errors, llm


def label(spec: str | Path | dict[str, Any] | LabelSpec, overrides: Sequence[str] = (), *,
          client: Client | None = None, progress: Progress | None = None,
          review: bool = False, review_size: int | None = None,
          import_review: Sequence[str | Path] = ()) -> LabelResult:
    """Label the data a spec names; record the run; return what it produced.

    Args:
        spec: a spec file, a dict or a :class:`~forgeline.labeling.spec.LabelSpec`.
        overrides: ``key=value`` changes to the spec.
        client: the store to record in; ``Client()`` by default.
        progress: told what is happening; logs by default.
        review: also write the review queue to ``review.path`` (always a run artifact).
        review_size: rows in the review queue (``review.size`` by default).
        import_review: reviewed CSV files whose labels join the gold labels.
    """
    spec = load_label_spec(spec, tuple(overrides))
    client = client or Client()
    progress = progress or Progress()
    warnings: list[str] = []
    progress.status("Loading data")
    frame = _frame(spec)
    source_data = dataset_version(frame.reset_index(drop=True), spec.data.path.name.split(".")[0],
                                  str(spec.data.path))
    gold = _gold(spec, frame, [Path(p) for p in import_review])
    progress.done()
    matrix, errors, llm = _votes(spec, frame, client, progress, warnings)
    versions = {s.name: s.version for s in matrix.sources}
    chosen, reason, fitted = _choose(matrix, spec, gold)
    labels = fitted[chosen]
    suspects, why_not = _suspects(spec, frame, progress) if spec.labels else (None, None)
    if why_not:
        warnings.append(why_not)
    progress.status("Choosing rows to review")
    size = review_size or spec.review.size
    queue = review_queue(frame, probabilities=labels.probabilities, matrix=matrix,
                         suspects=suspects, gold=None if gold is None else gold.index,
                         text=spec.data.text, size=min(size, len(frame)), seed=spec.seed)
    queue.insert(queue.columns.get_loc("suggested") + 1, "confidence",
                 labels.confidence.reindex(queue.index).to_numpy())
    progress.done()
    gold_codes = summary.gold_codes(gold, matrix)
    raw = combine(matrix, model=chosen)  # no threshold, no gold: for the threshold table
    voted = (matrix.L != ABSTAIN).any(axis=1)
    text = frame[spec.data.text]
    out_path = _write_output(frame, labels, spec)
    output = dataset_version(load_table(out_path), out_path.name.split(".")[0], str(out_path))
    doc = _summary(spec, matrix, labels, chosen, reason, fitted["majority"], gold,
                   gold_codes, errors, raw, voted, llm, suspects, queue, text, output)
    return _record(spec, client, progress, doc, versions, source_data, output, out_path,
                   queue, review, warnings, llm)


def _summary(spec: LabelSpec, matrix: LabelMatrix, labels: Labels, chosen: str, reason: str,
             majority: Labels, gold: pd.Series | None, gold_codes: np.ndarray,
             errors: dict[str, tuple[int, list[str]]], raw: Labels, voted: np.ndarray,
             llm: LLMRun | None, suspects: Any, queue: pd.DataFrame, text: pd.Series,
             output: Dataset) -> dict[str, Any]:
    sources = summary.source_rows(matrix, gold_codes, errors)
    # The best single source among those judged on enough gold rows: 100% on one vote
    # says nothing (at least 5 votes, and a tenth of the gold rows).
    enough = max(5, math.ceil(0.1 * (0 if gold is None else len(gold))))
    judged = [s for s in sources if s["accuracy"] is not None and s["gold_votes"] >= enough]
    best = max(judged, key=lambda s: s["accuracy"], default=None)
    gold_from = [*([f"column {spec.gold.column}"] if spec.gold.column else []),
                 *([f"file {spec.gold.file.name}"] if spec.gold.file else [])]
    counts = labels.label.value_counts()
    return {
        "name": spec.name, "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": len(matrix.index), "classes": list(spec.classes),
        "dataset": {"digest": output.digest, "name": output.name, "source": output.source,
                    "num_rows": output.num_rows},
        "label_model": {
            "name": chosen, "reason": reason, "threshold": labels.threshold,
            "labelled": int(labels.label.notna().sum()), "coverage": labels.coverage,
            "accuracy": labels.gold_accuracy,
            "majority_accuracy": majority.gold_accuracy,
            "best_source": None if best is None else {
                "name": best["name"], "accuracy": best["accuracy"],
                "coverage": best["coverage"]},
            "class_counts": {c: int(counts.get(c, 0)) for c in spec.classes}},
        "gold": None if gold is None else {"rows": len(gold),
                                           "source": ", ".join(gold_from) or "review file"},
        "sources": sources,
        "agreement": summary.agreement(matrix),
        "thresholds": summary.threshold_rows(raw, voted, gold_codes),
        "llm": None if llm is None else llm.summary(gold_codes),
        "suspects": summary.suspect_rows(None if suspects is None else suspects.table, text),
        "review": summary.review_rows(queue, labels.confidence, text),
    }


def _record(spec: LabelSpec, client: Client, progress: Progress, doc: dict[str, Any],
            versions: dict[str, str], source_data: Dataset, output: Dataset, out_path: Path,
            queue: pd.DataFrame, review: bool, warnings: list[str], llm: LLMRun | None
            ) -> LabelResult:
    tags = {"forgeline.kind": KIND, DIGEST_TAG: output.digest,
            SOURCES_TAG: json.dumps(versions, sort_keys=True)}
    if spec.llm is not None:
        tags[LLM_TAG] = f"{spec.llm.model}@{spec.llm.url}"
    model = doc["label_model"]
    progress.status("Recording the run")
    with client.start_run(spec.name, name="label", tags=tags) as run, \
            tempfile.TemporaryDirectory() as tmp:
        params: dict[str, Any] = {"label_model": model["name"], "threshold": model["threshold"],
                                  "classes": ",".join(spec.classes),
                                  "sources": len(versions)}
        if spec.llm is not None and llm is not None:
            params.update({"llm_model": spec.llm.model, "llm_url": spec.llm.url,
                           "llm_mode": spec.llm.mode,
                           "llm_prompt_digest": llm.prompt_digest})
        run.log_params(params)
        run.log_metrics({k: v for k, v in {
            "coverage": model["coverage"], "labelled": model["labelled"],
            "gold_accuracy": model["accuracy"],
            "majority_gold_accuracy": model["majority_accuracy"]}.items() if v is not None})
        run.set_tag("forgeline.labels.reason", model["reason"][:500])
        run.log_dataset(source_data, "source")
        run.log_dataset(output, "labels")
        folder = Path(tmp)
        (folder / "labels.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False,
                                                       allow_nan=False))
        (folder / "spec.json").write_text(spec.model_dump_json(indent=2))
        write_review(queue, folder / "review.csv")
        for name in ("labels.json", "spec.json", "review.csv"):
            run.log_artifact(folder / name)
        for path in spec.functions:
            run.log_artifact(path, "functions")
        if spec.llm is not None:
            run.log_artifact(spec.llm.prompt, "prompt")
        run.log_artifact(render_labeling_report(doc, folder / "report.html"))
        run_id = run.run_id
    progress.done()
    local = client.download_artifacts(run_id, "report.html", client.settings.home.absolute()
                                      / "reports" / run_id)
    review_file = write_review(queue, spec.review.path) if review else None
    for line in warnings:
        progress.note(f"warning: {line}")
    return LabelResult(run_id, out_path, output, doc, local, queue, review_file,
                       tuple(warnings))


