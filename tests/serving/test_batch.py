"""Batch scoring: real files through a real model, streamed; the CLI on top."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from forgeline.data.inference import infer_schema
from forgeline.entities import Task
from forgeline.errors import InvalidInput, NotFound
from forgeline.packaging import Predictor, Signature, load_model, save_package
from forgeline.serving.batch import score_file
from forgeline.training.tuning import ModelPlan
from forgeline.util.progress import Progress
from tests.cli.conftest import invoke


class Recorder(Progress):
    """Keeps what the scoring reported: its tasks and the amounts advanced."""

    def __init__(self) -> None:
        self.tasks: list[tuple[str, float | None, str]] = []
        self.advanced: list[float] = []
        self.finished = 0

    def task(self, description: str, total: float | None, unit: str = "") -> None:
        self.tasks.append((description, total, unit))

    def advance(self, amount: float = 1, info: str | None = None) -> None:
        self.advanced.append(amount)

    def done(self) -> None:
        self.finished += 1


def transactions(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 40.0, n)
    country = rng.choice(["FR", "DE", "US"], n)
    items = rng.integers(1, 9, n)
    score = amount / 80 + (country == "US") + rng.normal(0, 0.5, n)
    return pd.DataFrame({"txn_id": [f"t{seed}-{i:07d}" for i in range(n)], "amount": amount,
                         "items": items, "country": country,
                         "label": (score > (np.median(score) if n else 0)).astype(int)})


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = transactions(800).drop(columns=["txn_id"])
    schema = infer_schema(data, "label")
    features = ("amount", "items", "country")
    plan = ModelPlan(Task.BINARY, schema, features, "roc_auc", 0, False)
    pipeline = plan.pipeline("logistic_regression", {}).fit(data[list(features)], data.label)
    signature = Signature.from_frame(data[list(features)], schema, "binary",
                                     list(pipeline.classes_))
    directory = tmp_path_factory.mktemp("batch") / "model"
    return save_package(directory, pipeline, signature, profile={}, metrics={}, card="")


@pytest.fixture(scope="module")
def predictor(model_dir: Path) -> Predictor:
    return load_model(model_dir)


def test_parquet_in_parquet_out_with_the_keys_and_every_row_in_order(
        tmp_path: Path, predictor: Predictor) -> None:
    data = transactions(2_500, seed=1)
    data.to_parquet(tmp_path / "in.parquet", row_group_size=600)
    progress = Recorder()
    summary = score_file(predictor, tmp_path / "in.parquet", tmp_path / "out.parquet",
                         chunk_rows=400, progress=progress)
    assert summary.rows == 2_500 and summary.rows_per_s > 0
    assert progress.tasks == [("scoring", 2_500, "rows")] and sum(progress.advanced) == 2_500
    assert len(progress.advanced) > 1 and progress.finished >= 1  # chunk by chunk
    assert summary.runtime in ("onnxruntime", "native")
    out = pd.read_parquet(summary.output)
    assert list(out.columns) == ["txn_id", "label", "prediction", "proba_0", "proba_1"]
    assert out["txn_id"].tolist() == data["txn_id"].tolist()
    expected = predictor.predict_proba(data)
    assert np.allclose(out["proba_1"], expected[1], atol=1e-6)
    assert (out["prediction"] == (expected[1] > 0.5).astype(int)).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "out.parquet"]


def test_csv_in_csv_out_with_chosen_keys(tmp_path: Path, predictor: Predictor) -> None:
    data = transactions(1_000, seed=2)
    data.to_csv(tmp_path / "in.csv", index=False)
    progress = Recorder()
    summary = score_file(predictor, tmp_path / "in.csv", tmp_path / "scores.csv",
                         keys=["txn_id"], chunk_rows=300, runtime="native", progress=progress)
    size = (tmp_path / "in.csv").stat().st_size
    assert progress.tasks == [("scoring", size, "bytes")] and sum(progress.advanced) == size
    out = pd.read_csv(summary.output)
    assert list(out.columns) == ["txn_id", "prediction", "proba_0", "proba_1"]
    assert summary.runtime == "native" and len(out) == 1_000
    assert np.allclose(out["proba_1"], predictor.predict_proba(data)[1], atol=1e-6)


def test_the_schema_is_checked_before_anything_is_scored(
        tmp_path: Path, predictor: Predictor) -> None:
    source = tmp_path / "in.parquet"
    transactions(100).drop(columns=["items"]).to_parquet(source)
    with pytest.raises(InvalidInput, match=r"lacks 1 of the model's columns: items\."):
        score_file(predictor, source, tmp_path / "out.parquet")
    transactions(100).to_parquet(source)
    with pytest.raises(InvalidInput, match="is the input file"):
        score_file(predictor, source, source)
    with pytest.raises(InvalidInput, match="Key column 'nope' not in"):
        score_file(predictor, source, tmp_path / "out.parquet", keys=["nope"])
    with pytest.raises(InvalidInput, match="must be a Parquet"):
        score_file(predictor, tmp_path / "in.json", tmp_path / "out.parquet")
    with pytest.raises(NotFound):
        score_file(predictor, tmp_path / "missing.csv", tmp_path / "out.parquet")
    with pytest.raises(InvalidInput, match=r"^engine='ray' reads Parquet input .* or use "
                                           r"engine='local'\.$"):
        transactions(10).to_csv(tmp_path / "in.csv", index=False)
        score_file(predictor, tmp_path / "in.csv", tmp_path / "out.parquet", engine="ray")
    assert not (tmp_path / "out.parquet").exists()


def test_a_bad_value_deep_in_the_file_names_its_rows_and_leaves_no_output(
        tmp_path: Path, predictor: Predictor) -> None:
    data = transactions(1_000).astype({"amount": object})
    data.loc[777, "amount"] = "lots"
    data.to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(InvalidInput, match=r"Rows 600-799: .*'amount'.*'lots' \(row 177\)"):
        score_file(predictor, tmp_path / "in.csv", tmp_path / "out.parquet", chunk_rows=200)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_an_empty_file_gives_an_empty_output(tmp_path: Path, predictor: Predictor) -> None:
    transactions(0).to_parquet(tmp_path / "in.parquet")
    summary = score_file(predictor, tmp_path / "in.parquet", tmp_path / "out.parquet")
    out = pq.read_table(summary.output)
    assert summary.rows == 0 and out.num_rows == 0
    assert out.column_names == ["txn_id", "label", "prediction", "proba_0", "proba_1"]


MEMORY_SCRIPT = """
import resource, sys
from pathlib import Path
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
from forgeline.packaging import load_model
from forgeline.serving.batch import score_file

