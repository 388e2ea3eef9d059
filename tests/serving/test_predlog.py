"""The prediction log: concurrent appends, a bounded queue, atomic files, filtered reads."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from forgeline.config import load_settings
from forgeline.errors import InvalidInput
from forgeline.serving.predlog import PredictionLog
from forgeline.serving.runtime import Prediction
from forgeline.store.predictions import prediction_log_root, read_predictions, stored_name

DAY = 86400.0
T0 = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC).timestamp()


def request(rows: int, seed: int = 0) -> tuple[pd.DataFrame, Prediction]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"amount": rng.gamma(2, 20, rows),
                          "country": rng.choice(["FR", "DE", None], rows),
                          "online": rng.random(rows) > 0.5,
                          "when": pd.Timestamp("2025-01-01") + pd.to_timedelta(
                              rng.integers(0, 10**6, rows), unit="s")})
    proba = rng.dirichlet([1, 1], rows)
    return frame, Prediction(np.where(proba[:, 1] > 0.5, "fraud", "ok"), proba)


def test_concurrent_appends_all_arrive_in_order_per_request(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "fraud", flush_rows=200, flush_interval_s=0.05,
                        classes=["ok", "fraud"])

    def client(k: int) -> None:
        for i in range(150):
            frame, prediction = request(1 + i % 3, seed=i)
            assert log.append(f"c{k}-{i}", frame, prediction, version=2, runtime="native",
                              shadow=i % 5 == 0)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert log.close()
    expected = 4 * sum(1 + i % 3 for i in range(150))
    assert (log.written, log.dropped, log.failed_writes) == (expected, 0, 0)
    everything = read_predictions(tmp_path, "fraud", include_shadow=True)
    assert len(everything) == expected and everything["request_id"].nunique() == 600
    assert list(everything.columns[:6]) == ["request_id", "row", "ts", "model_version",
                                            "runtime", "shadow"]
    assert {"amount", "country", "online", "when", "prediction", "proba_ok",
            "proba_fraud"} <= set(everything.columns)
    rows = everything.groupby("request_id")["row"].apply(list)
    assert all(r == list(range(len(r))) for r in rows)
    one = everything[everything.request_id == "c1-7"]
    frame, prediction = request(2, seed=7)
    assert one["amount"].tolist() == pytest.approx(frame["amount"].tolist())
    assert one["proba_fraud"].tolist() == pytest.approx(prediction.proba[:, 1].tolist())
    assert one["prediction"].tolist() == prediction.labels.tolist()
    primary = read_predictions(tmp_path, "fraud")
    assert not primary["shadow"].any() and len(primary) < expected


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "fraud", max_queue_records=10, flush_rows=1000,
                        flush_interval_s=60)
    frame, prediction = request(1)
    started = time.perf_counter()
    accepted = [log.append(f"r{i}", frame, prediction, version=1, runtime="native")
                for i in range(25)]
    assert time.perf_counter() - started < 0.5
    assert accepted == [True] * 10 + [False] * 15
    assert log.dropped == 15 and log.queued == 10
    assert log.flush() and log.written == 10
    assert log.append("late", frame, prediction, version=1, runtime="native")
    assert log.close() and log.written == 11
    assert not log.append("closed", frame, prediction, version=1, runtime="native")
    assert log.dropped == 16
    assert len(read_predictions(tmp_path, "fraud")) == 11


def test_write_failures_are_counted_not_raised(tmp_path: Path) -> None:
    (tmp_path / "fraud").write_text("a file where the model's folder should be")
    log = PredictionLog(tmp_path, "fraud", flush_rows=1, flush_interval_s=0.05)
    frame, prediction = request(3)
    assert log.append("r1", frame, prediction, version=1, runtime="native")
    assert log.close()
    assert (log.written, log.dropped, log.failed_writes) == (0, 3, 1)


def test_files_go_to_date_partitions_and_reads_open_only_the_needed_ones(
        tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "fraud", flush_rows=10_000, flush_interval_s=60)
    for day in range(3):
        frame, prediction = request(2, seed=day)
        log.append(f"d{day}", frame, prediction, version=day + 1, runtime="onnxruntime",
                   ts=T0 + day * DAY)
        log.append(f"s{day}", frame, prediction, version=9, runtime="native", shadow=True,
                   ts=T0 + day * DAY + 1)
    assert log.close()
    days = sorted(p.name for p in (tmp_path / "fraud").iterdir())
    assert days == ["date=2025-03-01", "date=2025-03-02", "date=2025-03-03"]
    names = [p.name for p in (tmp_path / "fraud" / days[0]).iterdir()]
    assert len(names) == 1 and names[0].startswith("part-") and names[0].endswith(".parquet")
    # a damaged file in the oldest partition: only reads that need that day open it
    (tmp_path / "fraud" / days[0] / names[0]).write_bytes(b"not parquet")
    since = dt.datetime(2025, 3, 2, 0, 0)  # naive: UTC
    recent = read_predictions(tmp_path, "fraud", since=since)
    assert recent["request_id"].unique().tolist() == ["d1", "d2"]
    assert recent["model_version"].unique().tolist() == [2, 3]
    later = read_predictions(tmp_path, "fraud", since=dt.datetime.fromtimestamp(
        T0 + 2 * DAY + 0.5, dt.UTC), include_shadow=True)
    assert later["request_id"].tolist() == ["s2", "s2"]
    assert read_predictions(tmp_path, "fraud", last=3)["request_id"].tolist() == [
        "d1", "d2", "d2"]
    assert read_predictions(tmp_path, "nobody").empty


def test_one_model_call_for_several_requests_is_one_record(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "fraud", flush_rows=10_000, flush_interval_s=60)
    frame, prediction = request(6)
    assert log.append(["a", "b", "c"], frame, prediction, version=2, runtime="onnxruntime",
                      rows=[1, 3, 2], shadow=[False, True, False], ts=T0)
    with pytest.raises(InvalidInput, match="3 request ids"):  # counts that do not add up
        log.append(["a", "b", "c"], frame, prediction, version=2, runtime="native",
                   rows=[1, 1, 1])
    assert log.close() and log.written == 6
    out = read_predictions(tmp_path, "fraud", include_shadow=True)
    assert out["request_id"].tolist() == ["a", "b", "b", "b", "c", "c"]
    assert out["row"].tolist() == [0, 0, 1, 2, 0, 1]
    assert out["shadow"].tolist() == [False, True, True, True, False, False]
    assert np.allclose(out["amount"], frame["amount"])
    assert read_predictions(tmp_path, "fraud")["request_id"].tolist() == ["a", "c", "c"]


def test_input_names_that_clash_with_the_log_columns_are_prefixed(tmp_path: Path) -> None:
    assert [stored_name(c) for c in ("ts", "row", "proba_x", "amount", "input_ts")] == [
        "input_ts", "input_row", "input_proba_x", "amount", "input_ts"]
    log = PredictionLog(tmp_path, "m", flush_rows=1, flush_interval_s=0.05)
    frame = pd.DataFrame({"ts": [1.5, 2.5], "prediction": ["a", "b"]})
    log.append("r", frame, Prediction(np.array([3.0, 4.0]), None), version=None,
               runtime="native")
    assert log.close()
    out = read_predictions(tmp_path, "m")
    assert out["input_ts"].tolist() == [1.5, 2.5] and out["prediction"].tolist() == [3.0, 4.0]
    assert out["input_prediction"].tolist() == ["a", "b"] and (out["model_version"] == -1).all()


def test_a_killed_writer_leaves_no_partial_file_visible(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import numpy as np, pandas as pd
        from pathlib import Path
        from forgeline.serving.predlog import PredictionLog
        from forgeline.serving.runtime import Prediction
        log = PredictionLog(Path({str(tmp_path)!r}), "fraud", flush_rows=20_000,
                            flush_interval_s=0.01)
        frame = pd.DataFrame({{"x": np.random.rand(20_000), "s": ["abc" * 20] * 20_000}})
        prediction = Prediction(np.zeros(20_000), None)
        i = 0
        while True:
            log.append(f"r{{i}}", frame, prediction, version=1, runtime="native")
            i += 1
    """)
    process = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list(tmp_path.rglob("part-*"))) < 3:
            time.sleep(0.05)
        assert process.poll() is None, "the writer died on its own"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    visible = list(tmp_path.rglob("part-*.parquet"))
    assert len(visible) >= 3
    for path in visible:
        assert pq.ParquetFile(path).metadata.num_rows > 0
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p not in visible]
    assert all(p.name.startswith(".") for p in leftovers)
    assert len(read_predictions(tmp_path, "fraud")) == 20_000 * len(
        read_predictions(tmp_path, "fraud")["request_id"].unique())


