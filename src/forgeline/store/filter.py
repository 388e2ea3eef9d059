"""The run search language, parsed into a small backend-neutral tree.

    metrics.auc > 0.9 and (params.depth = '6' or tags.team LIKE 'risk%')
    status IN ('FINISHED', 'KILLED') and attributes.start_time >= 1700000000000
    parent_run_id IS NULL and params.depth IS NOT NULL

Keys are ``metrics.K``, ``params.K``, ``tags.K`` or an attribute (``attributes.`` is
optional); a key with spaces or dots is written in backticks: ``metrics.`val loss```.
Metrics compare as numbers (their latest value); params compare as strings, or as
numbers when the literal is a number; tags and text attributes compare as strings.
``IS NULL`` holds when a run has no such key (or the attribute is unset, such as the parent
of a top-level run); ``IS NOT NULL`` when it has one.
Every syntax error is an :class:`InvalidInput` that names its position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from forgeline.errors import InvalidInput

__all__ = ["And", "Comparison", "Node", "Or", "OrderBy", "parse_filter", "parse_order_by"]

Kind = Literal["metric", "param", "tag", "attribute"]
Value = float | str | tuple[float | str, ...] | None  # None: IS [NOT] NULL

_PREFIXES: dict[str, Kind] = {
    "metrics": "metric", "metric": "metric",
    "params": "param", "param": "param",
    "tags": "tag", "tag": "tag",
    "attributes": "attribute", "attribute": "attribute", "attr": "attribute",
}
NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time"})
TEXT_ATTRIBUTES = frozenset({"run_id", "name", "status", "experiment_id", "parent_run_id"})
_ATTRIBUTE_ALIASES = {"run_name": "name", "id": "run_id"}
_ORDERING = {"<", "<=", ">", ">="}
_EXAMPLE = "Example: metrics.auc > 0.9 and params.depth = '6'"


@dataclass(frozen=True, slots=True)
class Comparison:
    kind: Kind
    key: str
    op: str  # = != < <= > >= LIKE ILIKE IN NOT IN NOT LIKE NOT ILIKE
    value: Value


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


Node = Comparison | And | Or


@dataclass(frozen=True, slots=True)
class OrderBy:
    kind: Kind
    key: str
    ascending: bool


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<punct>[(),])
  | (?P<ident>(?:[A-Za-z_][\w\-]*|`[^`]+`)(?:\.(?:`[^`]+`|[\w\-:/]+))*)
    """,
    re.VERBOSE,
)
_KEYWORDS = {"AND", "OR", "IN", "NOT", "LIKE", "ILIKE", "IS", "NULL"}


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # num str op punct ident kw end
    text: str
    pos: int


def _error(text: str, pos: int, what: str) -> InvalidInput:
    near = text[pos : pos + 20] or "end of filter"
    return InvalidInput(
        f"Invalid filter at position {pos + 1} (near {near!r}): {what}.", hint=_EXAMPLE
    )


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise _error(text, pos, "unexpected character")
        kind = m.lastgroup or ""
        if kind != "ws":
            word = m.group()
            if kind == "ident" and word.upper() in _KEYWORDS:
                kind, word = "kw", word.upper()
            tokens.append(_Tok(kind, word, pos))
        pos = m.end()
    tokens.append(_Tok("end", "", len(text)))
    return tokens


def _unquote(s: str) -> str:
    quote = s[0]
    body = s[1:-1].replace(quote * 2, quote)
    return re.sub(r"\\(.)", r"\1", body)


