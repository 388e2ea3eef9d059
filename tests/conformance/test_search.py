"""Search over runs: the filter language, ordering and pagination, on every backend."""

from __future__ import annotations

import base64
import json
import math

import pytest

from forgeline.entities import RunStatus
from forgeline.errors import InvalidInput
from forgeline.store import Store, get_store


@pytest.fixture
def populated(store_uri: str) -> tuple[Store, str, dict[str, str]]:
    """Five runs with known metrics, params and tags; returns (store, experiment id, ids)."""
    store = get_store(store_uri)
    exp = store.create_experiment("fraud").experiment_id
    other = store.create_experiment("other").experiment_id
    spec = {
        "a": ({"auc": 0.95, "loss": 0.1}, {"depth": "6", "lr": "0.1"}, {"team": "risk"}),
        "b": ({"auc": 0.91, "loss": 0.3}, {"depth": "10", "lr": "0.01"}, {"team": "Risk-2"}),
        "c": ({"auc": 0.80}, {"depth": "6", "model": "rf"}, {"team": "growth"}),
        "d": ({"auc": math.nan, "loss": math.inf}, {"depth": "2"}, {}),
        "e": ({}, {}, {"team": "risk"}),
    }
    ids = {}
    for i, (name, (metrics, params, tags)) in enumerate(spec.items()):
        run_id = store.create_run(exp, name, 1000 + i, tags=tags).run_id
        store.log_batch(run_id, metrics=[(k, v, 0, 1) for k, v in metrics.items()],
                        params=params)
        ids[name] = run_id
    store.set_run_status(ids["c"], RunStatus.FAILED, 3000)
    store.create_run(other, "elsewhere", 1, tags={"team": "risk"})
    return store, exp, ids


def names(store: Store, exp: str, filter: str | None, order_by: list[str] | None = None
          ) -> list[str]:
    return [r.name for r in store.search_runs([exp], filter, order_by)]


@pytest.mark.parametrize(("expr", "expected"), [
    ("metrics.auc > 0.9", {"a", "b"}),
    ("metrics.auc >= 0.91", {"a", "b"}),
    ("metrics.auc < 0.9", {"c"}),
    ("metrics.auc <= 0.8", {"c"}),
    ("metrics.auc = 0.8", {"c"}),
    ("metrics.auc != 0.8", {"a", "b"}),
    ("metrics.loss > 1e6", {"d"}),
    ("metrics.auc IN (0.95, 0.8)", {"a", "c"}),
    ("params.depth = '6'", {"a", "c"}),
    ("params.depth = 6", {"a", "c"}),
    ("params.depth != '6'", {"b", "d"}),
    ("params.depth > 5", {"a", "b", "c"}),
    ("params.lr < 0.05", {"b"}),
    ("params.depth IN ('2', '10')", {"b", "d"}),
    ("params.depth NOT IN ('2', '10')", {"a", "c"}),
    ("params.model LIKE 'r%'", {"c"}),
    ("tags.team = 'risk'", {"a", "e"}),
    ("tags.team LIKE 'risk%'", {"a", "e"}),
    ("tags.team ILIKE 'risk%'", {"a", "b", "e"}),
    ("tags.team NOT LIKE 'r%'", {"b", "c"}),
    ("status = 'FAILED'", {"c"}),
    ("attributes.status = 'failed'", {"c"}),
    ("status IN ('RUNNING')", {"a", "b", "d", "e"}),
    ("name LIKE '_'", {"a", "b", "c", "d", "e"}),
    ("attributes.name = 'b'", {"b"}),
    ("start_time >= 1003", {"d", "e"}),
    ("metrics.auc > 0.9 and params.depth = '6'", {"a"}),
    ("metrics.auc > 0.9 or tags.team = 'growth'", {"a", "b", "c"}),
    ("(metrics.auc > 0.9 or tags.team = 'growth') and params.depth = '6'", {"a", "c"}),
    ("metrics.auc > 0.9 and params.depth = '6' or status = 'FAILED'", {"a", "c"}),
    ("metrics.missing > 0", set()),
    ("metrics.loss IS NULL", {"c", "e"}),
    ("metrics.loss is not null", {"a", "b", "d"}),
    ("params.model IS NULL and tags.team IS NOT NULL", {"a", "b", "e"}),
    ("end_time IS NOT NULL", {"c"}),
    ("parent_run_id IS NULL", {"a", "b", "c", "d", "e"}),
    ("   ", {"a", "b", "c", "d", "e"}),
])
def test_filter(populated: tuple[Store, str, dict[str, str]], expr: str,
                expected: set[str]) -> None:
    store, exp, _ = populated
    assert set(names(store, exp, expr)) == expected


