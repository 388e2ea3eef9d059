"""The server's prediction log: fields the model ignores are logged, personal ones hashed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq

from forgeline.serving.predlog import PredictionLog
from forgeline.store.predictions import read_predictions
from forgeline.util.privacy import keyed_hash
from tests.serving.conftest import TrainedStore

KEY = b"test-key"


def test_ignored_request_fields_are_logged_and_personal_ones_hashed(
        serve: Any, trained: TrainedStore, tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "log", "fraud", flush_interval_s=60, hash_key=KEY)
    server = serve(log=log)
    emails = [f"buyer{i}@shop.example" for i in range(6)]
    with httpx.Client(base_url=server.url) as http:
        for i in range(3):
            records = [{**row, "email": emails[2 * i + j], "order_ref": f"o-{2 * i + j}"}
                       for j, row in enumerate(trained.rows[:2])]
            answer = http.post("/predict", json={"records": records},
                               headers={"X-Request-ID": f"p{i}"})
            assert answer.status_code == 200, answer.text
    server.__exit__(None, None, None)  # shutdown flushes the log
    log.close()
    files = sorted((tmp_path / "log").rglob("*.parquet"))
    assert files
    for path in files:
        assert not [e for e in emails if e.encode() in path.read_bytes()]
        table = pq.read_table(path).to_pandas()
        cells = {str(v) for column in table.columns for v in table[column]}
        assert not [c for c in cells if "@" in c]
    rows = read_predictions(tmp_path / "log", "fraud").set_index(["request_id", "row"])
    assert rows.loc[("p1", 1), "email"] == keyed_hash(emails[3], KEY)
    assert rows.loc[("p1", 1), "order_ref"] == "o-3"  # ignored by the model, logged as is
    assert log.personal == {"email"}