def _split_key(text: str, tok: _Tok) -> tuple[Kind, str]:
    word = tok.text
    head, dot, rest = word.partition(".")
    head = head.strip("`")
    if dot and head.lower() in _PREFIXES:
        kind = _PREFIXES[head.lower()]
        key = rest.strip("`") if rest.startswith("`") and rest.endswith("`") else rest
    elif not dot:
        kind, key = "attribute", head
    else:
        raise _error(text, tok.pos, f"unknown key prefix {head!r}; use metrics, params, "
                                    "tags or attributes")
    if not key:
        raise _error(text, tok.pos, "a key name is missing after the prefix")
    if kind == "attribute":
        key = _ATTRIBUTE_ALIASES.get(key.lower(), key.lower())
        if key not in NUMERIC_ATTRIBUTES | TEXT_ATTRIBUTES:
            known = ", ".join(sorted(NUMERIC_ATTRIBUTES | TEXT_ATTRIBUTES))
            raise _error(text, tok.pos, f"unknown attribute {key!r} (known: {known})")
    return kind, key


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    @property
    def tok(self) -> _Tok:
        return self.tokens[self.i]

    def take(self) -> _Tok:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        if self.tok.text != text:
            raise _error(self.text, self.tok.pos, f"expected {text!r}")
        self.i += 1

    def expression(self) -> Node:
        items = [self.conjunction()]
        while self.tok.text == "OR":
            self.take()
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def conjunction(self) -> Node:
        items = [self.atom()]
        while self.tok.text == "AND":
            self.take()
            items.append(self.atom())
        return items[0] if len(items) == 1 else And(tuple(items))

    def atom(self) -> Node:
        if self.tok.text == "(":
            self.take()
            node = self.expression()
            self.expect(")")
            return node
        return self.comparison()

    def literal(self) -> float | str:
        tok = self.take()
        if tok.kind == "num":
            return float(tok.text)
        if tok.kind == "str":
            return _unquote(tok.text)
        raise _error(self.text, tok.pos, "expected a number or a quoted string")

    def comparison(self) -> Comparison:
        key_tok = self.take()
        if key_tok.kind != "ident":
            raise _error(self.text, key_tok.pos, "expected a key such as metrics.auc")
        kind, key = _split_key(self.text, key_tok)
        op_tok = self.take()
        op = op_tok.text
        if op == "IS":  # IS NULL / IS NOT NULL: the run has no such key (or attribute)
            negated = self.tok.text == "NOT" and bool(self.take())
            self.expect("NULL")
            return Comparison(kind, key, "IS NOT NULL" if negated else "IS NULL", None)
        if op == "NOT" and self.tok.text in ("IN", "LIKE", "ILIKE"):
            op = f"NOT {self.take().text}"
        elif op_tok.kind == "op":
            op = {"==": "=", "<>": "!="}.get(op, op)
        elif op not in ("IN", "LIKE", "ILIKE"):
            raise _error(self.text, op_tok.pos, "expected a comparison operator "
                                                "(=, !=, <, <=, >, >=, LIKE, ILIKE, IN, "
                                                "IS NULL)")
        value_pos = self.tok.pos
        value: Value
        if op.endswith("IN"):
            self.expect("(")
            values = [self.literal()]
            while self.tok.text == ",":
                self.take()
                values.append(self.literal())
            self.expect(")")
            value = tuple(values)
        else:
            value = self.literal()
        return _checked(self.text, value_pos, Comparison(kind, key, op, value))


def _checked(text: str, pos: int, c: Comparison) -> Comparison:
    values = c.value if isinstance(c.value, tuple) else (c.value,)
    numeric = all(isinstance(v, float) for v in values)
    textual = all(isinstance(v, str) for v in values)
    if not (numeric or textual):
        raise _error(text, pos, "an IN list mixes numbers and strings")
    numeric_key = c.kind == "metric" or (c.kind == "attribute" and c.key in NUMERIC_ATTRIBUTES)
    if numeric_key and "LIKE" in c.op:
        raise _error(text, pos, f"LIKE does not apply to the number {c.key!r}")
    if "LIKE" in c.op and not textual:
        raise _error(text, pos, f"{c.op} needs a quoted pattern")
    if numeric_key and not numeric:
        raise _error(text, pos, f"{c.kind} {c.key!r} is a number; compare it with a number")
    if c.kind in ("tag", "attribute") and not numeric_key and not textual:
        raise _error(text, pos, f"{c.kind} {c.key!r} is text; quote the value")
    if c.kind == "attribute" and c.key == "status":
        upper = tuple(str(v).upper() for v in values)
        return Comparison(c.kind, c.key, c.op, upper if isinstance(c.value, tuple) else upper[0])
    return c


def parse_filter(text: str | None) -> Node | None:
    """Parse a filter string; None or blank means no filter."""
    if text is None or not text.strip():
        return None
    parser = _Parser(text)
    node = parser.expression()
    if parser.tok.kind != "end":
        raise _error(text, parser.tok.pos, "expected AND, OR or the end of the filter")
    return node


def parse_order_by(clauses: list[str] | tuple[str, ...] | None) -> list[OrderBy]:
    """Parse ``["metrics.auc DESC", "start_time"]`` into :class:`OrderBy` items."""
    result = []
    for clause in clauses or ():
        tokens = _tokenize(clause)
        if tokens[0].kind != "ident":
            raise InvalidInput(f"Invalid order_by {clause!r}: expected a key such as "
                               "'metrics.auc DESC'.")
        kind, key = _split_key(clause, tokens[0])
        direction = tokens[1].text.upper() if tokens[1].kind != "end" else "ASC"
        if direction not in ("ASC", "DESC") or tokens[2 if tokens[1].kind != "end" else 1].kind \
                != "end":
            raise InvalidInput(f"Invalid order_by {clause!r}: the direction must be ASC or DESC.")
        result.append(OrderBy(kind, key, direction == "ASC"))
    return result