def test_run_id_and_experiment_scope(populated: tuple[Store, str, dict[str, str]]) -> None:
    store, exp, ids = populated
    assert names(store, exp, f"run_id = '{ids['b']}'") == ["b"]
    everywhere = [e.experiment_id for e in store.list_experiments()]
    assert len(store.search_runs(everywhere, "tags.team = 'risk'")) == 3


def test_order_by(populated: tuple[Store, str, dict[str, str]]) -> None:
    store, exp, _ = populated
    # NaN is stored as a missing value: it sorts with the runs that lack the metric, last.
    assert names(store, exp, None, ["metrics.auc DESC"])[:3] == ["a", "b", "c"]
    assert names(store, exp, None, ["metrics.auc ASC"])[:3] == ["c", "b", "a"]
    # numeric order (2 < 6 < 10); ties fall back to newest first
    assert names(store, exp, None, ["params.depth"])[:4] == ["d", "c", "a", "b"]
    assert names(store, exp, None, ["attributes.start_time ASC"]) == ["a", "b", "c", "d", "e"]
    assert names(store, exp, None, None) == ["e", "d", "c", "b", "a"]  # newest first
    assert names(store, exp, "tags.team = 'risk'", ["name DESC"]) == ["e", "a"]


def test_pagination(populated: tuple[Store, str, dict[str, str]]) -> None:
    store, exp, _ = populated
    seen, token = [], None
    while True:
        page = store.search_runs([exp], None, ["start_time"], max_results=2, page_token=token)
        seen += [r.name for r in page]
        token = page.token
        if token is None:
            break
    assert seen == ["a", "b", "c", "d", "e"]
    assert [r.name for r in store.iter_runs([exp], order_by=["start_time"])] == seen


def test_results_carry_params_metrics_and_tags(populated: tuple[Store, str, dict[str, str]]
                                               ) -> None:
    store, exp, ids = populated
    (run,) = store.search_runs([exp], "params.lr = '0.1'")
    assert run == store.get_run(ids["a"])
    assert run.metrics == {"auc": 0.95, "loss": 0.1} and run.tags == {"team": "risk"}


@pytest.mark.parametrize(("expr", "position", "what"), [
    ("metrics.auc >", 14, "expected a number or a quoted string"),
    ("metrics.auc > 0.9 and", 22, "expected a key"),
    ("metrics.auc > 0.9 params.x = '1'", 19, "expected AND, OR or the end"),
    ("metrics.auc ~ 1", 13, "unexpected character"),
    ("metrics.auc = 'high'", 15, "is a number; compare it with a number"),
    ("foo.bar = 1", 1, "unknown key prefix 'foo'"),
    ("colour = 'red'", 1, "unknown attribute 'colour'"),
    ("(metrics.auc > 1", 17, "expected ')'"),
    ("tags.team = 3", 13, "is text; quote the value"),
    ("params.a IN (1, 'x')", 13, "mixes numbers and strings"),
    ("metrics.auc LIKE '1%'", 18, "LIKE does not apply"),
    ("parent_run_id IS 'x'", 18, "expected 'NULL'"),
])
def test_bad_filters_name_their_position(populated: tuple[Store, str, dict[str, str]],
                                         expr: str, position: int, what: str) -> None:
    store, exp, _ = populated
    with pytest.raises(InvalidInput) as info:
        store.search_runs([exp], expr)
    assert f"Invalid filter at position {position} " in str(info.value)
    assert what in str(info.value)


@pytest.mark.parametrize("order", ["metrics.auc SIDEWAYS", "bogus.x", "metrics.auc DESC x"])
def test_bad_order_by(populated: tuple[Store, str, dict[str, str]], order: str) -> None:
    store, exp, _ = populated
    with pytest.raises(InvalidInput, match=r"Invalid order_by|unknown key prefix"):
        store.search_runs([exp], None, [order])


def test_bad_page_arguments(populated: tuple[Store, str, dict[str, str]]) -> None:
    store, exp, _ = populated
    with pytest.raises(InvalidInput, match="Invalid page token 'garbage'"):
        store.search_runs([exp], page_token="garbage")
    with pytest.raises(InvalidInput, match="max_results must be between 1 and 10000"):
        store.search_runs([exp], max_results=0)


