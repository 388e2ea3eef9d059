"""Settings: argument > environment (FORGELINE_*) > project file > default.

Every environment variable Forgeline reads is declared once, here: the settings' in
``_ENV`` (typed by their :class:`Settings` field), the others (no project-file key: a
secret, and a hand-off from a parent process to its workers) as ``ENV_*`` constants with a
typed reader each. :data:`ENVIRONMENT` lists them all. The project file is
``forgeline.toml`` in the working directory (keys as the field names below, at top level
or under a ``[forgeline]`` table).
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from forgeline.errors import InvalidInput

__all__ = ["ENVIRONMENT", "ENV_HASH_KEY", "ENV_SERVER_CONFIG", "ENV_SERVE_CONFIG",
           "ENV_SERVE_TOKEN", "ENV_TOKEN",
           "PROJECT_FILE", "SERVER_GRACEFUL_TIMEOUT_S", "SERVER_MAX_BODY_BYTES", "ServerSettings",
           "Settings", "hash_key", "load_settings", "serve_config_json", "serve_token",
           "team_token"]

PROJECT_FILE = "forgeline.toml"


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved configuration. Build it with :func:`load_settings`."""

    home: Path = Path(".forgeline")
    store_uri: str | None = None  # None: sqlite file inside ``home``
    artifact_root: Path | str | None = None  # None: ``home/artifacts``; str: s3://bucket/...
    metric_flush_size: int = 1000  # buffered metric points written per batch
    metric_flush_interval_s: float = 2.0  # ...or at the first call after this long
    heartbeat_s: float = 10.0  # a live run refreshes its heartbeat this often
    heartbeat_timeout_s: float = 60.0  # a RUNNING run silent this long counts as KILLED
    cache_dir: Path | None = None  # None: ``home/cache`` (embeddings, compiled trees, LLM answers)
    # where LLM features reach their LLM (training, batch scoring, serving without
    # --llm-url); None: the URL in the training spec (``llm.url``)
    llm_url: str | None = None

    @property
    def resolved_store_uri(self) -> str:
        if self.store_uri:
            return self.store_uri
        return f"sqlite:///{(self.home / 'forgeline.db').absolute()}"

    @property
    def resolved_artifact_root(self) -> Path | str:
        """A folder, or an object storage URI (``s3://bucket/prefix``) as given."""
        if isinstance(self.artifact_root, str):
            return self.artifact_root
        return (self.artifact_root or self.home / "artifacts").absolute()

    @property
    def resolved_cache_dir(self) -> Path:
        """Where work worth keeping between runs is cached (it can always be deleted)."""
        return (self.cache_dir or self.home / "cache").absolute()


# field name -> environment variable; the type comes from the dataclass field.
_ENV = {
    "home": "FORGELINE_HOME",
    "store_uri": "FORGELINE_STORE_URI",
    "artifact_root": "FORGELINE_ARTIFACT_ROOT",
    "metric_flush_size": "FORGELINE_METRIC_FLUSH_SIZE",
    "metric_flush_interval_s": "FORGELINE_METRIC_FLUSH_INTERVAL_S",
    "heartbeat_s": "FORGELINE_HEARTBEAT_S",
    "heartbeat_timeout_s": "FORGELINE_HEARTBEAT_TIMEOUT_S",
    "cache_dir": "FORGELINE_CACHE_DIR",
    "llm_url": "FORGELINE_LLM_URL",
}
def location(value: str | Path) -> Path | str:
    """A folder, or an object storage URI kept as text (a Path would fold ``s3://``)."""
    text = str(value)
    return text if text.startswith("s3://") else Path(text)


_TYPES = {"home": Path, "store_uri": str, "artifact_root": location,
          "metric_flush_size": int, "metric_flush_interval_s": float,
          "heartbeat_s": float, "heartbeat_timeout_s": float, "cache_dir": Path,
          "llm_url": str}

# Variables that are not settings: read where they are used (through the readers below),
# never from the project file.
ENV_SERVE_TOKEN = "FORGELINE_SERVE_TOKEN"  # forgeline serve: --token when not given
ENV_SERVE_CONFIG = "FORGELINE_SERVE_CONFIG"  # set by forgeline serve for its workers
ENV_TOKEN = "FORGELINE_TOKEN"  # the team server token an http:// store sends
ENV_SERVER_CONFIG = "FORGELINE_SERVER_CONFIG"  # set by forgeline server for its workers
ENV_HASH_KEY = "FORGELINE_HASH_KEY"  # the HMAC key personal values are hashed with
HASH_KEY_FILE = "hash.key"  # in the home folder, when ENV_HASH_KEY is not set

ENVIRONMENT: dict[str, str] = {
    **{var: f"the {name} setting" for name, var in _ENV.items()},
    ENV_SERVE_TOKEN: "forgeline serve: the bearer token inference routes require when "
                     "--token is not given",
    ENV_SERVE_CONFIG: "internal: the serving settings (JSON) forgeline serve hands its "
                      "worker processes",
    ENV_TOKEN: "the bearer token sent to a team server (an http:// or https:// store URI)",
    ENV_SERVER_CONFIG: "internal: the settings (JSON) forgeline server hands its worker "
                       "processes",
    ENV_HASH_KEY: "the secret key personal columns are hashed with (HMAC-SHA256) in "
                  "training and in the prediction log; unset: a key kept in <home>/hash.key",
}
"""Every environment variable Forgeline reads -> what it is."""


