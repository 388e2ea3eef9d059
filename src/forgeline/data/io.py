"""Load a CSV or Parquet file into a DataFrame, with errors a user can act on.

The format comes from the suffix: ``.csv`` and ``.tsv`` (optionally compressed: ``.gz``,
``.bz2``, ``.zip``, ``.xz``) or ``.parquet`` / ``.pq``. CSV is parsed with pandas defaults
(``low_memory=False`` so a column gets one type for the whole file, not one per chunk);
afterwards a text column whose every value is a date (``2024-01-05``, ``05/01/2024 10:00``)
becomes a datetime column. That guess never fails the load: a column it cannot parse
completely stays text.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import pandas as pd

from forgeline.data.values import date_share, is_textual, parse_datetimes, sample
from forgeline.errors import InvalidInput, NotFound

__all__ = ["SUFFIXES", "load_table"]

_CSV = {".csv": ",", ".tsv": "\t"}
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz")
_PARQUET = (".parquet", ".pq")
SUFFIXES = (*_CSV, *(c + z for c in _CSV for z in _COMPRESSED), *_PARQUET)
_SUPPORTED = "CSV (.csv, .tsv, optionally .gz/.bz2/.zip/.xz) or Parquet (.parquet, .pq)"


def _format(path: Path) -> str:
    """"csv", "tsv" or "parquet" from the file name, or InvalidInput."""
    name = path.name.lower()
    for suffix in _PARQUET:
        if name.endswith(suffix):
            return "parquet"
    for suffix in _CSV:
        if name.endswith(suffix) or any(name.endswith(suffix + z) for z in _COMPRESSED):
            return suffix[1:]
    found = "".join(path.suffixes[-2:]) or "no suffix"
    raise InvalidInput(f"Data file {path} has an unsupported type ({found}).",
                       hint=f"Save it as {_SUPPORTED}.")


def _read(path: Path, fmt: str) -> pd.DataFrame:
    if fmt == "parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, sep=_CSV[f".{fmt}"], low_memory=False)


def _unreadable(path: Path, fmt: str, reason: str, hint: str | None = None) -> InvalidInput:
    kind = "Parquet" if fmt == "parquet" else fmt.upper()
    return InvalidInput(f"Data file {path} cannot be read as {kind}: {reason}.",
                        hint=hint or f"Check that the file is a complete {kind} file.")


def load_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet file.

    Args:
        path: the file; its suffix picks the format.

    Returns:
        The table, with whole-date text columns converted to datetimes.

    Raises:
        NotFound: the file does not exist.
        InvalidInput: the path is a directory, the suffix is not supported, the file cannot
            be read (permissions, not valid CSV/Parquet, corrupt compression, not UTF-8), or
            it has no columns or no rows.
    """
    path = Path(path)
    if not path.exists():
        raise NotFound(f"Data file {path} not found.",
                       hint="Check data.path; a relative path is taken from the spec's folder.")
    if path.is_dir():
        raise InvalidInput(f"Data file {path} is a directory, not a file.",
                           hint=f"Point data.path at one file: {_SUPPORTED}.")
    fmt = _format(path)
    if path.stat().st_size == 0:
        raise InvalidInput(f"Data file {path} is empty: it has 0 bytes.",
                           hint="Write the data to it again; the export may have failed.")
    try:
        frame = _read(path, fmt)
    except PermissionError:
        raise _unreadable(path, fmt, "permission denied",
                          "Make the file readable by this user.") from None
    except pd.errors.EmptyDataError:
        raise InvalidInput(f"Data file {path} is empty: it has no header and no rows.",
                           hint="Write a header line with the column names, then the data."
                           ) from None
    except UnicodeDecodeError as e:
        raise _unreadable(path, fmt, f"it is not UTF-8 text ({e.reason} at byte {e.start})",
                          "Save it as UTF-8 (in Excel: CSV UTF-8).") from None
    except pd.errors.ParserError as e:
        reason = str(e).strip().splitlines()[-1].rstrip(".")
        raise _unreadable(path, fmt, reason, "Check the separator, quoting and the number "
                          "of fields on that line.") from None
    except (OSError, EOFError, zlib.error, ValueError, TypeError, NotImplementedError) as e:
        # pyarrow's errors subclass ValueError, TypeError or NotImplementedError (a type it
        # cannot read); a corrupt gzip file raises OSError or EOFError.
        reason = str(e).strip().splitlines()[0].rstrip(".") if str(e).strip() else type(
            e).__name__
        raise _unreadable(path, fmt, f"the file is corrupt or truncated ({reason})") from None
    if frame.shape[1] == 0 or frame.shape[0] == 0:
        raise InvalidInput(f"Data file {path} is empty: {frame.shape[1]} columns and "
                           f"{frame.shape[0]} rows.",
                           hint="Training needs a header and at least a few rows of data.")
    return _dates(frame) if fmt != "parquet" else frame


def _dates(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns whose every value parses as a date, as datetime columns."""
    converted = {}
    for name in frame.columns:
        column = frame[name]
        if not is_textual(column) or isinstance(column.dtype, pd.CategoricalDtype):
            continue
        present = column.dropna()
        if present.empty or date_share(sample(present, 200)) < 1.0:
            continue
        try:
            parsed = parse_datetimes(column)
        except (ValueError, TypeError, OverflowError):
            continue
        if int(parsed.notna().sum()) == len(present):
            converted[name] = parsed
    if not converted:
        return frame
    frame = frame.copy()
    for name, values in converted.items():
        frame[name] = values
    return frame
