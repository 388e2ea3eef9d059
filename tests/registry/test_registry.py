"""The registry through the Client: registering what a run logged, references, lineage."""

from __future__ import annotations

from pathlib import Path

import pytest

import forgeline as fl
from forgeline.entities import Dataset
from forgeline.errors import InvalidInput, NotFound


def _train(tmp_path: Path, name: str = "train") -> str:
    model = tmp_path / f"{name}_model"
    model.mkdir(exist_ok=True)
    (model / "model.bin").write_bytes(name.encode())
    with fl.start_run(experiment="fraud", name="tuning") as parent, \
            fl.start_run(name=name) as run:
        run.log_dataset(Dataset("a" * 64, "transactions", "tx.parquet", 100, 5), "train")
        run.log_dataset(Dataset("b" * 64, "transactions", "tx.parquet", 20, 5), "test")
        run.log_metric("auc", 0.9)
        run.log_artifact(model, "model")
    return run.run_id, parent.run_id


def test_register_resolve_and_move_aliases(tmp_path: Path) -> None:
    client = fl.Client()
    first, _ = _train(tmp_path, "first")
    second, _ = _train(tmp_path, "second")
    mv1 = client.register_model("fraud", first, artifact_path="model")
    mv2 = client.register_model("fraud", second)
    assert (mv1.version, mv2.version) == (1, 2) and mv2.ref == "fraud/2"
    client.set_alias("fraud", "champion", version=mv1.version)
    assert client.get_model_version("fraud@champion").run_id == first
    assert client.get_model_version("fraud/2").run_id == second
    assert client.get_model_version("fraud").version == 2
    assert client.get_model_version("fraud", 1) == client.get_model_version("fraud/1")
    client.set_alias("fraud", "champion", version=2)
    assert client.get_model_version("fraud@champion").version == 2
    assert [v.version for v in client.search_model_versions("fraud")] == [2, 1]
    client.set_model_version_tag("fraud", 2, "validated", "yes")
    assert client.get_model_version("fraud@champion").tags == {"validated": "yes"}
    client.set_registered_model_tag("fraud", "forgeline.protected", "true")
    assert client.get_registered_model("fraud").tags == {"forgeline.protected": "true"}
    with pytest.raises(NotFound, match="Model 'churn' is not registered"):
        client.set_registered_model_tag("churn", "team", "risk")
    assert [m.name for m in client.list_registered_models()] == ["fraud"]
    out = client.download_model("fraud@champion", tmp_path / "served")
    assert (out / "model.bin").read_bytes() == b"second"


def test_lineage_reaches_data_and_code(tmp_path: Path) -> None:
    client = fl.Client()
    run_id, parent_id = _train(tmp_path)
    client.register_model("fraud", run_id)
    lineage = client.get_lineage("fraud/1")
    assert lineage.run is not None and lineage.run.run_id == run_id
    assert [p.run_id for p in lineage.parent_runs] == [parent_id]
    assert [(d.digest[0], ctx) for d, ctx in lineage.datasets] == [("b", "test"), ("a", "train")]
    tags = lineage.run.tags
    assert lineage.git_commit == tags.get("forgeline.git.commit")
    assert lineage.git_dirty == (tags.get("forgeline.git.dirty") == "true"
                                 if "forgeline.git.dirty" in tags else None)


def test_registering_nothing_is_refused(tmp_path: Path) -> None:
    client = fl.Client()
    with fl.start_run(experiment="fraud") as run:
        run.log_metric("auc", 0.5)
    with pytest.raises(InvalidInput, match="logged no artifacts under 'model'"):
        client.register_model("fraud", run.run_id)
    with pytest.raises(NotFound, match="Model 'fraud' is not registered"):
        client.get_registered_model("fraud")
    with pytest.raises(NotFound, match="Run 'nope' not found"):
        client.register_model("fraud", "nope")


@pytest.mark.parametrize(("ref", "message"), [
    ("fraud@", "Invalid alias ''"),
    ("fraud/0", "the version after '/' must be a positive whole number"),
    ("fraud/x", "the version after '/' must be a positive whole number"),
    ("@champion", "Invalid model name ''"),
    ("bad name", "Invalid model name 'bad name'"),
])
def test_bad_references(ref: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        fl.Client().get_model_version(ref)


def test_alias_changes_are_recorded_as_the_os_user(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    from forgeline.registry.client import local_user

    client = fl.Client()
    run_id, _ = _train(tmp_path)
    monkeypatch.setattr(getpass, "getuser", lambda: "alice")
    client.register_model("fraud", run_id, aliases=["challenger"])
    client.set_alias("fraud", "champion", 1)
    assert [(e.alias, e.actor) for e in client.get_alias_history("fraud")] == [
        ("champion", "alice"), ("challenger", "alice")]
    for error in (KeyError("uid 1234"), OSError("no user")):  # a container's bare uid
        def nameless(error: Exception = error) -> str:
            raise error
        monkeypatch.setattr(getpass, "getuser", nameless)
        assert local_user() == "unknown"
    client.delete_alias("fraud", "challenger")
    assert client.get_alias_history("fraud", "challenger", max_results=1)[0].actor == "unknown"
    with pytest.raises(InvalidInput, match="Invalid alias 'latest'"):
        client.get_alias_history("fraud", "latest")
