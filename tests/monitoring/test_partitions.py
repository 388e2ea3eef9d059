"""Monitoring partition by partition (local Parquet files): the same statistics as one run
over the partitions concatenated, and every bad input as one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from forgeline.data.partitions import find_partitions
from forgeline.errors import InvalidInput, NotFound
from forgeline.monitoring.orchestrator import monitor
from forgeline.monitoring.partitions import monitor_partitions
from forgeline.util.progress import Progress
from tests.cli.conftest import invoke
from tests.monitoring.conftest import Model, log_frame
from tests.monitoring.partdata import assert_same, close, partitions


class _Recorded(Progress):
    def __init__(self) -> None:
        self.seen: list[tuple[str, int | None]] = []

    def task(self, description: str, total: float | None, unit: str = "") -> None:
        self.seen.append((description, None if total is None else int(total)))

    def advance(self, amount: float = 1, info: str | None = None) -> None:
        self.seen.append((info or "", None))

    def done(self) -> None:
        self.seen.append(("done", None))


def _write(folder: Path, frames: list[pd.DataFrame]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"part-{i}.parquet" for i in range(len(frames))]
    for path, frame in zip(paths, frames, strict=True):
        frame.to_parquet(path, index=False)
    return paths


def test_partitions_give_the_statistics_of_the_whole(model: Model, tmp_path: Path) -> None:
    frames = partitions(predictor=model.predictor)
    paths = _write(tmp_path / "data", frames)
    whole = monitor(model.predictor, pd.concat([pd.read_parquet(p) for p in paths],
                                               ignore_index=True))
    progress = _Recorded()
    result = monitor_partitions(model.predictor, str(tmp_path / "data" / "part-*.parquet"),
                                progress=progress)
    data, expected = result.to_dict(), whole.to_dict()
    assert_same(data, expected)
    assert progress.seen == [("partitions", 4), *((f"part-{i}.parquet", None)
                                                   for i in range(4)), ("done", None)]
    quality = data["quality"]["columns"]
    assert quality["c0"]["unseen"] > 0
    assert quality["c0"]["unseen_examples"] == ["new1", "new0", "rare"]  # most frequent first
    assert quality["n2"]["out_of_range"] > 0 and quality["n3"]["missing_share"] > 0
    assert data["dataset"]["n_drifted"] > 0 and data["prediction"]["method"]
    assert any("no windows over time" in w for w in result.warnings)
    assert any("multivariate drift skipped" in w for w in result.warnings)
    # attribution drift on rows sampled from every partition, as the whole run's sample
    part_a, whole_a = result.attribution, whole.attribution
    assert part_a is not None and whole_a is not None
    assert part_a.rows == whole_a.rows and set(part_a.features) == set(whole_a.features)
    for name, f in part_a.features.items():
        assert f["current_share"] == pytest.approx(whole_a.features[name]["current_share"],
                                                   abs=0.05), name
    assert data["attribution"]["drifted"] == expected["attribution"]["drifted"]


def test_bad_partitions_are_named(model: Model, tmp_path: Path) -> None:
    frames = partitions(200)
    _write(tmp_path / "d", frames)
    with pytest.raises(NotFound, match=r"No file matches .*nothing-\*\.parquet"):
        monitor_partitions(model.predictor, str(tmp_path / "d" / "nothing-*.parquet"))
    (tmp_path / "d" / "part-9.parquet").write_text("not parquet")
    with pytest.raises(InvalidInput, match=r"Partition .*part-9\.parquet cannot be read as "
                                           r"Parquet"):
        monitor_partitions(model.predictor, str(tmp_path / "d" / "part-*.parquet"))
    (tmp_path / "d" / "part-9.parquet").unlink()
    frames[1].drop(columns=["n4", "c1"]).to_parquet(tmp_path / "d" / "part-1.parquet")
    with pytest.raises(InvalidInput, match=r"Partition .*part-1\.parquet lacks the model's "
                                           r"column\(s\) n4, c1\."):
        monitor_partitions(model.predictor, str(tmp_path / "d" / "part-*.parquet"))
    assert find_partitions(str(tmp_path / "d" / "part-[02].parquet")) == [
        str(tmp_path / "d" / "part-0.parquet"), str(tmp_path / "d" / "part-2.parquet")]


def test_the_cli_monitors_a_local_glob_and_records_it(model: Model, registered: Path,
                                                      tmp_path: Path) -> None:
    paths = _write(tmp_path / "data", partitions(400, model.predictor))
    result = invoke("monitor", "fraud@champion", "--current", "data/part-*.parquet",
                    "--json", "-o", "parts.html")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    whole = monitor(model.predictor, pd.concat([pd.read_parquet(p) for p in paths],
                                               ignore_index=True)).to_dict()
    assert_same(data, whole)
    assert data["report"] == "parts.html" and Path("parts.html").is_file()
    assert "fraud v1: 1,600 rows" in result.stderr
    assert "warning: no windows over time: the 4 partitions" in result.stderr
    history = invoke("monitor", "history", "fraud", "--json")
    records = json.loads(history.stdout)
    assert len(records) == 1 and records[0]["rows"] == 1_600
    assert records[0]["dataset_drift"] == whole["dataset"]["share"]


def test_the_cli_says_what_is_wrong_in_one_line(model: Model, registered: Path,
                                                tmp_path: Path) -> None:
    frames = partitions(100)
    frames[2] = frames[2].drop(columns=["flag"])
    _write(tmp_path / "data", frames)
    cases = {
        ("--current", "data/part-*.parquet"): (
            2, "error: Partition data/part-2.parquet lacks the model's column(s) flag. "
               "Every partition must hold every input"),
        ("--current", "data/none-*.parquet"): (3, "error: No file matches "
                                                  "data/none-*.parquet."),
        ("--current", "data/part-*.parquet", "--score"): (
            2, "error: --labels and --score need the data in one file"),
        ("--engine", "spark", "--current", "data/part-*.parquet"): (
            2, "error: Unknown engine 'spark'."),
        ("--engine", "ray", "--since", "1h"): (
            2, "error: --engine ray monitors Parquet partitions given with --current."),
    }
    for args, (code, line) in cases.items():
        result = invoke("monitor", "fraud@champion", *args)
        assert result.exit_code == code, (args, result.output)
        assert result.output.startswith(line), (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert not Path("fraud-monitor.html").exists()
    assert json.loads(invoke("monitor", "history", "fraud", "--json").stdout) == []


def test_prediction_log_partitions_keep_the_clock_and_period(model: Model,
                                                             tmp_path: Path) -> None:
    log, _ = log_frame(model, 3_000, 5, shifted=True)
    paths = _write(tmp_path / "log", [log.iloc[:1000], log.iloc[1000:1000], log.iloc[1000:]])
    result = monitor_partitions(model.predictor, [str(p) for p in paths])  # one is empty
    whole = monitor(model.predictor, pd.concat([pd.read_parquet(p) for p in paths],
                                               ignore_index=True))
    data, expected = result.to_dict(), whole.to_dict()
    assert result.clock == whole.clock and result.clock.label == "logging time: ts"
    assert data["period"] == expected["period"] == {
        "start": "2025-03-01T00:00:00+00:00", "end": "2025-03-03T23:59:59+00:00"}
    close(data["features"], expected["features"])
    close(data["prediction"], expected["prediction"])
    close(data["quality"]["columns"], expected["quality"]["columns"])
    assert data["quality"]["new_columns"] == expected["quality"]["new_columns"] == []
    assert result.windows == [] and len(whole.windows) > 0


def test_values_that_are_not_numbers_add_up_across_partitions(model: Model,
                                                              tmp_path: Path) -> None:
    frames = partitions(300)
    text = frames[1]["n5"].astype(object)
    text.iloc[:7], text.iloc[7:10] = "n/a", "??"
    frames[1]["n5"] = text.astype(str)
    paths = _write(tmp_path / "d", frames)
    result = monitor_partitions(model.predictor, [str(p) for p in paths]).to_dict()
    whole = monitor(model.predictor, pd.concat([pd.read_parquet(p) for p in paths],
                                               ignore_index=True)).to_dict()
    close(result["features"], whole["features"])
    close(result["quality"]["columns"], whole["quality"]["columns"])
    assert result["quality"]["columns"]["n5"]["not_parsed"] == 10
    found = [i for i in result["quality"]["issues"] if i["check"] == "type_change"]
    assert [i["details"]["found"] for i in found] == ["mixed (float64, str)"]
    assert "10 value(s) (0.8%) that are not numbers, e.g. 'n/a', '??'" in found[0]["message"]


def test_the_attribution_sample_is_the_rows_asked_for_drawn_over_every_partition() -> None:
    from forgeline.monitoring.partitions import PartSummary, _attribution_sample

    parts = [PartSummary(f"p{i}", rows, ["x"], sample=pd.DataFrame({"x": [i] * min(rows, 1000)}))
             for i, rows in enumerate((3000, 3000, 3000, 1000))]
    thirds = _attribution_sample(parts[:3], 1000)
    assert thirds is not None and len(thirds) == 1000  # three thirds rounded gave 999
    sample = _attribution_sample(parts, 1000)
    assert sample is not None and len(sample) == 1000
    shares = sample["x"].value_counts(normalize=True)
    assert shares[3] == pytest.approx(0.1, abs=0.05)  # a tenth of the rows, a tenth drawn
    assert _attribution_sample(parts[:1], 5000) is not None
    assert len(_attribution_sample(parts[:1], 5000)) == 1000  # all there are
