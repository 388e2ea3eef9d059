"""validate: the report, each finding, and the hard errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgeline.data.findings import Severity
from forgeline.data.inference import infer_schema
from forgeline.data.io import load_table
from forgeline.data.schema import ColumnKind
from forgeline.data.validation import ValidationReport, validate
from forgeline.entities import Task
from forgeline.errors import InvalidInput


def _validate(frame: pd.DataFrame, target: str = "churned", task: Task = Task.BINARY,
              **kwargs: object) -> ValidationReport:
    return validate(frame, infer_schema(frame, target, **kwargs), task)


def _checks(report: ValidationReport) -> dict[str, Severity]:
    return {f.check: f.severity for f in report.findings}


def test_clean_frame(churn: pd.DataFrame) -> None:
    report = _validate(churn)
    assert report.findings == ()
    assert report.rows == 3000 and report.duplicate_rows == 0 and report.target_missing == 0
    assert set(report.columns) == set(churn.columns)
    income = report.columns["income"]
    assert income["kind"] == "numeric" and income["dtype"] == "float64"
    assert 0.03 < income["missing_share"] < 0.07
    assert income["constant"] is False and income["mixed_types"] is False
    assert report.columns["plan"]["n_unique"] == 3
    assert report.class_balance is not None
    assert set(report.class_balance) == {"0", "1"}
    assert sum(report.class_balance.values()) == pytest.approx(1.0)
    assert json.loads(json.dumps(report.to_dict()))["rows"] == 3000


def test_findings_on_a_messy_frame(churn: pd.DataFrame) -> None:
    frame = churn.copy()
    rng = np.random.default_rng(1)
    frame["fax"] = np.where(rng.random(len(frame)) < 0.8, np.nan, 1.0 * rng.integers(0, 9, 3000))
    frame["country"] = "NL"
    frame["legacy_code"] = pd.Series(rng.choice(["A", "B", "C"], 3000), dtype=object)
    frame.loc[::7, "legacy_code"] = 7  # an Excel export where some codes became numbers
    frame["street"] = [f"street {i % 1700}" for i in range(3000)]
    frame["churned"] = frame["churned"].astype(float)
    frame.loc[frame.index[:30], "churned"] = np.nan
    frame = pd.concat([frame, frame.iloc[100:300].assign(customer_id="dup")],
                      ignore_index=True)
    report = _validate(frame, overrides={"customer_id": ColumnKind.ID})
    checks = _checks(report)
    assert checks == {"missing_values": Severity.WARN, "constant_column": Severity.WARN,
                      "mixed_types": Severity.WARN, "high_cardinality": Severity.INFO,
                      "duplicate_rows": Severity.WARN, "missing_target": Severity.WARN}
    by_check = {f.check: f for f in report.findings}
    assert by_check["missing_values"].columns == ("fax",)
    assert "'fax' (80% missing)" in by_check["missing_values"].message
    assert by_check["constant_column"].columns == ("country",)
    assert by_check["mixed_types"].columns == ("legacy_code",)
    assert by_check["mixed_types"].details["types"][:2] == ["str", "int"]
    assert report.columns["legacy_code"]["mixed_types"] is True
    assert by_check["high_cardinality"].columns == ("street",)
    assert report.duplicate_rows == 200  # the id column is ignored
    assert "200 rows (6.2%) repeat an earlier row" in by_check["duplicate_rows"].message
    assert report.target_missing == 30
    assert "30 rows (0.9%) have no target value; training drops them" in by_check[
        "missing_target"].message
    json.dumps(report.to_dict())


def test_class_imbalance_is_info(churn: pd.DataFrame) -> None:
    frame = churn.assign(churned=(np.arange(len(churn)) % 50 == 0).astype(int))
    report = _validate(frame)
    finding = next(f for f in report.findings if f.check == "class_imbalance")
    assert finding.severity is Severity.INFO
    assert "Class '1' is only 2.0% of the labelled rows" in finding.message
    assert report.class_balance == {"0": 0.98, "1": 0.02}


def test_regression_has_no_class_balance(churn: pd.DataFrame) -> None:
    report = _validate(churn, target="income", task=Task.REGRESSION)
    assert report.class_balance is None
    assert _checks(report) == {"missing_target": Severity.WARN}


def test_empty_frame(churn: pd.DataFrame) -> None:
    schema = infer_schema(churn, "churned")
    with pytest.raises(InvalidInput, match=r"The data is empty \(0 rows, 10 columns\)"):
        validate(churn.iloc[:0], schema, Task.BINARY)


def test_target_entirely_missing(churn: pd.DataFrame) -> None:
    schema = infer_schema(churn, "churned")
    with pytest.raises(InvalidInput, match="Target 'churned' is missing on every row"):
        validate(churn.assign(churned=np.nan), schema, Task.BINARY)


def test_schema_column_missing_from_data(churn: pd.DataFrame) -> None:
    schema = infer_schema(churn, "churned")
    with pytest.raises(InvalidInput, match=r"Column\(s\) 'plan' of the schema are not in"):
        validate(churn.drop(columns="plan"), schema, Task.BINARY)


def test_numbers_with_junk_from_a_real_csv(tmp_path: Path, churn: pd.DataFrame) -> None:
    frame = churn.copy()
    frame["income"] = frame["income"].astype(object)
    frame.loc[frame.index[:60], "income"] = "?"
    frame.loc[frame.index[60:75], "income"] = "unknown"
    frame.loc[frame.index[75:80], "income"] = "12,50"
    path = tmp_path / "messy.csv"
    frame.to_csv(path, index=False)
    loaded = load_table(path)
    assert infer_schema(loaded, "churned")["income"].kind is ColumnKind.NUMERIC
    with pytest.raises(InvalidInput) as e:
        _validate(loaded)
    message = str(e.value)
    assert e.value.message.startswith("Mixed garbage: column(s) of numbers holding values "
                                      "that are not numbers: 'income' (2.8% of its values, "
                                      "80 rows, e.g. '?', 'unknown', '12,50')")
    assert "features.categorical" in message and "data.drop" in message
    # declared a category, the same column trains as text
    report = _validate(loaded, overrides={"income": ColumnKind.CATEGORICAL})
    assert report.columns["income"]["kind"] == "categorical"


def test_numbers_and_strings_in_one_object_column(churn: pd.DataFrame) -> None:
    frame = churn.copy()
    frame["age"] = frame["age"].astype(object)
    frame.loc[frame.index[::40], "age"] = "forty"
    frame.loc[frame.index[1::40], "age"] = "n.a."
    with pytest.raises(InvalidInput, match=r"'age' \(5\.0% of its values, 150 rows, e\.g\. "
                                           r"'forty', 'n\.a\.'\)"):
        _validate(frame)


def test_half_numbers_half_symbols(tmp_path: Path, churn: pd.DataFrame) -> None:
    frame = churn.assign(b=["12", "x!", 3.5, "??"] * 750)  # numbers and strings in one column
    with pytest.raises(InvalidInput, match=r"'b' \(50\.0% of its values, 1500 rows, e\.g\. "
                                           r"'(x!|\?\?)', '(x!|\?\?)'\)"):
        _validate(frame)
    frame.to_csv(tmp_path / "b.csv", index=False)  # the same, read back as text
    with pytest.raises(InvalidInput, match=r"'b' \(50\.0% of its values"):
        _validate(load_table(tmp_path / "b.csv"))


def test_regression_target_with_junk(churn: pd.DataFrame) -> None:
    frame = churn.copy()
    frame["usage_score"] = frame["usage_score"].astype(object)
    frame.loc[frame.index[:3], "usage_score"] = "#VALUE!"
    schema = infer_schema(frame, "usage_score")
    with pytest.raises(InvalidInput, match=r"'usage_score' \(0\.1% of its values, 3 rows, "
                                           r"e\.g\. '#VALUE!'\)"):
        validate(frame, schema, Task.REGRESSION)


def test_ordinary_strings_are_not_flagged(churn: pd.DataFrame) -> None:
    frame = churn.assign(size=np.random.default_rng(3).choice(["S", "M", "L", "XL", "10",
                                                               "12"], len(churn)))
    report = _validate(frame)
    assert report.columns["size"]["kind"] == "categorical"
    assert report.findings == ()
