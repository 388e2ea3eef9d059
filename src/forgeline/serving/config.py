"""The settings of one model server: small frozen value objects, each checked once.

:class:`ServeConfig` says what to serve (the model, a canary, a shadow, the runtime) and
holds three parts that each check their own values:

- :class:`Listener`: where and how the server listens (host, port, workers, body limit,
  graceful shutdown, access log, bearer token, the OIP v2 gRPC port);
- :class:`Batching`: how concurrent requests share model calls;
- :class:`MonitorSchedule`: when the prediction log is monitored in the background (off
  unless ``every_s`` is set). Serving only carries it: the flow that serves *and*
  monitors (:mod:`forgeline.workflows.serve`) runs it and checks its alert rules.

A refused value raises :class:`InvalidSetting`, whose message names the parameter
(``Invalid listener port -1: ...``); an interface that calls the settings something else
(the command line names its flags) rebuilds the message with :meth:`InvalidSetting.naming`.

With several workers uvicorn starts each one from an import string, so a worker can only
learn its settings from the environment: :meth:`ServeConfig.to_env` writes them as JSON
into ``FORGELINE_SERVE_CONFIG`` and :meth:`ServeConfig.from_env` reads them back.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from forgeline.config import ENV_SERVE_CONFIG, serve_config_json
from forgeline.errors import InvalidInput
from forgeline.serving.runtime_base import RUNTIMES
from forgeline.util.time import format_duration

__all__ = ["DEFAULT_WINDOW_S", "LIMITS", "RUNTIMES", "Batching", "InvalidSetting", "Listener",
           "MonitorSchedule", "ServeConfig", "parse_canary"]

_DAY_S = 86_400.0
DEFAULT_WINDOW_S = _DAY_S  # the monitor's window when neither window_s nor last is given

# The range each bounded setting accepts, by its path in ServeConfig (both ends included).
LIMITS: dict[str, tuple[float, float]] = {
    "listener.port": (0, 65535),
    "listener.grpc_port": (0, 65535),
    "listener.workers": (1, 512),
    "listener.max_body_bytes": (1, 1 << 34),
    "listener.graceful_timeout_s": (0.0, _DAY_S),
    "batching.max_batch_size": (1, 1 << 20),
    "batching.max_wait_ms": (0.0, 60_000.0),
    "monitor.every_s": (0.1, 30 * _DAY_S),
    "monitor.window_s": (1.0, 366 * _DAY_S),
    "monitor.last": (1, 1 << 40),
    "watch_interval_s": (0.01, _DAY_S),
    "canary_percent": (0.0, 100.0),
    "llm_timeout_s": (0.001, 3600.0),
}


class InvalidSetting(InvalidInput):
    """A serving setting out of range, or given without the one it depends on.

    The message names each setting by its parameter (``listener.port`` reads ``listener
    port``); :meth:`naming` gives the same error naming them another way.

    Attributes:
        template: the message, with ``{0}``, ``{1}``... where the settings are named.
        settings: the settings named, by path (``listener.port``), in placeholder order.
        hint_template: the hint, likewise; None without one.
    """

    def __init__(self, template: str, *settings: str, hint: str | None = None) -> None:
        self.template = template
        self.settings = settings
        self.hint_template = hint
        names = [_parameter(s) for s in settings]
        super().__init__(template.format(*names),
                         hint=None if hint is None else hint.format(*names))

    def naming(self, names: Mapping[str, str]) -> InvalidInput:
        """The same error, naming each setting as ``names`` does (by path; a setting not
        in it keeps its parameter name)."""
        given = [names.get(s, _parameter(s)) for s in self.settings]
        hint = None if self.hint_template is None else self.hint_template.format(*given)
        return InvalidInput(self.template.format(*given), hint=hint)


@dataclass(frozen=True, slots=True)
class Listener:
    """Where the server listens, and how it admits and lets go of requests.

    Attributes:
        host, port: the interface and port (0: any free one) uvicorn listens on.
        workers: how many processes answer.
        max_body_bytes: larger request bodies are refused with 413.
        graceful_timeout_s: how long shutdown waits for requests in flight.
        access_log: log one line per request (uvicorn's access log).
        token: when set, inference routes require ``Authorization: Bearer <token>``.
        grpc_port: also serve the Open Inference Protocol v2 over gRPC on this port of
            ``host`` (0: any free one), in the same process; None: no gRPC (needs
            grpcio, the ``grpc`` extra).
    """

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_body_bytes: int = 1 << 20
    graceful_timeout_s: float = 30.0
    access_log: bool = False
    token: str | None = None
    grpc_port: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host.strip():
            raise InvalidSetting("Invalid {0} " + _literal(self.host) + ": expected a host "
                                 "name or an IP address.", "listener.host")
        _check_int("listener.port", self.port)
        _check_int("listener.workers", self.workers)
        _check_int("listener.max_body_bytes", self.max_body_bytes)
        _check_number("listener.graceful_timeout_s", self.graceful_timeout_s)
        if self.token is not None and (not isinstance(self.token, str) or not self.token
                                       or self.token != self.token.strip()):
            raise InvalidSetting("Invalid {0}: the bearer token must be non-empty, without "
                                 "spaces around it.", "listener.token")
        if self.grpc_port is not None:
            _check_int("listener.grpc_port", self.grpc_port)
            if self.grpc_port == self.port != 0:
                raise InvalidSetting("{0} and {1} are both " + str(self.port) + ": HTTP and "
                                     "gRPC need a port each.", "listener.grpc_port",
                                     "listener.port", hint="Choose another {0}.")


@dataclass(frozen=True, slots=True)
class Batching:
    """How concurrent requests share model calls (micro-batching).

    Attributes:
        max_batch_size: the most rows one model call takes from concurrent requests.
        max_wait_ms: how long the first request of a batch waits for company.
    """

    max_batch_size: int = 64
    max_wait_ms: float = 2.0

    def __post_init__(self) -> None:
        _check_int("batching.max_batch_size", self.max_batch_size)
        _check_number("batching.max_wait_ms", self.max_wait_ms)

    @property
    def max_wait_s(self) -> float:
        return self.max_wait_ms / 1000.0


@dataclass(frozen=True, slots=True)
class MonitorSchedule:
    """When the server monitors its prediction log; off while ``every_s`` is None.

    Attributes:
        every_s: run the monitor every this many seconds, in a background thread.
        window_s: read the predictions of the last this many seconds (24 hours when
            neither this nor ``last`` is given).
        last: ...or the most recent this many predictions (of that window, when both are
            given).
        rules: alert rules such as ``dataset_drift > 0.3``; their syntax is checked by
            whatever runs the monitor.
        webhook: the URL a JSON alert is POSTed to when a rule starts firing.
    """

    every_s: float | None = None
    window_s: float | None = None
    last: int | None = None
    rules: tuple[str, ...] = ()
    webhook: str | None = None

    def __post_init__(self) -> None:
        rules = self.rules  # a list when read back from JSON
        if not isinstance(rules, tuple):
            object.__setattr__(self, "rules",
                               (rules,) if isinstance(rules, str) else tuple(rules))
        if self.every_s is None:
            given = [setting for setting, value in (
                ("monitor.window_s", self.window_s), ("monitor.last", self.last),
                ("monitor.rules", self.rules or None), ("monitor.webhook", self.webhook))
                if value is not None]
            if given:
                raise InvalidSetting("{0} needs {1}: it configures the periodic monitor.",
                                     given[0], "monitor.every_s",
                                     hint="Set {1} too, or drop {0}.")
            return
        _check_number("monitor.every_s", self.every_s)
        if self.window_s is not None:
            _check_number("monitor.window_s", self.window_s)
        if self.last is not None:
            _check_int("monitor.last", self.last)
        if not all(isinstance(rule, str) for rule in self.rules):
            raise InvalidSetting("Invalid {0} " + _literal(self.rules) + ": expected texts "
                                 "such as 'dataset_drift > 0.3'.", "monitor.rules")
        if self.webhook is not None and not (
                isinstance(self.webhook, str) and re.match(r"https?://[^\s/]", self.webhook)):
            raise InvalidSetting("Invalid {0} " + _literal(self.webhook) + ": expected an "
                                 "http:// or https:// URL.", "monitor.webhook")

    @property
    def on(self) -> bool:
        """Whether the monitor runs at all."""
        return self.every_s is not None

    @property
    def window(self) -> float | None:
        """The window read, in seconds: ``window_s``, or 24 hours when neither it nor
        ``last`` is given; None when only ``last`` bounds what is read."""
        if self.window_s is None and self.last is None:
            return DEFAULT_WINDOW_S
        return self.window_s

    def describe(self) -> str | None:
        """One line for a start-up summary, or None when the monitor is off."""
        if self.every_s is None:
            return None
        parts = [f"every {format_duration(self.every_s)}"]
        if self.window is not None:
            parts.append(f"last {format_duration(self.window)} of predictions")
        if self.last is not None:
            parts.append(f"at most {self.last:,} rows")
        if self.rules:
            n = len(self.rules)
            parts.append(f"{n} alert rule{'s' if n > 1 else ''}"
                         + (" to the webhook" if self.webhook else ""))
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """What to serve and how.

    Attributes:
        model: the model reference (``fraud@champion``, ``fraud/3``, ``fraud``) or a
            package directory.
        store_uri: the store to resolve references in; None for the configured default.
        cache_dir: where downloaded model versions are kept; None for ``<home>/models``.
        listener: where and how requests are received.
        batching: how concurrent requests share model calls.
        monitor: when the prediction log is monitored (off by default).
        shadow: a model scored on every request in the background; never answers.
        canary: a model that answers ``canary_percent`` percent of requests.
        watch: poll the registry every ``watch_interval_s`` seconds and swap in the new
            version when an alias used by the server moves.
        runtime: ``auto``, ``native`` or ``onnx``, passed to ``select_runtime``.
        log_predictions: append every prediction to the prediction log
            (``<home>/predictions/<model>``).
        llm_url: where models with LLM features reach their LLM (None:
            ``FORGELINE_LLM_URL``, else the URL they were trained with).
        llm_timeout_s: how long a prediction waits for its LLM answers (None: the
            training spec's ``llm.timeout_s``); past it the request fails with 504.
        manifest_sha256: when set, the sha256 the primary model's ``MANIFEST.json`` must
            have (:func:`forgeline.packaging.manifest_digest`): the server refuses to
            start on any other package, e.g. an image rebuilt under the same tag.
    """

    model: str
    store_uri: str | None = None
    cache_dir: str | None = None
    listener: Listener = field(default_factory=Listener)
    batching: Batching = field(default_factory=Batching)
    monitor: MonitorSchedule = field(default_factory=MonitorSchedule)
    shadow: str | None = None
    canary: str | None = None
    canary_percent: float = 0.0
    watch: bool = False
    watch_interval_s: float = 10.0
    runtime: str = "auto"
    log_predictions: bool = True
    manifest_sha256: str | None = None
    llm_url: str | None = None
    llm_timeout_s: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise InvalidInput("Give the model to serve, e.g. fraud@champion.")
        for name, kind in _PARTS.items():
            if not isinstance(getattr(self, name), kind):
                raise InvalidInput(f"ServeConfig.{name} must be a {kind.__name__}.")
        _check_number("watch_interval_s", self.watch_interval_s)
        if self.canary is not None:
            _check_number("canary_percent", self.canary_percent)
        if self.llm_timeout_s is not None:
            _check_number("llm_timeout_s", self.llm_timeout_s)
        if self.runtime not in RUNTIMES:
            raise InvalidInput(f"Unknown runtime {self.runtime!r}.",
                               hint=f"Use one of {', '.join(RUNTIMES)}.")
        if self.manifest_sha256 is not None:
            if not isinstance(self.manifest_sha256, str) or not re.fullmatch(
                    r"[0-9a-f]{64}", self.manifest_sha256):
                raise InvalidSetting("Invalid {0} " + _literal(self.manifest_sha256) + ": "
                                     "expected 64 lowercase hex digits.", "manifest_sha256")
            if self.watch:
                raise InvalidSetting("{0} pins one package, and {1} swaps in others.",
                                     "manifest_sha256", "watch", hint="Drop one of them.")
        if self.monitor.on and not self.log_predictions:
            raise InvalidSetting("{0} reads the prediction log, and {1} turns it off.",
                                 "monitor.every_s", "log_predictions=False",
                                 hint="Drop {1}, or {0}.")

    @property
    def refs(self) -> list[str]:
        """Every model reference served (primary, canary, shadow), each once, in that order."""
        return list(dict.fromkeys(r for r in (self.model, self.canary, self.shadow) if r))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        """Read :meth:`to_json` output; InvalidInput when it is not that."""
        try:
            data: Any = json.loads(text)
            if not isinstance(data, dict):
                raise TypeError("expected a JSON object")
            parts = {name: kind(**data.pop(name, {})) for name, kind in _PARTS.items()}
            return cls(**data, **parts)
        except (ValueError, TypeError) as e:
            raise InvalidInput(f"Invalid serving settings in {ENV_SERVE_CONFIG}: {e}."
                               ) from None

    def to_env(self) -> dict[str, str]:
        """The environment a worker process needs to build the same app."""
        return {ENV_SERVE_CONFIG: self.to_json()}

    @classmethod
    def from_env(cls) -> ServeConfig:
        """The settings a parent process put in ``FORGELINE_SERVE_CONFIG``."""
        text = serve_config_json()
        if text is None:
            raise InvalidInput(f"{ENV_SERVE_CONFIG} is not set: start workers with "
                               "forgeline serve.")
        return cls.from_json(text)


_PARTS: dict[str, type] = {"listener": Listener, "batching": Batching,
                           "monitor": MonitorSchedule}


def parse_canary(text: str) -> tuple[str, float]:
    """``"fraud@challenger:10"`` -> ``("fraud@challenger", 10.0)``.

    Raises:
        InvalidInput: no ``:PERCENT`` suffix, or a percentage outside (0, 100].
    """
    ref, sep, percent = text.rpartition(":")
    try:
        value = float(percent) if sep and ref else math.nan
    except ValueError:
        value = math.nan
    if not (0.0 < value <= 100.0):
        raise InvalidInput(f"Invalid canary {text!r}: expected MODEL:PERCENT with a percentage "
                           "above 0 and at most 100.", hint="For example fraud@challenger:10.")
    return ref, value


def _parameter(setting: str) -> str:
    """How a message names a setting: ``listener.port`` -> ``listener port``."""
    return setting.replace(".", " ")


def _literal(value: Any) -> str:
    """``repr(value)``, safe inside a message template."""
    return repr(value).replace("{", "{{").replace("}", "}}")


def _check_int(setting: str, value: Any) -> None:
    low, high = (int(v) for v in LIMITS[setting])
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidSetting("Invalid {0} " + _literal(value) + f": expected a whole number "
                             f"from {low} to {high}.", setting)


def _check_number(setting: str, value: Any) -> None:
    low, high = LIMITS[setting]
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or not low <= value <= high):
        raise InvalidSetting("Invalid {0} " + _literal(value) + f": expected a number from "
                             f"{low:g} to {high:g}.", setting)
