"""``forgeline label SPEC``: label a data set, print what each source did, the review queue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from forgeline.cli.output import console, key_value_table, print_json, table
from forgeline.cli.state import get_client

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["register"]

_TEXT = 80  # characters of a row's text in the review table


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _sources(summary: dict[str, Any]) -> Any:
    from rich.markup import escape

    t = table("source", "kind", "version", "coverage", "overlap", "conflict",
              "accuracy (gold votes)", "errors", title="Sources")
    for s in summary["sources"]:
        accuracy = "-" if s["accuracy"] is None else f"{s['accuracy']:.1%} ({s['gold_votes']})"
        t.add_row(escape(s["name"]), s["kind"], escape(s["version"][:12]), _pct(s["coverage"]),
                  _pct(s["overlap"]), _pct(s["conflict"]), accuracy, str(s["errors"]))
    return t


def _review(queue: pd.DataFrame, text: str, size: int) -> Any:
    import pandas as pd
    from rich.markup import escape  # the rows' text and ids are the data's: no markup

    t = table("id", "reason", "suggested", "confidence", "text", title="Review queue")
    for row_id, row in queue.head(size).iterrows():
        value = row.get(text)
        words = "" if value is None or pd.isna(value) else " ".join(str(value).split())
        suggested = row.get("suggested")
        t.add_row(escape(str(row_id)), str(row["reason"]),
                  "-" if suggested is None or pd.isna(suggested) else escape(str(suggested)),
                  f"{float(row['confidence']):.2f}",
                  escape(words if len(words) <= _TEXT else words[: _TEXT - 1] + "…"))
    return t


def label_command(
    ctx: typer.Context,
    spec: str = typer.Argument(..., metavar="SPEC", help="The labelling spec (YAML)."),
    overrides: list[str] | None = typer.Option(
        None, "--set", metavar="KEY=VALUE",
        help="Override a spec field, e.g. --set label_model.threshold=0.9 (repeatable)."),
    review: bool = typer.Option(
        False, "--review",
        help="Print the rows to review next (review.size of them: --set review.size=20) and "
             "write them to review.path, a CSV to fill in and read back with --import-review."),
    import_review: list[str] | None = typer.Option(
        None, "--import-review", metavar="FILE",
        help="A reviewed CSV whose filled-in labels join the gold labels (repeatable)."),
    llm_url: str | None = typer.Option(
        None, "--llm-url", metavar="URL",
        help="The LLM endpoint (OpenAI-compatible, e.g. http://127.0.0.1:8080/v1): the same "
             "as --set llm.url=URL."),
    llm_model: str | None = typer.Option(
        None, "--llm-model", metavar="NAME", help="The model it serves: --set llm.model=NAME."),
    as_json: bool = typer.Option(False, "--json", help="Print labels.json (the report's data)."),
) -> None:
    """Label a data set from labelling functions, an LLM and human labels; record it."""
    from forgeline.labeling.spec import load_label_spec

    overrides = [*(overrides or ()), *([f"llm.url={llm_url}"] if llm_url else []),
                 *([f"llm.model={llm_model}"] if llm_model else [])]
    checked = load_label_spec(spec, tuple(overrides))  # a typo answers first
    from rich.markup import escape

    from forgeline.cli.progress import RichProgress
    from forgeline.workflows.label import label

    with RichProgress() as progress:
        result = label(checked, client=get_client(ctx), progress=progress,
                       review=review,
                       import_review=tuple(import_review or ()))
    if as_json:
        print_json(result.summary)
        return
    s = result.summary
    out = console()
    out.print(_sources(s))
    model = s["label_model"]
    rows = [("run id", result.run_id),
            ("label model", f"{model['name']}: {model['reason']}"),
            (f"labelled at {model['threshold']:g}",
             f"{model['labelled']} of {s['rows']} rows ({_pct(model['coverage'])})"),
            ("accuracy on gold", "-" if s["gold"] is None else
             f"{_pct(model['accuracy'])} ({s['gold']['rows']} gold rows; majority vote "
             f"{_pct(model['majority_accuracy'])})")]
    if s["llm"] is not None:
        llm = s["llm"]
        rows.append(("LLM", f"{llm['model']} ({llm['mode']}): {llm['requests']} requests, "
                            f"{llm['cache_hits']} cache hits, {llm['prompt_tokens']} + "
                            f"{llm['completion_tokens']} tokens, {llm['seconds']:.1f} s"
                     + ("" if llm["kappa"] is None else
                        f", kappa vs gold {llm['kappa']:.2f} on {llm['kappa_rows']} rows")))
    if s["suspects"]:
        rows.append(("likely label errors", str(len(s["suspects"]))))
    rows += [("output", f"{result.output} ({result.dataset.digest[:12]})"),
             ("report", str(result.report))]
    if result.review_file is not None:
        rows.append(("review file", str(result.review_file)))
    out.print(key_value_table([(k, escape(v)) for k, v in rows], title="Labelling finished"))
    if review and result.review is not None:
        out.print(_review(result.review, checked.data.text, checked.review.size))


def register(app: typer.Typer) -> None:
    app.command("label")(label_command)