# -- keyset pages ------------------------------------------------------------------------------
@pytest.fixture
def crowd(store_uri: str) -> tuple[Store, str]:
    """24 runs with ties and missing values in every sort key; (store, experiment id)."""
    store = get_store(store_uri)
    exp = store.create_experiment("crowd").experiment_id
    aucs = [0.5, 0.9, math.nan, None, 0.5, math.inf, -math.inf]
    depths = ["6", "10", "deep", None, "2.5", "6", "Deep"]
    for i in range(24):
        team = ["risk", None, "growth", "Risk"][i % 4]
        run_id = store.create_run(exp, f"r{i % 5}", 1000 + i // 3,
                                  tags={"team": team} if team else None).run_id
        auc, depth = aucs[i % 7], depths[i % 7 if i < 14 else (i + 3) % 7]
        store.log_batch(run_id, metrics=[("auc", auc, 0, 1)] if auc is not None else (),
                        params={"depth": depth} if depth is not None else None)
        if i % 3 == 0:
            store.set_run_status(run_id, RunStatus.FINISHED, 5000 - i // 6)
    return store, exp


def _paged(store: Store, exp: str, order_by: list[str] | None, size: int) -> list[str]:
    seen, token = [], None
    while True:
        page = store.search_runs([exp], None, order_by, max_results=size, page_token=token)
        assert len(page) <= size
        seen += [r.run_id for r in page]
        token = page.token
        if token is None:
            return seen


@pytest.mark.parametrize("order_by", [
    None,
    ["start_time"],
    ["metrics.auc DESC"],
    ["metrics.auc"],
    ["params.depth"],
    ["params.depth DESC", "metrics.auc"],
    ["tags.team", "name DESC"],
    ["tags.team DESC", "end_time"],
    ["status", "end_time DESC", "params.depth"],
    ["name", "start_time DESC", "tags.team"],
])
def test_pages_return_every_run_once_in_the_order_of_one_page(
        crowd: tuple[Store, str], order_by: list[str] | None) -> None:
    store, exp = crowd
    whole = [r.run_id for r in store.search_runs([exp], None, order_by)]
    assert len(whole) == len(set(whole)) == 24
    for size in (1, 5, 7):
        assert _paged(store, exp, order_by, size) == whole
    assert [r.run_id for r in store.iter_runs([exp], order_by=order_by)] == whole


@pytest.mark.parametrize("order_by", [None, ["metrics.auc DESC"], ["params.depth"]])
def test_runs_created_while_paging_repeat_nothing(crowd: tuple[Store, str],
                                                  order_by: list[str] | None) -> None:
    store, exp = crowd
    before = {r.run_id for r in store.search_runs([exp])}
    first = store.search_runs([exp], None, order_by, max_results=5)
    seen = [r.run_id for r in first]
    for start_time in (999, 1004, 9999):  # at the top, in the middle, at the end
        new = store.create_run(exp, "late", start_time).run_id
        store.log_batch(new, metrics=[("auc", 2.0, 0, 1)], params={"depth": "1"})
    token = first.token
    while token is not None:
        page = store.search_runs([exp], None, order_by, max_results=5, page_token=token)
        seen += [r.run_id for r in page]
        token = page.token
    assert len(seen) == len(set(seen))  # no run twice
    assert before <= set(seen)  # and none of the runs there at the start is skipped


def _altered(token: str) -> str:
    payload = json.loads(base64.urlsafe_b64decode(token))
    payload["k"][-1] = "0" * 32
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def test_bad_page_tokens_say_to_restart(crowd: tuple[Store, str]) -> None:
    store, exp = crowd
    token = store.search_runs([exp], None, ["metrics.auc DESC"], max_results=3).token
    assert token is not None
    offset = base64.urlsafe_b64encode(b'{"offset": 3}').decode()  # an old offset token
    for bad, order_by, filter in [
        ("garbage", ["metrics.auc DESC"], None),
        (token[:-6], ["metrics.auc DESC"], None),  # truncated
        (_altered(token), ["metrics.auc DESC"], None),  # edited
        (offset, ["metrics.auc DESC"], None),
        (token, ["metrics.auc ASC"], None),  # another order
        (token, ["metrics.auc DESC"], "tags.team = 'risk'"),  # another filter
        ("é", None, None),
    ]:
        with pytest.raises(InvalidInput, match=r"Invalid page token .*Restart from the first "
                                               r"page"):
            store.search_runs([exp], filter, order_by, max_results=3, page_token=bad)
    other = store.create_experiment("other").experiment_id
    with pytest.raises(InvalidInput, match="Restart from the first page"):
        store.search_runs([exp, other], None, ["metrics.auc DESC"], page_token=token)
