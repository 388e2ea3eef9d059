"""Mistakes print one line and exit with the code from ``errors.STATUS``; store selection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import forgeline as fl
from forgeline.cli import main
from forgeline.errors import STATUS, ForgelineError, InvalidInput, NotFound
from tests.cli.conftest import World, invoke, raised, sqlite_uri

FORGELINE = Path(sys.executable).with_name("forgeline")  # the console script


def exit_for(error: type[ForgelineError]) -> int:
    return STATUS[error.code][1]


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def assert_one_error_line(err: str, *fragments: str) -> None:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


@pytest.mark.parametrize(("args", "error", "fragments"), [
    (("runs", "list", "--filter", "metrics.auc >> 1"), InvalidInput,
     ("Invalid filter at position 14", "Example:")),
    (("runs", "list", "-o", "metrics.auc SIDEWAYS"), InvalidInput, ("ASC or DESC",)),
    (("runs", "list", "--max", "0"), InvalidInput, ("max_results",)),
    (("runs", "list", "-e", "nope"), NotFound, ("Experiment 'nope' not found",)),
    (("runs", "show", "0" * 32), NotFound, ("not found", "forgeline runs list")),
    (("runs", "compare", "0" * 32, "1" * 32), NotFound, ("not found",)),
    (("models", "show", "nope"), NotFound, ("'nope'",)),
    (("models", "show", "fraud@nope"), NotFound, ("no alias 'nope'", "champion")),
    (("models", "show", "fraud/0"), InvalidInput, ("positive whole number",)),
    (("models", "versions", "nope"), NotFound, ("'nope'",)),
    (("models", "alias", "fraud", "latest", "1"), InvalidInput, ("Invalid alias 'latest'",)),
    (("models", "alias", "fraud", "v2", "1"), InvalidInput, ("Invalid alias 'v2'",)),
    (("models", "alias", "fraud", "champion", "9"), NotFound, ("no version 9",)),
    (("models", "alias", "fraud", "ghost", "--delete"), NotFound, ("no alias 'ghost'",)),
])
def test_user_mistakes(world: World, args: tuple[str, ...], error: type[ForgelineError],
                       fragments: tuple[str, ...]) -> None:
    result = world.invoke(*args)
    assert type(raised(result)) is error
    assert result.exit_code == exit_for(error)
    assert result.stdout == ""
    assert_one_error_line(result.stderr, *fragments)


def test_main_prints_one_line_and_exits_with_the_error_code(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "--store", world.uri, "runs", "list", "-f", "auc ==")
    assert code == exit_for(InvalidInput) == 2
    assert out == ""
    assert_one_error_line(err, "position")
    code, out, err = run_main(capsys, "--store", world.uri, "runs", "show", "nope")
    assert code == exit_for(NotFound) == 3
    assert_one_error_line(err, "Run 'nope' not found")
    code, out, err = run_main(capsys, "--store", world.uri, "models", "alias", "fraud",
                              "latest", "2")
    assert code == 2
    assert_one_error_line(err, "Invalid alias")


def test_main_exits_zero_on_success(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "--store", world.uri, "experiments", "list", "--json")
    assert code == 0 and err == ""
    assert {e["name"] for e in json.loads(out)} == {"fraud", "other"}


def test_ctrl_c_exits_130_with_one_line(world: World, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # stands in for a real Ctrl-C mid-command

    monkeypatch.setattr(fl.Client, "list_experiments", interrupted)
    code, out, err = run_main(capsys, "--store", world.uri, "experiments", "list")
    assert code == 130 and out == ""
    assert err == "error: interrupted\n"


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "runs", "nonsense")
    assert code == 2 and "No such command" in err and "Traceback" not in err


def test_store_option_selects_the_store(world: World, tmp_path: Path) -> None:
    out = invoke("--store", world.uri, "experiments", "list").stdout
    assert "fraud" in out
    empty = sqlite_uri(tmp_path / "empty" / "forgeline.db")
    result = invoke("--store", empty, "experiments", "list")
    assert result.exit_code == 0 and "No experiments yet." in result.stdout


def test_environment_selects_the_store(world: World, tmp_path: Path) -> None:
    result = invoke("runs", "list", "--json", env={"FORGELINE_STORE_URI": world.uri})
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == len(world.runs)
    # --store wins over the environment
    empty = sqlite_uri(tmp_path / "empty" / "forgeline.db")
    result = invoke("--store", empty, "runs", "list", "--json",
                    env={"FORGELINE_STORE_URI": world.uri})
    assert json.loads(result.stdout) == []


def test_without_store_or_environment_the_local_default_is_used(tmp_path: Path) -> None:
    result = invoke("experiments", "list")
    assert result.exit_code == 0 and "No experiments yet." in result.stdout
    assert (tmp_path / ".forgeline" / "forgeline.db").exists()


def _console_script(*args: str, uri: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGELINE_")}
    env["FORGELINE_STORE_URI"] = uri
    return subprocess.run([str(FORGELINE), *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)


def test_console_script_reports_a_mistake_in_one_line(world: World) -> None:
    done = _console_script("runs", "show", "no-such-run", uri=world.uri)
    assert done.returncode == exit_for(NotFound)
    assert done.stdout == ""
    assert_one_error_line(done.stderr, "Run 'no-such-run' not found")
    done = _console_script("runs", "list", "-f", "metrics.auc >", uri=world.uri)
    assert done.returncode == exit_for(InvalidInput)
    assert_one_error_line(done.stderr, "position")


def test_console_script_lists_runs_as_json(world: World) -> None:
    done = _console_script("runs", "list", "-e", "other", "--json", uri=world.uri)
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)
    assert run["name"] == "elsewhere" and run["metrics"] == {"acc": "Infinity"}


def test_help_opens_no_database_and_does_not_import_sqlalchemy(tmp_path: Path) -> None:
    code = "import sys; from forgeline.cli import main; main(['--help'])"
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code],
                          capture_output=True, text=True, timeout=60, check=False,
                          cwd=tmp_path)
    assert done.returncode == 0
    assert "Usage" in done.stdout and "runs" in done.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "forgeline.cli" in imported
    assert not any(name.startswith("sqlalchemy") for name in imported)
    assert not (tmp_path / ".forgeline").exists()
