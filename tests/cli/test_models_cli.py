"""``forgeline models``: list, show (with lineage), versions, aliases."""

from __future__ import annotations

import json

from tests.cli.conftest import GIT, World


def test_models_list(world: World) -> None:
    result = world.invoke("models", "list")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "fraud" in line)
    assert "2" in row and "@champion -> 1" in row
    (model,) = json.loads(world.invoke("models", "list", "--json").stdout)
    assert model["name"] == "fraud" and model["latest_version"] == 2
    assert model["aliases"] == {"champion": 1}
    assert isinstance(model["last_updated_time"], int)


def test_models_list_empty(tmp_path) -> None:
    from tests.cli.conftest import invoke, sqlite_uri

    result = invoke("--store", sqlite_uri(tmp_path / "empty.db"), "models", "list")
    assert result.exit_code == 0 and "No registered models yet." in result.stdout


def test_models_show_by_alias(world: World) -> None:
    result = world.invoke("models", "show", "fraud@champion")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "fraud/1" in out and "@champion" in out
    assert world.runs["baseline"] in out and "baseline" in out
    assert f"{GIT['forgeline.git.commit']} (uncommitted changes)" in out
    assert "transactions" in out and "train" in out


def test_models_show_version_and_latest_lineage(world: World) -> None:
    for ref in ("fraud/2", "fraud"):
        out = world.invoke("models", "show", ref).stdout
        assert "fraud/2" in out and world.runs["deeper"] in out
        parent = next(line for line in out.splitlines() if "parent run" in line)
        assert world.runs["tuning"] in parent and "tuning" in parent


def test_models_show_json(world: World) -> None:
    result = world.invoke("models", "show", "fraud@champion", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert set(shown) == {"model_version", "run", "parent_runs", "datasets", "git_commit",
                          "git_dirty"}
    assert shown["model_version"]["version"] == 1
    assert shown["model_version"]["aliases"] == ["champion"]
    assert shown["run"]["run_id"] == world.runs["baseline"]
    assert shown["parent_runs"] == []
    assert shown["datasets"][0]["context"] == "train"
    assert shown["datasets"][0]["dataset"]["digest"] == "ab" * 32
    assert shown["git_commit"] == GIT["forgeline.git.commit"] and shown["git_dirty"] is True
    shown = json.loads(world.invoke("models", "show", "fraud/2", "--json").stdout)
    assert [p["name"] for p in shown["parent_runs"]] == ["tuning"]
    assert shown["run"]["metrics"]["loss"] == "NaN"


def test_models_versions(world: World) -> None:
    result = world.invoke("models", "versions", "fraud")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    v1 = next(line for line in lines if world.runs["baseline"][:8] in line)
    v2 = next(line for line in lines if world.runs["deeper"][:8] in line)
    assert "@champion" in v1 and "@champion" not in v2
    assert lines.index(v2) < lines.index(v1)  # newest first
    found = json.loads(world.invoke("models", "versions", "fraud", "--json").stdout)
    assert [v["version"] for v in found] == [2, 1]
    assert found[1]["run_id"] == world.runs["baseline"]


def test_alias_move_reports_old_and_new_version(world: World) -> None:
    result = world.invoke("models", "alias", "fraud", "champion", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout == "fraud@champion -> version 2 (was 1)\n"
    assert world.client.get_model_version("fraud@champion").version == 2
    again = world.invoke("models", "alias", "fraud", "champion", "2").stdout
    assert again == "fraud@champion -> version 2 (unchanged)\n"
    new = world.invoke("models", "alias", "fraud", "challenger", "1").stdout
    assert new == "fraud@challenger -> version 1 (new)\n"


def test_alias_delete(world: World) -> None:
    result = world.invoke("models", "alias", "fraud", "champion", "--delete")
    assert result.exit_code == 0, result.output
    assert result.stdout == "fraud@champion deleted (was version 1)\n"
    assert world.client.get_registered_model("fraud").aliases == {}


def test_alias_needs_a_version_or_delete_but_not_both(world: World) -> None:
    for args in (("fraud", "champion"), ("fraud", "champion", "1", "--delete")):
        result = world.invoke("models", "alias", *args)
        assert result.exit_code == 2
        assert "give either a VERSION or --delete" in result.stderr
    result = world.invoke("models", "alias", "fraud", "champion", "two")
    assert result.exit_code == 2 and "integer" in result.stderr
    assert world.client.get_registered_model("fraud").aliases == {"champion": 1}


def test_models_history(world: World) -> None:
    from forgeline.errors import STATUS, NotFound
    from forgeline.registry.client import local_user
    from tests.cli.conftest import raised

    for args in (("champion", "2"), ("challenger", "1"), ("challenger", "--delete")):
        assert world.invoke("models", "alias", "fraud", *args).exit_code == 0
    result = world.invoke("models", "history", "fraud")
    assert result.exit_code == 0, result.output
    rows = [[cell.strip() for cell in line.split("│")[2:5]]
            for line in result.stdout.splitlines() if "│" in line and "@" in line]
    assert rows == [["@challenger", "deleted (was 1)", local_user()],  # newest first
                    ["@challenger", "-> 1 (new)", local_user()],
                    ["@champion", "-> 2 (was 1)", local_user()],
                    ["@champion", "-> 1 (new)", local_user()]]  # set when the world was made
    only = world.invoke("models", "history", "fraud", "--alias", "champion", "--max", "1")
    assert "Alias history of fraud@champion" in only.stdout
    (row,) = [line for line in only.stdout.splitlines() if "@champion" in line and "│" in line]
    assert "-> 2 (was 1)" in row
    found = json.loads(world.invoke("models", "history", "fraud", "--json").stdout)
    assert [(e["alias"], e["version"], e["previous_version"]) for e in found] == [
        ("challenger", None, 1), ("challenger", 1, None), ("champion", 2, 1),
        ("champion", 1, None)]
    assert set(found[0]) == {"name", "alias", "version", "previous_version", "time", "actor"}
    assert found[0]["actor"] == local_user() and isinstance(found[0]["time"], int)
    none = world.invoke("models", "history", "fraud", "--alias", "shadow")
    assert none.exit_code == 0 and "No alias changes of fraud@shadow recorded." in none.stdout
    ghost = world.invoke("models", "history", "ghost")
    assert type(raised(ghost)) is NotFound and ghost.exit_code == STATUS[NotFound.code][1]
    assert ghost.stderr.count("\n") == 1 and "Model 'ghost' is not registered" in ghost.stderr