def test_the_default_root_and_bad_arguments(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    assert prediction_log_root(settings) == (tmp_path / "home" / "predictions").absolute()
    with pytest.raises(InvalidInput, match="Invalid model name"):
        PredictionLog(tmp_path, "../escape")
    with pytest.raises(InvalidInput, match="flush_rows >= 1"):
        PredictionLog(tmp_path, "m", flush_rows=0)


def test_number_inputs_round_trip_whatever_path_joins_them(tmp_path: Path) -> None:
    """Frames of one dtype (the common case: one matrix each), of several numeric dtypes
    (column by column) and with text (pd.concat) all store the same values."""
    columns = pd.Index(["a", "b", "c"])
    rng = np.random.default_rng(3)
    frames = [pd.DataFrame({"a": rng.normal(size=n), "b": rng.integers(0, 9, n),
                            "c": rng.normal(size=n).astype(np.float32)}).set_axis(
        columns, axis=1) for n in (1, 3, 2)]
    floats = [f.astype(np.float64) for f in frames]
    for name, given in (("floats", floats), ("m", frames)):
        log = PredictionLog(tmp_path, name, flush_rows=10_000, flush_interval_s=60)
        for i, frame in enumerate(given):
            proba = rng.dirichlet([1, 1], len(frame))
            assert log.append(f"r{i}", frame, Prediction(proba.argmax(1), proba), version=1,
                              runtime="native", shadow=np.bool_(False), ts=T0 + i)
        assert log.close() and log.written == 6
    assert read_predictions(tmp_path, "floats")[list(columns)].equals(
        pd.concat(floats, ignore_index=True))
    out = read_predictions(tmp_path, "m")
    joined = pd.concat(frames, ignore_index=True)
    assert out["b"].dtype == np.float64 and out["b"].tolist() == joined["b"].tolist()
    assert np.array_equal(out[["a", "c"]].to_numpy(), joined[["a", "c"]].to_numpy(np.float64))
    assert out["request_id"].tolist() == ["r0", "r1", "r1", "r1", "r2", "r2"]

    mixed = PredictionLog(tmp_path, "mixed", flush_rows=10_000, flush_interval_s=60)
    text = frames[1].assign(c=["x", None, "z"])
    for i, frame in enumerate([frames[0], text]):
        mixed.append(f"q{i}", frame, Prediction(np.zeros(len(frame)), None), version=1,
                     runtime="native", ts=T0 + i)
    assert mixed.close() and mixed.written == 4
    back = read_predictions(tmp_path, "mixed")
    assert float(back["c"][0]) == pytest.approx(frames[0]["c"][0])  # stored as text
    assert back["c"][1] == "x" and pd.isna(back["c"][2]) and back["c"][3] == "z"
    assert back["a"].tolist() == pd.concat([frames[0], text])["a"].tolist()
    with pytest.raises(InvalidInput, match="2 shadow flags for 3 requests"):
        mixed.append(["a", "b", "c"], joined, Prediction(np.zeros(6), None), version=1,
                     runtime="native", rows=[1, 2, 3], shadow=[True, False])
