"""Who the team server records as moving an alias: the token's name with auth on, what the
client sends with auth off; the history route and its role."""

from __future__ import annotations

import httpx
import pytest

import forgeline as fl
from forgeline.entities import Role
from forgeline.errors import Unauthorized
from forgeline.registry.client import local_user
from tests.server.conftest import Team

MLFLOW_ALIAS = "/api/2.0/mlflow/registered-models/alias"


def _actors(team: Team) -> list[tuple[str, int | None, str | None]]:
    return [(e.alias, e.version, e.actor) for e in team.store.get_alias_history("fraud")]


def test_with_auth_on_the_actor_is_the_tokens_name(secured: Team) -> None:
    writer = secured.remote(secured.secret(Role.WRITER, "ci"))
    admin_secret = secured.secret(Role.ADMIN, "alice")
    reader = secured.remote(secured.secret(Role.READER, "dashboard"))
    # A client cannot claim someone else's name: the server records the token's.
    writer.create_model_version("fraud", None, "m", aliases=["challenger"], actor="mallory")
    writer.create_model_version("fraud", None, "m")
    assert writer.set_alias("fraud", "champion", 1, actor="mallory") is None
    assert secured.remote(admin_secret).delete_alias("fraud", "challenger",
                                                     actor="mallory") == 1
    with secured.http(admin_secret) as http:  # MLflow's client names nobody
        answer = http.post(secured.url + MLFLOW_ALIAS,
                           json={"name": "fraud", "alias": "champion", "version": "2"})
        assert answer.status_code == 200, answer.text
    assert _actors(secured) == [("champion", 2, "alice"), ("challenger", None, "alice"),
                                ("champion", 1, "ci"), ("challenger", 1, "ci")]
    assert reader.get_alias_history("fraud") == secured.store.get_alias_history("fraud")
    with secured.http(admin_secret) as http:
        found = http.get("/registered-models/fraud/alias-history",
                         params={"alias": "champion", "max_results": 1}).json()
    assert found == {"events": [{"name": "fraud", "alias": "champion", "version": 2,
                                 "previous_version": 1, "time": found["events"][0]["time"],
                                 "actor": "alice"}]}
    with pytest.raises(Unauthorized):
        secured.remote(None).get_alias_history("fraud")


def test_with_auth_off_the_server_records_what_the_client_sends(team: Team) -> None:
    client = fl.Client(team.url)
    client.store.create_model_version("fraud", None, "m")
    client.set_alias("fraud", "champion", 1)  # Forgeline's client sends the local user
    team.remote().set_alias("fraud", "shadow", 1)  # a store call naming nobody
    with httpx.Client(timeout=30) as http:
        answer = http.request("DELETE", team.url + MLFLOW_ALIAS,
                              json={"name": "fraud", "alias": "shadow"})
        assert answer.status_code == 200, answer.text
    client.delete_alias("fraud", "champion")
    assert _actors(team) == [("champion", None, local_user()), ("shadow", None, None),
                             ("shadow", 1, None), ("champion", 1, local_user())]
    assert client.get_alias_history("fraud", "champion") == team.store.get_alias_history(
        "fraud", "champion")
