"""MLflow's search grammar translated into Forgeline's filter language.

MLflow writes ``metrics.auc > 0.9 and tags."mlflow.runName" = 'a' and attributes.status =
'FINISHED'``; Forgeline reads ``metrics.`auc` > 0.9 and attributes.name = 'a' and
attributes.status = 'FINISHED'`` (:mod:`forgeline.store.filter`). The operators, literals
and ``and``/``or``/parentheses are the same in both; what changes is the keys:

- prefixes: ``metric(s)``, ``param(s)``/``parameter(s)``, ``tag(s)``, ``attribute(s)``/
  ``attr``/``run``; a key is bare, in backticks or in double quotes;
- MLflow's run attributes and tags with a Forgeline attribute behind them: ``run_name``
  (and ``tags."mlflow.runName"``) is the run's name, ``tags."mlflow.parentRunId"`` its
  parent, ``created`` its start time, ``user_id`` the ``mlflow.user`` tag.

What has no Forgeline counterpart (``IS NULL``, ``datasets.*``, ``artifact_uri``...) is an
INVALID_PARAMETER_VALUE that says so, never a filter silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from forgeline.errors import InvalidInput
from forgeline.server.mlflow.views import MODEL_TYPE_TAG, PARENT_TAG, RUN_NAME_TAG, USER_TAG
from forgeline.store.filter import And, Comparison, Node, Or, parse_filter, parse_order_by

__all__ = ["LOGGED_MODEL_KEYS", "RUN_KEYS", "Keys", "match", "translate_filter",
           "translate_order_by"]

T = TypeVar("T")

_PREFIXES = {
    "metric": "metrics", "metrics": "metrics",
    "param": "params", "params": "params", "parameter": "params", "parameters": "params",
    "tag": "tags", "tags": "tags",
    "attribute": "attributes", "attributes": "attributes", "attr": "attributes",
    "run": "attributes",
}
_KEYWORDS = {"AND", "OR", "NOT", "IN", "LIKE", "ILIKE"}
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<key>[A-Za-z_]\w*\.(?:`[^`]*`|"[^"]*"|[\w\-:/.]+))
  | (?P<word>[A-Za-z_]\w*|`[^`]*`)
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Keys:
    """How one MLflow entity's keys map to Forgeline keys (``kind.key``); None: refused."""

    attributes: Mapping[str, str | None]
    tags: Mapping[str, str]
    what: str


RUN_KEYS = Keys(
    attributes={
        "run_id": "attributes.run_id", "run_name": "attributes.name",
        "run name": "attributes.name", "name": "attributes.name",
        "status": "attributes.status", "start_time": "attributes.start_time",
        "created": "attributes.start_time", "end_time": "attributes.end_time",
        "experiment_id": "attributes.experiment_id", "user_id": f"tags.`{USER_TAG}`",
        "artifact_uri": None, "lifecycle_stage": None,
    },
    tags={RUN_NAME_TAG: "attributes.name", PARENT_TAG: "attributes.parent_run_id"},
    what="runs",
)
LOGGED_MODEL_KEYS = Keys(
    attributes={
        "name": "attributes.name", "source_run_id": "attributes.parent_run_id",
        "creation_timestamp": "attributes.start_time",
        "creation_time": "attributes.start_time",
        "last_updated_timestamp": "attributes.end_time",
        "model_type": f"tags.`{MODEL_TYPE_TAG}`",
        "model_id": None, "status": None,
    },
    tags={},
    what="logged models",
)


