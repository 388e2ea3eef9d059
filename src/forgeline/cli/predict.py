"""``forgeline predict MODEL INPUT`` (batch scoring) and ``forgeline build MODEL`` (image)."""

from __future__ import annotations

from pathlib import Path

import typer

from forgeline.cli.output import console, key_value_table, print_json
from forgeline.cli.state import get_client

__all__ = ["register"]


def predict_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., metavar="MODEL",
                                help="name@alias, name/N, name (latest) or a package folder."),
    input: str = typer.Argument(
        ..., metavar="INPUT",
        help="A Parquet or CSV file, or Parquet partitions: a glob (data/part-*.parquet) or "
             "s3://bucket/prefix/*.parquet."),
    output: str | None = typer.Option(
        None, "-o", "--output", metavar="FILE|DIR",
        help="Where the scores go: .csv writes CSV, anything else Parquet "
             "(default: INPUT's name + .scores.parquet, next to it); for partitions a "
             "folder or s3://bucket/prefix (required), one <partition>.scores.parquet each."),
    keys: str | None = typer.Option(
        None, "--keys", metavar="COL,COL",
        help="Input columns copied next to the predictions (default: every column that "
             "is not a model input)."),
    chunk_rows: int = typer.Option(100_000, "--chunk-rows", min=1,
                                   help="Rows per chunk; memory holds a few chunks (one "
                                        "per core scoring, one being read), whatever the "
                                        "file's size."),
    engine: str = typer.Option("local", "--engine",
                               help="local, or ray (Parquet input; a task per partition)."),
    ray_address: str | None = typer.Option(None, "--ray-address", metavar="ADDRESS",
                                           help="The Ray cluster (default: RAY_ADDRESS, "
                                                "else a local instance)."),
    runtime: str = typer.Option("auto", "--runtime", help="auto, native or onnx."),
    progress: bool = typer.Option(True, "--progress/--no-progress",
                                  help="Show a progress bar on stderr."),
    explain: bool = typer.Option(False, "--explain",
                                 help="Add each input column's contribution "
                                      "(contrib_<column>) and the base value (base_value) "
                                      "of every row: they add up to the model's output "
                                      "(log-odds, logit, probability or value)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Score a file, or a dataset's partitions, with a model: keys and predictions out."""
    from forgeline.cli.progress import RichProgress
    from forgeline.data.partitions import is_pattern
    from forgeline.errors import InvalidInput

    key_list = [k.strip() for k in keys.split(",") if k.strip()] if keys else None
    reference = model if not Path(model).is_dir() else Path(model)
    client = None if isinstance(reference, Path) else get_client(ctx)
    options = {"keys": key_list, "chunk_rows": chunk_rows, "engine": engine,
               "runtime": runtime, "client": client, "ray_address": ray_address}
    with RichProgress(enabled=progress and not as_json) as bar:
        if is_pattern(input):
            from forgeline.serving.partitioned import score_partitions

            if explain:
                raise InvalidInput("--explain scores one file, not partitions.",
                                   hint="Explain a partition at a time (its file), or leave "
                                        "--explain out.")
            if output is None:
                raise InvalidInput(f"{input} names partitions: say where their scores go.",
                                   hint="Add -o DIR or -o s3://bucket/prefix.")
            summary = score_partitions(reference, input, output, progress=bar, **options)
        else:
            from forgeline.serving.batch import score_file

            source = Path(input)
            target = Path(output) if output is not None else source.with_name(
                f"{source.stem}.scores.parquet")
            summary = score_file(reference, source, target, progress=bar, explain=explain,
                                 **options)
    if as_json:
        print_json(summary)
        return
    console().print(key_value_table([
        ("rows", f"{summary.rows:,}"), ("time", f"{summary.seconds:,.1f} s"),
        ("rows/s", f"{summary.rows_per_s:,.0f}"), ("runtime", summary.runtime),
        ("output", str(summary.output))], title="Scored"))


def build_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., metavar="MODEL",
                                help="name@alias, name/N, name (latest) or a package folder."),
    output: Path | None = typer.Option(
        None, "-o", "--output", metavar="DIR",
        help="The build context directory (default: ./build/<name>-<version>)."),
    tag: str | None = typer.Option(None, "--tag", "-t",
                                   help="Image tag (default: forgeline-<name>:<version>)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Write a Docker build context serving MODEL, and build it when Docker runs here."""
    from forgeline.serving.docker import build_image, docker_available, write_context

    reference = model if not Path(model).is_dir() else Path(model)
    client = None if isinstance(reference, Path) else get_client(ctx)
    result = write_context(reference, output, tag=tag, client=client)
    available = docker_available()
    if available:
        result = build_image(result)
    command = " ".join(result.command)
    if as_json:
        print_json({"context": result.context, "tag": result.tag, "built": result.built,
                    "command": command})
        return
    out = console()
    out.print(key_value_table([("context", str(result.context)), ("tag", result.tag),
                               ("image", "built" if result.built else "not built")],
                              title="Docker image"))
    if not available:
        typer.echo("No Docker engine answers here (docker info failed); build the image "
                   "where one runs with:", err=True)
        typer.echo(command)


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_command)
    app.command("build")(build_command)
