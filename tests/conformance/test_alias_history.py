"""The alias history (who pointed which alias where, and when), against every backend.

Only through the Store interface: the HTTP backend runs this suite too (its server has
auth off, so it records the actor the client sends).
"""

from __future__ import annotations

import pytest

from forgeline.entities import AliasEvent
from forgeline.errors import InvalidInput, NotFound
from forgeline.store import Store, get_store
from forgeline.util.time import now_ms


@pytest.fixture
def store(store_uri: str) -> Store:
    return get_store(store_uri)


def _versions(store: Store, n: int, name: str = "fraud") -> None:
    for i in range(n):
        store.create_model_version(name, None, f"models/{name}/{i + 1}")


def _moves(events: list[AliasEvent]) -> list[tuple[str, int | None, int | None, str | None]]:
    return [(e.alias, e.version, e.previous_version, e.actor) for e in events]


def test_moves_and_a_deletion_are_remembered_newest_first(store: Store) -> None:
    _versions(store, 3)
    started = now_ms()
    assert store.set_alias("fraud", "champion", 1, actor="alice") is None
    assert store.set_alias("fraud", "champion", 3, actor="bob") == 1
    assert store.delete_alias("fraud", "champion", actor="carol") == 3
    events = store.get_alias_history("fraud")
    assert _moves(events) == [("champion", None, 3, "carol"), ("champion", 3, 1, "bob"),
                              ("champion", 1, None, "alice")]
    assert [e.action for e in events] == ["deleted", "moved", "set"]
    assert all(e.name == "fraud" for e in events)
    times = [e.time for e in events]
    assert times == sorted(times, reverse=True) and started <= times[-1] <= now_ms()
    assert store.get_alias_history("fraud", "champion") == events


def test_registering_with_aliases_is_a_move_too(store: Store) -> None:
    store.create_model_version("fraud", None, "m", aliases=["challenger"], actor="ci")
    store.create_model_version("fraud", None, "m", aliases=["challenger", "champion"],
                               actor="ci")
    assert _moves(store.get_alias_history("fraud")) == [
        ("champion", 2, None, "ci"), ("challenger", 2, 1, "ci"),
        ("challenger", 1, None, "ci")]


def test_filtering_limiting_and_what_is_not_a_move(store: Store) -> None:
    _versions(store, 2)
    store.set_alias("fraud", "champion", 1)  # nobody named: the actor is unknown
    store.set_alias("fraud", "challenger", 2, actor="ci")
    assert store.set_alias("fraud", "champion", 1, actor="alice") == 1  # where it points
    with pytest.raises(NotFound, match="Model 'fraud' has no version 7"):
        store.set_alias("fraud", "champion", 7, actor="alice")
    with pytest.raises(NotFound, match="Model 'fraud' has no alias 'ghost'"):
        store.delete_alias("fraud", "ghost", actor="alice")
    assert _moves(store.get_alias_history("fraud")) == [
        ("challenger", 2, None, "ci"), ("champion", 1, None, None)]
    assert _moves(store.get_alias_history("fraud", "champion")) == [
        ("champion", 1, None, None)]
    assert _moves(store.get_alias_history("fraud", max_results=1)) == [
        ("challenger", 2, None, "ci")]
    assert store.get_alias_history("fraud", "shadow") == []


def test_the_history_outlives_the_versions_it_names(store: Store) -> None:
    _versions(store, 2)
    store.set_alias("fraud", "champion", 1, actor="alice")
    store.set_alias("fraud", "champion", 2, actor="bob")
    store.delete_model_version("fraud", 1)  # no alias points at it any more
    assert _moves(store.get_alias_history("fraud")) == [
        ("champion", 2, 1, "bob"), ("champion", 1, None, "alice")]


def test_history_of_models_is_kept_apart(store: Store) -> None:
    _versions(store, 1, "fraud")
    _versions(store, 1, "churn")
    store.set_alias("fraud", "champion", 1, actor="alice")
    assert store.get_alias_history("churn") == []
    assert [e.name for e in store.get_alias_history("fraud")] == ["fraud"]


def test_alias_history_errors(store: Store) -> None:
    with pytest.raises(NotFound, match="Model 'ghost' is not registered"):
        store.get_alias_history("ghost")
    with pytest.raises(NotFound, match="Model 'ghost' is not registered"):
        store.get_alias_history("ghost", "champion")
    _versions(store, 2)
    for bad in (0, -1):
        with pytest.raises(InvalidInput, match=f"Invalid max_results {bad} for the alias "
                                               "history"):
            store.get_alias_history("fraud", max_results=bad)
    store.set_alias("fraud", "champion", 1, actor="alice")
    for actor in ("", "x" * 257):
        with pytest.raises(InvalidInput, match="Invalid actor"):
            store.set_alias("fraud", "champion", 2, actor=actor)
        with pytest.raises(InvalidInput, match="Invalid actor"):
            store.delete_alias("fraud", "champion", actor=actor)
        with pytest.raises(InvalidInput, match="Invalid actor"):
            store.create_model_version("fraud", None, "m", aliases=["champion"], actor=actor)
    assert store.get_alias("fraud", "champion") == 1  # nothing changed
    assert store.get_registered_model("fraud").latest_version == 2
    assert _moves(store.get_alias_history("fraud")) == [("champion", 1, None, "alice")]