def _unquote_key(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "`\"":
        return text[1:-1]
    return text


def _key(token: str, keys: Keys) -> str:
    """The Forgeline key for one MLflow key token (``metrics.auc``, ``tags."a b"``...)."""
    head, dot, rest = token.partition(".")
    if not dot:
        prefix, name = "attributes", _unquote_key(head)
    elif head.lower() in ("dataset", "datasets"):
        raise InvalidInput(f"Filtering {keys.what} on datasets ({token}) is not supported by "
                           "Forgeline's MLflow-compatible API.")
    elif head.lower() in _PREFIXES:
        prefix, name = _PREFIXES[head.lower()], _unquote_key(rest)
    else:
        raise InvalidInput(f"Invalid key {token!r}: the prefix must be metrics, params, tags "
                           "or attributes.")
    if not name or "`" in name:
        raise InvalidInput(f"Invalid key {token!r}.")
    if prefix == "attributes":
        lowered = name.lower()
        if lowered not in keys.attributes:
            known = ", ".join(sorted(k for k, v in keys.attributes.items() if v))
            raise InvalidInput(f"Invalid attribute {name!r} for {keys.what}; Forgeline's "
                               f"MLflow-compatible API knows {known}.")
        target = keys.attributes[lowered]
        if target is None:
            raise InvalidInput(f"Filtering or ordering {keys.what} by {name!r} is not "
                               "supported by Forgeline's MLflow-compatible API.")
        return target
    if prefix == "tags" and name in keys.tags:
        return keys.tags[name]
    return f"{prefix}.`{name}`"


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise InvalidInput(f"Invalid filter {text!r}: unexpected character at position "
                               f"{pos + 1} (near {text[pos:pos + 20]!r}).")
        if m.lastgroup != "ws":
            tokens.append((m.lastgroup or "", m.group()))
        pos = m.end()
    return tokens


def translate_filter(text: str | None, keys: Keys = RUN_KEYS) -> str | None:
    """An MLflow filter string as a Forgeline filter (checked), or None for no filter."""
    if text is None or not text.strip():
        return None
    out: list[str] = []
    tokens = _tokens(text)
    for i, (kind, word) in enumerate(tokens):
        upper = word.upper()
        if kind == "word" and upper == "IS":
            raise InvalidInput(f"Invalid filter {text!r}: IS NULL and IS NOT NULL are not "
                               "supported by Forgeline's MLflow-compatible API.")
        if kind == "word" and upper in _KEYWORDS:
            out.append(upper)
        elif kind == "key" or (kind == "word" and _is_key_position(tokens, i)):
            out.append(_key(word, keys))
        else:
            out.append(word)
    translated = " ".join(out)
    try:
        parse_filter(translated)
    except InvalidInput as e:
        detail = e.message.removeprefix("Invalid filter ")
        raise InvalidInput(f"Invalid filter {text!r} (read as {translated!r}) {detail}",
                           hint=e.hint) from None
    return translated


def _is_key_position(tokens: Sequence[tuple[str, str]], i: int) -> bool:
    """A bare word is an attribute when a comparison follows it."""
    following = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
    return following[0] == "op" or following[1].upper() in ("LIKE", "ILIKE", "IN", "NOT", "IS")


def translate_order_by(clauses: Sequence[str], keys: Keys = RUN_KEYS) -> list[str]:
    """MLflow's ``order_by`` clauses (``metrics.auc DESC``...) as Forgeline's (checked)."""
    result = []
    for clause in clauses:
        tokens = _tokens(clause)
        if not tokens or tokens[0][0] not in ("key", "word") or len(tokens) > 2 or (
                len(tokens) == 2 and tokens[1][1].upper() not in ("ASC", "DESC")):
            raise InvalidInput(f"Invalid order_by clause {clause!r}: expected a key and "
                               "an optional ASC or DESC, as in 'metrics.auc DESC'.")
        direction = tokens[1][1].upper() if len(tokens) == 2 else "ASC"
        result.append(f"{_key(tokens[0][1], keys)} {direction}")
    parse_order_by(result)
    return result


def match(items: Sequence[T], text: str | None,
          fields: Mapping[str, Callable[[T], str | None]], what: str,
          tags: Callable[[T], Mapping[str, str]] | None = None) -> list[T]:
    """The items (experiments, registered models, versions) an MLflow filter keeps, on a
    few text attributes (``name LIKE 'fraud%'``, ``run_id = '...'``) and, with ``tags``,
    their tags (``tags.`mlflow.prompt.is_prompt` != 'true'``, which the client adds).
    ``fields`` maps each attribute (a run attribute's name) to how to read it."""
    keys = Keys({k: f"attributes.{k}" for k in fields}, {}, what)
    node = parse_filter(translate_filter(text, keys))
    if node is None:
        return list(items)

    def value(item: T, c: Comparison) -> str | None:
        if c.kind == "attribute":
            return fields[c.key](item)
        assert tags is not None
        return tags(item).get(c.key)

    _check_kinds(node, what, tags is not None)
    return [item for item in items if _holds(node, partial(value, item))]


def _check_kinds(node: Node, what: str, with_tags: bool) -> None:
    if isinstance(node, And | Or):
        for n in node.items:
            _check_kinds(n, what, with_tags)
    elif node.kind != "attribute" and not (node.kind == "tag" and with_tags):
        raise InvalidInput(f"Filtering {what} on {node.kind}s ({node.key!r}) is not supported "
                           "by Forgeline's MLflow-compatible API.")


def _holds(node: Node, value: Callable[[Comparison], str | None]) -> bool:
    if isinstance(node, And):
        return all(_holds(n, value) for n in node.items)
    if isinstance(node, Or):
        return any(_holds(n, value) for n in node.items)
    return _compare(value(node), node)


def _text(value: float | str) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return value


def _like(pattern: str, value: str, ignore_case: bool) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case
                        else re.DOTALL) is not None


def _compare(value: str | None, c: Comparison) -> bool:
    if c.op in ("IS NULL", "IS NOT NULL"):
        return (value is None) == (c.op == "IS NULL")
    negated = c.op.startswith("NOT ") or c.op == "!="
    if value is None:
        return negated
    op = c.op.removeprefix("NOT ")
    if op in ("IN",):
        found = value in {_text(v) for v in c.value} if isinstance(c.value, tuple) else False
    elif op in ("LIKE", "ILIKE"):
        found = _like(_text(c.value) if not isinstance(c.value, tuple) else "", value,
                      op == "ILIKE")
    elif op in ("=", "!="):
        found = not isinstance(c.value, tuple) and value == _text(c.value)
    else:
        target = _text(c.value) if not isinstance(c.value, tuple) else ""
        found = {"<": value < target, "<=": value <= target, ">": value > target,
                 ">=": value >= target}[op]
        return found
    return not found if negated else found