def serve_token() -> str | None:
    """``FORGELINE_SERVE_TOKEN``; None when unset or empty."""
    return os.environ.get(ENV_SERVE_TOKEN) or None


def serve_config_json() -> str | None:
    """``FORGELINE_SERVE_CONFIG`` (the JSON of a ``ServeConfig``); None when unset or empty."""
    return os.environ.get(ENV_SERVE_CONFIG) or None


def team_token() -> str | None:
    """``FORGELINE_TOKEN``; None when unset or empty."""
    return os.environ.get(ENV_TOKEN) or None


def hash_key(settings: Settings) -> bytes:
    """The HMAC key personal values are hashed with.

    ``FORGELINE_HASH_KEY`` when set (its UTF-8 bytes). Otherwise a random 32-byte key kept
    in ``<home>/hash.key``, created on first use with permissions 0600 (owner read/write
    only), so tokens stay the same across restarts and between training and serving on
    one home. Whoever can read that file (or the variable) can test guesses against the
    hashes: keep it as secret as the data.
    """
    raw = os.environ.get(ENV_HASH_KEY)
    if raw:
        return raw.encode("utf-8")
    path = Path(settings.home) / HASH_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = os.urandom(32)
        try:  # O_EXCL: of two processes starting at once, the first one's key is kept
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(key.hex())
            return key
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as e:
        raise InvalidInput(f"Cannot read the hash key {path}: {e}.",
                           hint=f"Restore the file, or set {ENV_HASH_KEY}.") from None
    if len(key) < 16:
        raise InvalidInput(f"The hash key {path} holds {len(key)} bytes, fewer than 16.",
                           hint=f"Restore the file, or set {ENV_HASH_KEY}.")
    return key


SERVER_MAX_BODY_BYTES = 32 << 20  # the team server's default limit on a JSON request body
SERVER_GRACEFUL_TIMEOUT_S = 10  # how long the team server's shutdown waits for requests


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """What ``forgeline server`` serves: its store, artifact folder, whether tokens are
    required, and the largest JSON body it reads. Its workers get it as JSON in
    ``FORGELINE_SERVER_CONFIG`` (:meth:`to_env`, :meth:`from_env`)."""

    store_uri: str
    artifact_root: str
    auth: bool
    max_body_bytes: int = SERVER_MAX_BODY_BYTES

    def to_env(self) -> dict[str, str]:
        """The environment variable that hands these settings to a worker process."""
        return {ENV_SERVER_CONFIG: json.dumps({f: getattr(self, f) for f in self.__slots__})}

    @classmethod
    def from_env(cls) -> ServerSettings:
        """The settings ``forgeline server`` handed this worker process."""
        raw = os.environ.get(ENV_SERVER_CONFIG)
        if not raw:
            raise InvalidInput(f"{ENV_SERVER_CONFIG} is not set: this function builds the app "
                               "of a `forgeline server` worker.",
                               hint="Start the server with `forgeline server`.")
        return cls(**json.loads(raw))


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = _TYPES[name]
    try:
        result = kind(value)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"{source}: {name} must be {kind.__name__}, got {value!r}.",
            hint="Fix the value or remove it to use the default.",
        ) from None
    if kind in (int, float) and result <= 0:
        raise InvalidInput(f"{source}: {name} must be positive, got {value!r}.")
    return result


def _project_file(cwd: Path) -> dict[str, Any]:
    path = cwd / PROJECT_FILE
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise InvalidInput(f"{path}: cannot read the project file ({e}).") from None
    data = data.get("forgeline", data)
    unknown = sorted(set(data) - set(_TYPES))
    if unknown:
        raise InvalidInput(
            f"{path}: unknown setting {unknown[0]!r}.", hint=f"Known: {', '.join(_TYPES)}."
        )
    return {k: _coerce(k, v, str(path)) for k, v in data.items()}


def load_settings(cwd: Path | None = None, **overrides: Any) -> Settings:
    """Resolve settings; keyword arguments that are not None win over everything.

    A relative ``home`` from the project file is taken relative to that file's folder.
    """
    cwd = cwd or Path.cwd()
    values: dict[str, Any] = {}
    for name, value in _project_file(cwd).items():
        values[name] = cwd / value if isinstance(value, Path) else value
    for name, var in _ENV.items():
        raw = os.environ.get(var)
        if raw not in (None, ""):
            values[name] = _coerce(name, raw, f"environment variable {var}")
    for name, value in overrides.items():
        if name not in _TYPES:
            raise TypeError(f"unknown setting {name!r}")
        if value is not None:
            values[name] = _coerce(name, value, "argument")
    return replace(Settings(), **values)
