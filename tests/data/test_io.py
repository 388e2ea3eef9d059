"""load_table: real CSV, TSV and Parquet files, and every way a file can be wrong."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pandas as pd
import pytest

from forgeline.data.io import load_table
from forgeline.errors import InvalidInput, NotFound


@pytest.mark.parametrize("name", ["data.csv", "data.csv.gz", "data.tsv", "DATA.CSV"])
def test_csv_round_trip_with_dates(tmp_path: Path, churn: pd.DataFrame, name: str) -> None:
    path = tmp_path / name
    churn.to_csv(path, index=False, sep="\t" if ".tsv" in name else ",")
    frame = load_table(str(path))
    assert list(frame.columns) == list(churn.columns)
    assert len(frame) == len(churn)
    assert frame["signup"].dtype.kind == "M"  # whole-date text became datetimes
    assert (frame["signup"] == churn["signup"]).all()
    pd.testing.assert_series_equal(frame["usage_score"], churn["usage_score"])
    assert frame["region"].tolist() == churn["region"].tolist()


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_parquet_round_trip(tmp_path: Path, churn: pd.DataFrame, suffix: str) -> None:
    path = tmp_path / f"data{suffix}"
    churn.to_parquet(path, index=False)
    pd.testing.assert_frame_equal(load_table(path), churn, check_dtype=False)


def test_a_failing_date_guess_leaves_text(tmp_path: Path) -> None:
    path = tmp_path / "messy.csv"
    path.write_text("when,zone,n\n2024-01-05,2024-01-05T10:00:00+01:00,1\n"
                    "2024-02-01,2024-01-06T10:00:00-05:00,2\nnot a date,2024-01-07,3\n")
    frame = load_table(path)
    assert frame["when"].tolist() == ["2024-01-05", "2024-02-01", "not a date"]
    assert len(frame) == 3  # mixed offsets: parsed on one clock or left as text, no crash


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"Data file .*nope\.csv not found\.") as e:
        load_table(tmp_path / "nope.csv")
    assert "data.path" in (e.value.hint or "")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(InvalidInput, match="is a directory, not a file"):
        load_table(tmp_path / "folder.csv")


def test_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(InvalidInput, match=r"book\.xlsx has an unsupported type \(\.xlsx\)"):
        load_table(path)


def test_corrupt_parquet(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet at all" * 10)
    with pytest.raises(InvalidInput, match=r"broken\.parquet cannot be read as Parquet: "
                                           r"the file is corrupt or truncated"):
        load_table(path)


def test_truncated_gzip(tmp_path: Path) -> None:
    data = gzip.compress(b"a,b\n" + b"1,2\n" * 5000)
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInput, match=r"cut\.csv\.gz cannot be read as CSV"):
        load_table(path)


def test_ragged_csv(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3,4,5,6\n")
    with pytest.raises(InvalidInput, match=r"ragged\.csv cannot be read as CSV: .*Expected 2 "
                                           r"fields in line 3, saw 4") as e:
        load_table(path)
    assert "separator" in (e.value.hint or "")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("city,n\nMünchen,1\nKöln,2\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match=r"latin\.csv cannot be read as CSV: it is not UTF-8"):
        load_table(path)


@pytest.mark.parametrize(("content", "fragment"), [
    (b"", "is empty: it has 0 bytes"),
    (b"\n\n", "is empty: it has no header and no rows"),
    (b"a,b,c\n", "is empty: 3 columns and 0 rows"),
])
def test_empty_files(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=fragment):
        load_table(path)


def test_empty_parquet(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    pd.DataFrame({"a": pd.Series([], dtype="int64")}).to_parquet(path)
    with pytest.raises(InvalidInput, match="is empty: 1 columns and 0 rows"):
        load_table(path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "secret.csv"
    path.write_text("a\n1\n")
    path.chmod(0)
    try:
        with pytest.raises(InvalidInput, match="cannot be read as CSV: permission denied"):
            load_table(path)
    finally:
        path.chmod(0o644)