def generate(path, rows):  # in slices: the file is never all in memory
    rng = np.random.default_rng(0)
    schema = pa.schema([("txn_id", pa.string()), ("amount", pa.float64()),
                        ("items", pa.int64()), ("country", pa.string()), ("note", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, 50_000):
            n = min(50_000, rows - start)
            writer.write_table(pa.table({
                "txn_id": [f"t{i:09d}" for i in range(start, start + n)],
                "amount": rng.gamma(2.0, 40.0, n), "items": rng.integers(1, 9, n),
                "country": rng.choice(["FR", "DE", "US"], n),
                "note": random_text(rng, n)}, schema=schema))

def random_text(rng, n):  # 96 random hex digits a row: ~100 MB of Parquet that never compresses
    text = rng.bytes(48 * n).hex()
    return [text[i * 96:(i + 1) * 96] for i in range(n)]

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

folder = Path(sys.argv[2])
generate(folder / "small.parquet", 100_000)
generate(folder / "big.parquet", 1_000_000)
predictor = load_model(Path(sys.argv[1]))
peaks = [peak_mb()]
for name in ("small", "big"):
    summary = score_file(predictor, folder / f"{name}.parquet", folder / f"{name}.out.parquet",
                         chunk_rows=20_000, runtime="native")
    peaks.append(peak_mb())
print(*peaks)
"""


def test_memory_does_not_grow_with_the_file(tmp_path: Path, model_dir: Path) -> None:
    """Scoring 1M rows after 100k raises the process's peak RSS by little.

    The 1M-row file is ~110 MB of Parquet that does not compress (a random text key
    column). Scoring it in chunks of 20k rows took ~16 MB above the small file's peak here
    (allocator pools); when the reader kept every column chunk it had read (pyarrow's
    ``pre_buffer``, its default), ~105 MB. Hence the 50 MB bound.
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(MEMORY_SCRIPT),
                           str(model_dir), str(tmp_path)],
                          capture_output=True, text=True, check=True, timeout=300)
    loaded, small, big = map(float, done.stdout.split())
    assert pq.ParquetFile(tmp_path / "big.out.parquet").metadata.num_rows == 1_000_000
    assert big - small < 50, (loaded, small, big)


