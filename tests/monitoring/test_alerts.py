"""Alert rules (parsed, never evaluated as code) and their delivery to a webhook or command."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

from forgeline.errors import InvalidSpec
from forgeline.monitoring import MonitorConfig, monitor
from forgeline.monitoring.alerts import deliver, evaluate_rules
from forgeline.monitoring.rules import parse_rule
from tests.monitoring.conftest import FEATURES, Model, make_frame
from tests.webhook import Webhook


@pytest.mark.parametrize(("text", "subject", "op", "threshold"), [
    ("dataset_drift > 0.3", "dataset_drift", ">", 0.3),
    ("  psi.amount>=0.25 ", "psi.amount", ">=", 0.25),
    ('drifted."card type" == 1', "drifted.card type", "==", 1.0),
    ("drift.* > 1e-1", "drift.*", ">", 0.1),
    ("estimated_roc_auc < .8", "estimated_roc_auc", "<", 0.8),
    ("missing_share.x.y != -2", "missing_share.x.y", "!=", -2.0),
])
def test_rules_parse(text: str, subject: str, op: str, threshold: float) -> None:
    rule = parse_rule(text)
    assert (rule.subject, rule.op, rule.threshold) == (subject, op, threshold)


@pytest.mark.parametrize(("text", "message"), [
    ("dataset_drift 0.3", "expected an operator (>, >=, <, <=, ==, !=) at position 15"),
    ("psi > 0.2", "expected '.<column>' after psi (or .* for any column) at position 4"),
    ("dataset_drift.x > 1", "expected an operator (dataset_drift is not per column) at "
                            "position 14"),
    ("roc_auc < high", "expected a number at position 11, found 'high'"),
    ("roc_auc < 0.8 or 1", "expected the end of the rule at position 15"),
    ("__import__('os').system('x') > 1", "unknown quantity '__import__' at position 1"),
    ("", "expected a quantity such as dataset_drift or psi at position 1, found the end"),
    ('psi."amount > 1', "expected a closing \" at position 5"),
])
def test_a_bad_rule_names_itself_and_the_position(text: str, message: str) -> None:
    with pytest.raises(InvalidSpec, match="Invalid alert rule") as info:
        parse_rule(text)
    assert repr(text) in str(info.value) and message in str(info.value)
    with pytest.raises(InvalidSpec):
        MonitorConfig(rules=(text,))  # refused before any work


def test_rules_evaluate_with_wildcards_and_missing_values() -> None:
    values = {"psi.a": 0.3, "psi.b": 0.05, "dataset_drift": 0.2, "roc_auc": 0.75}
    fired = evaluate_rules(["psi.* > 0.25", "dataset_drift > 0.3", "roc_auc < 0.8",
                            "psi.zz > 0", "estimated_roc_auc < 0.8"], values)
    assert [a.fired for a in fired] == [True, False, True, False, False]
    assert fired[0].matches == {"psi.a": 0.3} and fired[0].values == {"psi.a": 0.3,
                                                                       "psi.b": 0.05}
    assert fired[3].note.startswith("no value for psi.zz")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_fired_rule_posts_to_the_webhook_and_runs_the_command(model: Model, webhook: Webhook,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "payload.json"
    command = f"{sys.executable} -c \"import sys; open(sys.argv[1], 'w').write(" \
              f"sys.stdin.read())\" {out}"
    config = MonitorConfig(window=None, rules=("dataset_drift > 0.1", "psi.* > 0.2",
                                               "roc_auc < 0.5"),
                           webhook=webhook.url, command=command)
    result = monitor(model.predictor, make_frame(3_000, 41, shifted=True)[FEATURES],
                     config=config)
    assert [a.rule for a in result.fired] == ["dataset_drift > 0.1", "psi.* > 0.2"]
    assert result.warnings == []
    (payload,) = webhook.received
    assert payload == json.loads(out.read_text())
    assert [f["rule"] for f in payload["fired"]] == ["dataset_drift > 0.1", "psi.* > 0.2"]
    assert payload["fired"][0]["values"] == {"dataset_drift": pytest.approx(0.28)}
    assert {"psi.c0", "psi.c1"} <= set(payload["fired"][1]["values"])
    assert payload["dataset_drift"]["features"] and payload["rows"] == 3_000


def test_nothing_is_sent_when_no_rule_fires(model: Model, webhook: Webhook) -> None:
    config = MonitorConfig(window=None, rules=("dataset_drift > 0.9",), webhook=webhook.url)
    monitor(model.predictor, make_frame(500, 42)[FEATURES], config=config)
    assert webhook.received == []


def test_an_unreachable_webhook_or_failing_command_is_a_warning(
        model: Model, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("forgeline.monitoring.alerts._BACKOFF_S", 0.01)
    url = f"http://127.0.0.1:{_closed_port()}/hook"
    config = MonitorConfig(window=None, rules=("dataset_drift > 0.1",), webhook=url,
                           command=f"{sys.executable} -c \"import sys; sys.exit(3)\"",
                           delivery_timeout_s=1.0)
    result = monitor(model.predictor, make_frame(1_000, 43, shifted=True)[FEATURES],
                     config=config)
    assert result.fired and len(result.features) == 25  # the report is still produced
    hook, command = result.warnings
    assert hook.startswith(f"alert not delivered to webhook {url}: ConnectError")
    assert hook.endswith("(after 3 attempts)")
    assert command.startswith("alert not delivered to command") and "exit code 3" in command


def test_a_missing_program_is_a_warning() -> None:
    config = MonitorConfig(command="no-such-program-forgeline --x")
    (warning,) = deliver({"fired": []}, config)
    assert "no such program 'no-such-program-forgeline'" in warning
