"""What the run page shows of an artifact file: the head of a text file, an image, the first
rows of a CSV or Parquet table, an HTML report in a sandboxed frame, or why there is none.

Only the head of a file is read (:data:`TEXT_LINES` lines, :data:`TABLE_ROWS` rows), so a
preview costs the same for a log of a gigabyte as for one of a kilobyte. pandas and
pyarrow are imported only when a table is previewed.
"""

from __future__ import annotations

import codecs
import math
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forgeline.server.ui.render import fmt_number

__all__ = ["TABLE_ROWS", "TEXT_LINES", "Preview", "kind_of", "media_type", "preview_file"]

TEXT_LINES = 200
TABLE_ROWS = 20
MAX_TEXT_BYTES = 256 * 1024
MAX_CELL = 200
IMAGES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".bmp", ".ico")
TABLES = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".parquet", ".pq")
HTML = (".html", ".htm")
TEXT = (".txt", ".log", ".md", ".json", ".jsonl", ".yaml", ".yml", ".toml", ".ini", ".cfg",
        ".py", ".sql", ".sh", ".xml", ".r", ".ipynb", ".rst", ".out", ".err")


@dataclass(frozen=True, slots=True)
class Preview:
    """``kind``: text, image, table, html, none (no preview for the type) or error."""

    kind: str
    path: str
    lines: list[str] = field(default_factory=list)
    truncated: bool = False
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""


def kind_of(path: str) -> str:
    """The preview a file gets by its name: image, table, html, text or unknown."""
    name = path.lower()
    for kind, endings in (("image", IMAGES), ("table", TABLES), ("html", HTML),
                          ("text", TEXT)):
        if name.endswith(endings):
            return kind
    return "unknown"


def media_type(path: str) -> str:
    """The Content-Type a file is served with (``text/*`` as UTF-8)."""
    if path.lower().endswith((".jsonl", ".log", ".md", ".yaml", ".yml", ".toml")):
        return "text/plain; charset=utf-8"
    guessed, encoding = mimetypes.guess_type(path)
    if guessed is None or encoding is not None:  # .csv.gz is gzip bytes, not text
        return "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def _looks_like_text(head: bytes) -> bool:
    if b"\0" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _text(path: str, file: Path) -> Preview:
    lines: list[str] = []
    read = 0
    truncated = False
    with open(file, "rb") as f:
        for raw in f:
            if len(lines) == TEXT_LINES or read + len(raw) > MAX_TEXT_BYTES:
                truncated = True
                break
            read += len(raw)
            lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
    note = f"first {len(lines)} lines" if truncated else f"{len(lines)} lines"
    return Preview("text", path, lines=lines, truncated=truncated, note=note)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return fmt_number(value)
    text = str(value)
    return text if len(text) <= MAX_CELL else text[:MAX_CELL] + "…"


def _table(path: str, file: Path) -> Preview:
    import pandas as pd

    name = path.lower()
    if name.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(file)
        batch = next(parquet.iter_batches(batch_size=TABLE_ROWS), None)
        frame = batch.to_pandas() if batch is not None else \
            parquet.schema_arrow.empty_table().to_pandas()
        note = (f"first {len(frame)} of {parquet.metadata.num_rows:,} rows · "
                f"{parquet.metadata.num_columns} columns")
    else:
        frame = pd.read_csv(file, nrows=TABLE_ROWS, sep="\t" if ".tsv" in name else ",",
                            compression="infer")
        note = f"first {len(frame)} rows · {len(frame.columns)} columns"
    rows = [[_cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    return Preview("table", path, columns=[str(c) for c in frame.columns], rows=rows,
                   note=note)


def preview_file(path: str, file: Path) -> Preview:
    """The preview of the artifact ``path`` whose (checked) bytes are in ``file``."""
    kind = kind_of(path)
    if kind in ("image", "html"):
        return Preview(kind, path)
    if kind == "table":
        try:
            return _table(path, file)
        except Exception as e:  # a malformed file is the user's data, not a server error
            return Preview("error", path, note=f"Could not read it as a table: {e}")
    with open(file, "rb") as f:
        head = f.read(4096)
    if kind == "text" or _looks_like_text(head):
        return _text(path, file)
    return Preview("none", path, note="No preview for this type of file: download it.")
