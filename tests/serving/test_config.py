"""The serving settings: nested value objects that check themselves and name parameters;
the command line names its flags instead, and takes its defaults from them."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from forgeline.config import ENV_SERVE_CONFIG
from forgeline.errors import InvalidInput
from forgeline.serving import runtime
from forgeline.serving.config import (
    RUNTIMES,
    Batching,
    InvalidSetting,
    Listener,
    MonitorSchedule,
    ServeConfig,
)
from tests.serving.conftest import TrainedStore


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Listener(port=-1),
     "Invalid listener port -1: expected a whole number from 0 to 65535."),
    (lambda: Listener(workers=0), "Invalid listener workers 0: expected a whole number from 1 "
                                  "to 512."),
    (lambda: Listener(max_body_bytes=True), "Invalid listener max_body_bytes True: expected a "
                                            "whole number from 1 to 17179869184."),
    (lambda: Listener(graceful_timeout_s=float("nan")), "Invalid listener graceful_timeout_s "
                                                        "nan: expected a number from 0 to 86400."),
    (lambda: Listener(token=" x"), "Invalid listener token: the bearer token must be "
                                   "non-empty, without spaces around it."),
    (lambda: Listener(host=""), "Invalid listener host '': expected a host name or an IP "
                                "address."),
    (lambda: Batching(max_batch_size=0), "Invalid batching max_batch_size 0: expected a whole "
                                         "number from 1 to 1048576."),
    (lambda: Batching(max_wait_ms=-1), "Invalid batching max_wait_ms -1: expected a number "
                                       "from 0 to 60000."),
    (lambda: MonitorSchedule(every_s=60, rules=({"x": 1},)),
     "Invalid monitor rules ({'x': 1},): expected texts such as 'dataset_drift > 0.3'."),
    (lambda: ServeConfig("f", watch_interval_s=0), "Invalid watch_interval_s 0: expected a "
                                                   "number from 0.01 to 86400."),
    (lambda: ServeConfig("f", canary="g", canary_percent=101), "Invalid canary_percent 101: "
                                                               "expected a number from 0 to 100."),
])
def test_a_refused_value_names_its_parameter(make: Any, message: str) -> None:
    with pytest.raises(InvalidSetting) as info:
        make()
    assert str(info.value) == message and "--" not in str(info.value)
    assert info.value.code == InvalidInput.code  # exit code 2, HTTP 400


def test_an_interface_names_the_settings_its_own_way() -> None:
    with pytest.raises(InvalidSetting) as info:
        MonitorSchedule(webhook="http://x")
    assert info.value.message == ("monitor webhook needs monitor every_s: it configures the "
                                  "periodic monitor.")
    assert info.value.hint == "Set monitor every_s too, or drop monitor webhook."
    named = info.value.naming({"monitor.webhook": "--webhook",
                               "monitor.every_s": "--monitor-every"})
    assert type(named) is InvalidInput
    assert named.message == "--webhook needs --monitor-every: it configures the periodic monitor."
    assert named.hint == "Set --monitor-every too, or drop --webhook."
    with pytest.raises(InvalidSetting) as info:
        Listener(port=70000)
    assert info.value.naming({}).message == info.value.message  # unknown: the parameter
    assert info.value.naming({"listener.port": "{0}"}).message.startswith("Invalid {0} 70000")


def test_the_settings_nest_and_travel_to_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    config = ServeConfig("fraud@champion", listener=Listener(port=0, workers=3, token="t{0}"),
                         batching=Batching(max_batch_size=8, max_wait_ms=1.5),
                         monitor=MonitorSchedule(every_s=60, rules=("rows > 1",)),
                         canary="fraud@challenger", canary_percent=10)
    assert config.batching.max_wait_s == pytest.approx(0.0015)
    assert ServeConfig.from_json(config.to_json()) == config
    monkeypatch.setenv(ENV_SERVE_CONFIG, config.to_env()[ENV_SERVE_CONFIG])
    assert ServeConfig.from_env() == config
    defaults = ServeConfig("f")
    assert defaults.listener == Listener() and defaults.batching == Batching()
    assert not defaults.monitor.on and defaults.monitor.describe() is None
    assert ServeConfig.from_json('{"model": "f"}') == defaults
    for bad in ('{"model": "f", "port": 1}', "[1]", "{", '{"model": "f", "listener": 3}'):
        with pytest.raises(InvalidInput, match=f"Invalid serving settings in {ENV_SERVE_CONFIG}"):
            ServeConfig.from_json(bad)
    with pytest.raises(InvalidSetting, match="Invalid listener port 99999"):
        ServeConfig.from_json('{"model": "f", "listener": {"port": 99999}}')
    with pytest.raises(InvalidInput, match=r"ServeConfig\.listener must be a Listener"):
        ServeConfig("f", listener={"port": 1})  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.listener.port = 1  # type: ignore[misc]


def test_one_list_of_runtimes() -> None:
    assert runtime.RUNTIMES is RUNTIMES == ("auto", "native", "onnx")
    assert not hasattr(runtime, "PREFERENCES")


def test_the_cli_takes_its_defaults_from_the_settings() -> None:
    import typer.main

    from forgeline.cli import app

    command = typer.main.get_command(app).commands["serve"]  # type: ignore[attr-defined]
    defaults = {p.name: p.default for p in command.params}
    listener, batching, config = Listener(), Batching(), ServeConfig("f")
    assert {k: defaults[k] for k in ("host", "port", "workers", "max_body_bytes",
                                     "graceful_timeout", "access_log")} == {
        "host": listener.host, "port": listener.port, "workers": listener.workers,
        "max_body_bytes": listener.max_body_bytes,
        "graceful_timeout": listener.graceful_timeout_s, "access_log": listener.access_log}
    assert (defaults["max_batch_size"], defaults["max_wait_ms"]) == (batching.max_batch_size,
                                                                     batching.max_wait_ms)
    assert (defaults["watch_interval"], defaults["runtime"], defaults["log_predictions"]) == (
        config.watch_interval_s, config.runtime, config.log_predictions)


def test_the_cli_names_the_flag_of_a_refused_value(trained: TrainedStore) -> None:
    from typer.testing import CliRunner

    from forgeline.cli import app

    cases = [(("--workers", "1000"), "Invalid --workers 1000: expected a whole number from 1 "
                                     "to 512."),
             (("--monitor-every", "10ms"), "Invalid --monitor-every 0.01: expected a number"),
             (("--monitor-window", "1h"), "--monitor-window needs --monitor-every: it "
                                          "configures the periodic monitor. Set "
                                          "--monitor-every too, or drop --monitor-window."),
             (("--monitor-every", "1m", "--webhook", "ftp://x/y"),
              "Invalid --webhook 'ftp://x/y': expected an http:// or https:// URL."),
             (("--monitor-every", "1m", "--no-log"), "--monitor-every reads the prediction "
                                                     "log, and --no-log turns it off. Drop "
                                                     "--no-log, or --monitor-every.")]
    for args, fragment in cases:
        done = CliRunner().invoke(app, ["--store", trained.uri, "serve", "fraud@champion",
                                        "--port", "0", *args])
        assert done.exit_code == 2, (args, done.output)
        assert fragment in done.stderr and done.stderr.count("\n") == 1, (args, done.stderr)
        assert done.stdout == ""
