"""The search language parser on its own: structure, and robustness to any input."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from forgeline.errors import InvalidInput
from forgeline.store.filter import And, Comparison, Or, OrderBy, parse_filter, parse_order_by


def test_precedence_and_grouping() -> None:
    tree = parse_filter("metrics.a > 1 or params.b = 'x' and tags.c != 'y'")
    assert tree == Or((Comparison("metric", "a", ">", 1.0),
                       And((Comparison("param", "b", "=", "x"),
                            Comparison("tag", "c", "!=", "y")))))
    assert parse_filter("(metrics.a > 1 or metrics.b > 1) and status = 'running'") == And((
        Or((Comparison("metric", "a", ">", 1.0), Comparison("metric", "b", ">", 1.0))),
        Comparison("attribute", "status", "=", "RUNNING")))


def test_quoting_and_keywords() -> None:
    assert parse_filter("metrics.`val loss` <= -1.5e-3") == Comparison(
        "metric", "val loss", "<=", -0.0015)
    assert parse_filter("tags.note = 'it''s'") == Comparison("tag", "note", "=", "it's")
    assert parse_filter('tags.note = "say \\"hi\\""') == Comparison("tag", "note", "=",
                                                                     'say "hi"')
    assert parse_filter("params.x not in ('a', 'b')") == Comparison("param", "x", "NOT IN",
                                                                    ("a", "b"))
    assert parse_filter("tags.loss/train == 'x'") == Comparison("tag", "loss/train", "=", "x")
    assert parse_filter(None) is None and parse_filter("  ") is None


def test_order_by() -> None:
    assert parse_order_by(["metrics.auc DESC", "start_time", "params.lr asc"]) == [
        OrderBy("metric", "auc", False), OrderBy("attribute", "start_time", True),
        OrderBy("param", "lr", True)]


@given(st.text(max_size=60))
def test_any_text_parses_or_raises_invalid_input(text: str) -> None:
    try:
        parse_filter(text)
    except InvalidInput as e:
        assert "Invalid filter at position" in str(e)


_keys = st.sampled_from(["metrics.auc", "params.depth", "tags.team", "status", "name"])
_clause = st.builds(lambda k, v: f"{k} = '{v}'" if not k.startswith("metrics") else f"{k} > {v}",
                    _keys, st.integers(0, 99))


@given(st.lists(_clause, min_size=1, max_size=6), st.lists(st.sampled_from(["and", "or"]),
                                                            min_size=5, max_size=5))
def test_generated_valid_filters_parse(clauses: list[str], joins: list[str]) -> None:
    text = clauses[0]
    for clause, join in zip(clauses[1:], joins, strict=False):
        text = f"{text} {join} {clause}"
    assert parse_filter(text) is not None
    assert parse_filter(f"({text})") == parse_filter(text)