def test_the_predict_command(tmp_path: Path, model_dir: Path) -> None:
    transactions(300, seed=4).to_parquet(tmp_path / "in.parquet")
    result = invoke("predict", str(model_dir), str(tmp_path / "in.parquet"), "--keys",
                    "txn_id", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == 300
    assert Path(summary["output"]) == tmp_path / "in.scores.parquet"
    assert pq.read_schema(tmp_path / "in.scores.parquet").names[0] == "txn_id"
    table = invoke("predict", str(model_dir), str(tmp_path / "in.parquet"), "-o",
                   str(tmp_path / "s.csv"), "--no-progress")
    assert table.exit_code == 0, table.output
    assert "rows/s" in table.stdout and str(tmp_path / "s.csv") in table.stdout
    transactions(10).drop(columns=["country"]).to_csv(tmp_path / "bad.csv", index=False)
    bad = invoke("predict", str(model_dir), str(tmp_path / "bad.csv"), "-o",
                 str(tmp_path / "x.parquet"), "--no-progress")
    assert bad.exit_code == 2
    assert bad.stderr.strip().startswith("error:") and "country" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_output_tables_keep_one_schema_across_chunks(tmp_path: Path,
                                                     predictor: Predictor) -> None:
    data = transactions(900, seed=5)
    data.loc[:299, "txn_id"] = None  # the first chunk's keys are all missing
    pq.write_table(pa.Table.from_pandas(data, preserve_index=False), tmp_path / "in.parquet",
                   row_group_size=300)
    summary = score_file(predictor, tmp_path / "in.parquet", tmp_path / "o.parquet",
                         chunk_rows=300)
    out = pd.read_parquet(summary.output)
    assert out["txn_id"].isna().sum() == 300 and out["txn_id"].iloc[-1] == data.txn_id.iloc[-1]


def test_chunks_scored_side_by_side_are_written_in_order(
        tmp_path: Path, predictor: Predictor, monkeypatch: pytest.MonkeyPatch) -> None:
    from forgeline.serving import batch

    monkeypatch.setattr(batch, "_scoring_threads", lambda plan: 4)  # whatever the cores
    data = transactions(3_000, seed=6)
    data.to_parquet(tmp_path / "in.parquet", row_group_size=250)
    summary = score_file(predictor, tmp_path / "in.parquet", tmp_path / "out.parquet",
                         chunk_rows=100)
    out = pd.read_parquet(summary.output)
    assert summary.rows == 3_000
    assert out["txn_id"].tolist() == data["txn_id"].tolist()
    assert np.allclose(out["proba_1"], predictor.predict_proba(data)[1], atol=1e-6)
    bad = data.astype({"amount": object})
    bad.loc[2_345, "amount"] = "lots"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InvalidInput, match=r"Rows 2300-2399: .*'lots' \(row 45\)"):
        score_file(predictor, tmp_path / "bad.csv", tmp_path / "bad.parquet", chunk_rows=100)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "in.parquet",
                                                          "out.parquet"]
