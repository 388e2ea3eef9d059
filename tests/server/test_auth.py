"""Access control of the team server: tokens, roles, protected models, the auth default."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from forgeline.cli.server import auth_by_default
from forgeline.entities import Role
from forgeline.errors import Forbidden, NotFound, Unauthorized
from forgeline.server.auth import PROTECTED_TAG
from forgeline.store.tokens import TOKEN_PREFIX, new_secret, secret_sha256
from tests.server.conftest import Team

CREATE_HINT = "forgeline server token create"


def test_no_token_or_an_unknown_one_is_401_saying_how_to_get_one(secured: Team) -> None:
    for secret in (None, "flt_not-a-real-one"):
        with pytest.raises(Unauthorized, match=CREATE_HINT):
            secured.remote(secret).list_experiments()
    with secured.http() as http:
        answer = http.get("/experiments")
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["error"]["code"] == "UNAUTHORIZED"
        for header in ("Basic abc", "Bearer", "flt_x"):
            answer = http.get("/experiments", headers={"Authorization": header})
            assert answer.status_code == 401, header
            assert "Bearer <secret>" in answer.json()["error"]["message"]
        assert http.get("/health").json() == {"status": "ok", "version": "0.1.0", "auth": True}


def test_each_role_may_do_what_it_needs_and_no_more(secured: Team) -> None:
    reader = secured.remote(secured.secret(Role.READER))
    writer = secured.remote(secured.secret(Role.WRITER))
    admin = secured.remote(secured.secret(Role.ADMIN))
    with pytest.raises(Forbidden) as info:
        reader.create_experiment("fraud")
    assert str(info.value).startswith(
        "Token 'reader' has the role reader; this request needs the role writer.")
    assert "--role writer" in str(info.value)
    exp = writer.create_experiment("fraud")
    assert reader.list_experiments() == [exp]
    run = writer.create_run(exp.experiment_id, "r", 1)
    writer.log_batch(run.run_id, metrics=[("auc", 0.9, 0, 1)], params={"lr": "0.1"})
    writer.create_model_version("fraud", run.run_id, "model")
    writer.create_model_version("fraud", run.run_id, "model")
    assert writer.set_alias("fraud", "champion", 1) is None  # an unprotected model
    with pytest.raises(Forbidden, match="needs the role admin"):
        writer.delete_model_version("fraud", 2)
    for call in (writer.list_tokens, lambda: writer.delete_token("reader")):
        with pytest.raises(Forbidden, match="needs the role admin"):
            call()
    admin.delete_model_version("fraud", 2)
    assert [t.name for t in admin.list_tokens()] == ["admin", "reader", "writer"]
    assert reader.get_run(run.run_id).metrics == {"auc": 0.9}


def test_aliases_of_a_protected_model_are_an_admins(secured: Team) -> None:
    writer = secured.remote(secured.secret(Role.WRITER))
    admin = secured.remote(secured.secret(Role.ADMIN))
    exp = writer.create_experiment("fraud")
    run = writer.create_run(exp.experiment_id, "r", 1).run_id
    writer.create_model_version("fraud", run, "model", aliases=["champion"])
    with pytest.raises(Forbidden, match=f"needs the role admin .*{PROTECTED_TAG}"):
        writer.set_registered_model_tag("fraud", PROTECTED_TAG, "true")
    admin.set_registered_model_tag("fraud", PROTECTED_TAG, "true")
    writer.create_model_version("fraud", run, "model")  # registering stays a writer's
    for call in (lambda: writer.set_alias("fraud", "champion", 2),
                 lambda: writer.delete_alias("fraud", "champion"),
                 lambda: writer.create_model_version("fraud", run, "model", aliases=["x"])):
        with pytest.raises(Forbidden, match=r"needs the role admin \(model 'fraud' is "
                                            r"protected"):
            call()
    assert writer.get_alias("fraud", "champion") == 1
    assert [v.version for v in writer.list_model_versions("fraud")] == [2, 1]
    assert admin.set_alias("fraud", "champion", 2) == 1
    writer.set_registered_model_tag("fraud", "team", "risk")  # other tags stay a writer's


def test_tokens_are_stored_hashed_and_revoked_at_once(secured: Team) -> None:
    secret = secured.secret(Role.WRITER, "ci")
    assert secret.startswith(TOKEN_PREFIX) and len(secret) > 40
    assert new_secret() != new_secret()
    with sqlite3.connect(secured.db) as conn:
        rows = conn.execute("SELECT name, role, secret_sha256 FROM api_tokens").fetchall()
    assert rows == [("ci", "writer", hashlib.sha256(secret.encode()).hexdigest())]
    assert secret.encode() not in secured.db.read_bytes()
    wal = secured.db.with_name(secured.db.name + "-wal")
    assert not wal.exists() or secret.encode() not in wal.read_bytes()
    writer = secured.remote(secret)
    assert writer.list_experiments() == []  # remembered by the server from now on
    admin = secured.remote(secured.secret(Role.ADMIN))
    assert admin.find_token(secret_sha256(secret)).name == "ci"  # type: ignore[union-attr]
    admin.delete_token("ci")
    with pytest.raises(Unauthorized, match="Unknown or revoked token"):
        writer.list_experiments()
    with pytest.raises(NotFound):
        admin.delete_token("ci")


def test_a_client_can_manage_tokens_without_the_server_seeing_a_secret(secured: Team) -> None:
    from forgeline.store.tokens import issue_token

    admin = secured.remote(secured.secret(Role.ADMIN))
    token, secret = issue_token(admin, "bob", Role.READER)  # through the server
    assert token.role is Role.READER
    assert secured.remote(secret).list_experiments() == []
    with secured.http(secret) as http:
        assert http.get("/whoami").json()["token"]["name"] == "bob"


def test_without_auth_everything_is_open(team: Team) -> None:
    store = team.remote()
    exp = store.create_experiment("fraud")
    assert store.list_experiments() == [exp]
    with team.http() as http:
        assert http.get("/whoami").json() == {"token": None}
        assert http.get("/health").json()["auth"] is False


@pytest.mark.parametrize(("host", "required"), [
    ("127.0.0.1", False), ("127.0.0.2", False), ("::1", False), ("[::1]", False),
    ("localhost", False), ("0.0.0.0", True), ("::", True), ("192.168.1.20", True),
    ("10.0.0.1", True), ("forgeline.internal", True),
])
def test_auth_is_on_by_default_off_loopback(host: str, required: bool) -> None:
    assert auth_by_default(host) is required
