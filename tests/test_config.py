"""Settings resolve argument > environment > project file > default."""

from __future__ import annotations

from pathlib import Path

import pytest

from forgeline.config import Settings, load_settings
from forgeline.errors import InvalidInput


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert settings == Settings()
    assert settings.resolved_store_uri == f"sqlite:///{Path('.forgeline').absolute()}/forgeline.db"
    assert settings.resolved_cache_dir == Path(".forgeline/cache").absolute()


def test_the_cache_dir_follows_home_unless_set(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(tmp_path, home=tmp_path / "h").resolved_cache_dir == tmp_path / "h/cache"
    monkeypatch.setenv("FORGELINE_CACHE_DIR", str(tmp_path / "c"))
    assert load_settings(tmp_path, home=tmp_path / "h").resolved_cache_dir == tmp_path / "c"


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "forgeline.toml").write_text(
        '[forgeline]\nhome = "proj"\nheartbeat_s = 5\nmetric_flush_size = 10\n')
    settings = load_settings(tmp_path)
    assert settings.home == tmp_path / "proj" and settings.heartbeat_s == 5.0
    monkeypatch.setenv("FORGELINE_HEARTBEAT_S", "2.5")
    monkeypatch.setenv("FORGELINE_HOME", "/srv/fl")
    settings = load_settings(tmp_path)
    assert settings.heartbeat_s == 2.5 and settings.home == Path("/srv/fl")
    assert settings.metric_flush_size == 10
    assert load_settings(tmp_path, heartbeat_s=1, home=None).heartbeat_s == 1.0


@pytest.mark.parametrize(("var", "value", "message"), [
    ("FORGELINE_METRIC_FLUSH_SIZE", "lots", "metric_flush_size must be int, got 'lots'"),
    ("FORGELINE_HEARTBEAT_S", "-1", "heartbeat_s must be positive"),
])
def test_bad_environment_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, var: str,
                                value: str, message: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(InvalidInput, match=f"environment variable {var}: {message}"):
        load_settings(tmp_path)


def test_bad_project_file(tmp_path: Path) -> None:
    (tmp_path / "forgeline.toml").write_text("store_urii = 'x'\n")
    with pytest.raises(InvalidInput, match="unknown setting 'store_urii'"):
        load_settings(tmp_path)
    (tmp_path / "forgeline.toml").write_text("this is = = not toml")
    with pytest.raises(InvalidInput, match="cannot read the project file"):
        load_settings(tmp_path)


def test_the_artifact_root_may_be_object_storage(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGELINE_ARTIFACT_ROOT", "s3://team-bucket/forgeline")
    settings = load_settings(tmp_path)
    assert settings.resolved_artifact_root == "s3://team-bucket/forgeline"  # not folded
    monkeypatch.setenv("FORGELINE_ARTIFACT_ROOT", "shared/artifacts")
    assert load_settings(tmp_path).resolved_artifact_root == Path("shared/artifacts").absolute()
