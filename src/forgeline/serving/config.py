"""The settings of one ``forgeline serve``: a small value object, checked once.

With ``--workers > 1`` uvicorn starts each worker from an import string, so a worker can
only learn its settings from the environment: :meth:`ServeConfig.to_env` writes them as
JSON into ``FORGELINE_SERVE_CONFIG`` and :meth:`ServeConfig.from_env` reads them back.

The ``monitor_*`` settings turn on the periodic monitor
(:mod:`forgeline.serving.monitoring_task`): ``--monitor-every 5m`` and its window, alert
rules and webhook.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from forgeline.config import ENV_SERVE_CONFIG, serve_config_json
from forgeline.errors import InvalidInput

__all__ = ["RUNTIMES", "ServeConfig", "parse_canary"]

RUNTIMES = ("auto", "native", "onnx")
_MAX_PORT = 65535
_DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """What to serve and how.

    Attributes:
        model: the model reference (``fraud@champion``, ``fraud/3``, ``fraud``) or a
            package directory.
        store_uri: the store to resolve references in; None for the configured default.
        cache_dir: where downloaded model versions are kept; None for ``<home>/models``.
        host, port, workers: where uvicorn listens and how many processes answer.
        max_batch_size: the most rows one model call takes from concurrent requests.
        max_wait_ms: how long the first request of a batch waits for company.
        max_body_bytes: larger request bodies are refused with 413.
        shadow: a model scored on every request in the background; never answers.
        canary: a model that answers ``canary_percent`` percent of requests.
        watch: poll the registry every ``watch_interval_s`` seconds and swap in the new
            version when an alias used by the server moves.
        token: when set, inference routes require ``Authorization: Bearer <token>``.
        runtime: ``auto``, ``native`` or ``onnx``, passed to ``select_runtime``.
        graceful_timeout_s: how long shutdown waits for requests in flight.
        access_log: log one line per request (uvicorn's access log).
        log_predictions: append every prediction to the prediction log that monitoring
            and retraining read (``<home>/predictions/<model>``).
        monitor_every_s: run the monitor on the prediction log every this many seconds, in
            a background thread, and export its gauges on ``/metrics``; None: never.
        monitor_window_s: the monitor reads the predictions of the last this many seconds
            (24 hours when neither this nor ``monitor_last`` is given).
        monitor_last: ...or the most recent this many predictions (of that window, when
            both are given).
        monitor_rules: alert rules such as ``dataset_drift > 0.3`` (see
            :mod:`forgeline.monitoring.rules`).
        monitor_webhook: the URL a JSON alert is POSTed to when a rule starts firing.
    """

    model: str
    store_uri: str | None = None
    cache_dir: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_batch_size: int = 64
    max_wait_ms: float = 2.0
    max_body_bytes: int = 1 << 20
    shadow: str | None = None
    canary: str | None = None
    canary_percent: float = 0.0
    watch: bool = False
    watch_interval_s: float = 10.0
    token: str | None = None
    runtime: str = "auto"
    graceful_timeout_s: float = 30.0
    access_log: bool = False
    log_predictions: bool = True
    monitor_every_s: float | None = None
    monitor_window_s: float | None = None
    monitor_last: int | None = None
    monitor_rules: tuple[str, ...] = ()
    monitor_webhook: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise InvalidInput("Give the model to serve, e.g. fraud@champion.")
        _check_int("--port", self.port, 0, _MAX_PORT)
        _check_int("--workers", self.workers, 1, 512)
        _check_int("--max-batch-size", self.max_batch_size, 1, 1 << 20)
        _check_int("--max-body-bytes", self.max_body_bytes, 1, 1 << 34)
        _check_number("--max-wait-ms", self.max_wait_ms, 0.0, 60_000.0)
        _check_number("--watch-interval", self.watch_interval_s, 0.01, 86_400.0)
        _check_number("--graceful-timeout", self.graceful_timeout_s, 0.0, 86_400.0)
        if self.canary is not None:
            _check_number("the canary percentage", self.canary_percent, 0.0, 100.0)
        if self.runtime not in RUNTIMES:
            raise InvalidInput(f"Unknown runtime {self.runtime!r}.",
                               hint=f"Use one of {', '.join(RUNTIMES)}.")
        if self.token is not None and (not self.token or self.token != self.token.strip()):
            raise InvalidInput("The bearer token must be non-empty, without spaces around it.")
        self._check_monitor()

    def _check_monitor(self) -> None:
        rules = self.monitor_rules  # a list when read back from JSON
        if not isinstance(rules, tuple):
            object.__setattr__(self, "monitor_rules",
                               (rules,) if isinstance(rules, str) else tuple(rules))
        if self.monitor_every_s is None:
            given = [option for option, value in (
                ("--monitor-window", self.monitor_window_s),
                ("--monitor-last", self.monitor_last), ("--rule", self.monitor_rules or None),
                ("--webhook", self.monitor_webhook)) if value is not None]
            if given:
                raise InvalidInput(f"{given[0]} needs --monitor-every: it configures the "
                                   "periodic monitor.", hint="For example --monitor-every 5m.")
            return
        _check_number("--monitor-every", self.monitor_every_s, 0.1, 30 * _DAY_S)
        if self.monitor_window_s is not None:
            _check_number("--monitor-window", self.monitor_window_s, 1.0, 366 * _DAY_S)
        if self.monitor_last is not None:
            _check_int("--monitor-last", self.monitor_last, 1, 1 << 40)
        if not self.log_predictions:
            raise InvalidInput("--monitor-every reads the prediction log, and --no-log turns "
                               "it off.", hint="Drop --no-log, or --monitor-every.")
        if self.monitor_webhook is not None and not re.match(
                r"https?://[^\s/]", self.monitor_webhook):
            raise InvalidInput(f"Invalid --webhook {self.monitor_webhook!r}: expected an "
                               "http:// or https:// URL.")
        if self.monitor_rules:
            from forgeline.monitoring.rules import parse_rule

            for rule in self.monitor_rules:
                parse_rule(rule)  # InvalidSpec naming the rule and the position

    @property
    def max_wait_s(self) -> float:
        return self.max_wait_ms / 1000.0

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
            return cls(**data)
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


def _check_int(what: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"Invalid {what} {value!r}: expected a whole number from {low} "
                           f"to {high}.")


def _check_number(what: str, value: Any, low: float, high: float) -> None:
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or not low <= value <= high):
        raise InvalidInput(f"Invalid {what} {value!r}: expected a number from {low:g} to "
                           f"{high:g}.")
