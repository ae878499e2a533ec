"""`sluicegate users|teams|groups|balance|codes` and `keys create --user/--team` as scripts use them,
with `--json`, on SQLite and PostgreSQL through click's runner (the same code the console script runs)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from support.pg import fresh_postgres_database

from sluicegate.cli.main import cli

Invoke = Callable[..., Result]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tenancy.db'}"
    else:
        with fresh_postgres_database("sg_cli_tenancy") as url:
            yield url


@pytest.fixture
def invoke(database: str, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    for name in [k for k in os.environ if k.startswith("SLUICEGATE_")]:
        monkeypatch.delenv(name)
    runner = CliRunner()

    def call(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, [*args, "--database", database], input=input, catch_exceptions=False)

    return call


def ok(invoke: Invoke, *args: str, input: str | None = None) -> Any:
    result = invoke(*args, "--json", input=input)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_users_create_prints_the_id_and_json_has_no_password(invoke: Invoke) -> None:
    plain = invoke("users", "create", "--name", "alice")
    assert plain.exit_code == 0, plain.output
    assert plain.stdout.strip().startswith("usr_")
    user = ok(invoke, "users", "create", "--name", "bob", "--password-stdin", input="s3cret-passw0rd\n")
    assert user["has_password"] is True
    assert "s3cret" not in json.dumps(user) and "password_hash" not in user
    listed = ok(invoke, "users", "list")
    assert [u["name"] for u in listed] == ["alice", "bob"]
    shown = ok(invoke, "users", "show", "bob")
    assert shown["id"] == user["id"] and shown["balance"]["balance"] == 0.0


def test_users_update_changes_group_role_and_disables(invoke: Invoke) -> None:
    ok(invoke, "groups", "set", "vip", "--ratio", "0.8", "--models", "gpt-4o,gpt-4o-mini")
    user = ok(invoke, "users", "create", "--name", "carol")
    updated = ok(invoke, "users", "update", user["id"], "--group", "vip", "--role", "viewer", "--disable")
    assert (updated["group"], updated["role"], updated["disabled"]) == ("vip", "viewer", True)
    groups = {g["name"]: g for g in ok(invoke, "groups", "list")}
    assert groups["vip"] == {
        "name": "vip",
        "ratio": 0.8,
        "description": "",
        "models": ["gpt-4o", "gpt-4o-mini"],
    }


def test_an_unknown_group_is_a_clear_error(invoke: Invoke) -> None:
    result = invoke("users", "create", "--name", "dave", "--group", "gold")
    assert result.exit_code == 1
    assert "no group named 'gold'" in result.output


def test_teams_create_list_and_add_member(invoke: Invoke) -> None:
    team = ok(invoke, "teams", "create", "--name", "research")
    assert team["id"].startswith("team_")
    user = ok(invoke, "users", "create", "--name", "erin", "--team", "research")
    assert user["team_id"] == team["id"]
    other = ok(invoke, "users", "create", "--name", "frank")
    after = ok(invoke, "teams", "add-member", "research", other["id"], "--role", "team_admin")
    assert {m["user_id"]: m["role"] for m in after["members"]} == {
        user["id"]: "member",
        other["id"]: "team_admin",
    }
    assert [t["name"] for t in ok(invoke, "teams", "list")] == ["research"]


def test_balance_topup_and_show_with_the_ledger(invoke: Invoke) -> None:
    user = ok(invoke, "users", "create", "--name", "gina")
    ok(invoke, "balance", "topup", user["id"], "12.345678", "--reason", "invoice 7")
    ok(invoke, "balance", "topup", "gina", "0.654322", "--reason", "rounding")
    shown = ok(invoke, "balance", "show", user["id"])
    assert (shown["balance"], shown["balance_micro"], shown["currency"]) == (13.0, 13_000_000, "USD")
    assert [(e["kind"], e["amount"], e["reason"]) for e in shown["ledger"]] == [
        ("topup", 0.654322, "rounding"),
        ("topup", 12.345678, "invoice 7"),
    ]
    assert sum(e["amount_micro"] for e in shown["ledger"]) == shown["balance_micro"]
    assert shown["ledger"][0]["actor"].startswith("cli:")


def test_a_topup_needs_a_valid_amount_and_an_existing_owner(invoke: Invoke) -> None:
    user = ok(invoke, "users", "create", "--name", "hank")
    bad = invoke("balance", "topup", user["id"], "1.0000001", "--reason", "x")
    assert bad.exit_code == 1 and "6 decimal places" in bad.output
    ghost = invoke("balance", "topup", "usr_nobody", "1", "--reason", "x")
    assert ghost.exit_code == 1 and "usr_nobody" in ghost.output


def test_codes_create_prints_them_once_and_redeem_credits_once(invoke: Invoke) -> None:
    user = ok(invoke, "users", "create", "--name", "ivy")
    made = ok(invoke, "codes", "create", "--amount", "5", "--count", "3", "--expires", "30d")
    assert len(made["codes"]) == 3 and made["amount"] == 5.0 and made["expires_at"]
    plain = invoke("codes", "create", "--amount", "1", "--count", "2")
    assert plain.exit_code == 0 and len(plain.stdout.split()) == 2
    redeemed = ok(invoke, "codes", "redeem", made["codes"][0], "--user", "ivy")
    assert redeemed["balance"] == 5.0 and redeemed["entry"]["kind"] == "redeem"
    again = invoke("codes", "redeem", made["codes"][0], "--user", user["id"])
    assert again.exit_code == 1 and "already redeemed" in again.output
    listed = ok(invoke, "codes", "list", "--batch", made["batch_id"])
    assert sorted(c["redeemed_by"] or "" for c in listed) == ["", "", user["id"]]
    assert not any(code in json.dumps(listed) for code in made["codes"])


def test_keys_create_belongs_to_a_user_or_a_team(invoke: Invoke) -> None:
    user = ok(invoke, "users", "create", "--name", "jack")
    team = ok(invoke, "teams", "create", "--name", "ops")
    mine = ok(invoke, "keys", "create", "--name", "jack-key", "--user", user["id"])
    ours = ok(invoke, "keys", "create", "--name", "ops-key", "--team", team["id"])
    assert (mine["user_id"], mine["team_id"]) == (user["id"], None)
    assert (ours["user_id"], ours["team_id"]) == (None, team["id"])
    ghost = invoke("keys", "create", "--name", "ghost", "--user", "usr_nobody")
    assert ghost.exit_code == 1 and "no user has the id" in ghost.output


def test_users_and_teams_update_their_limits(invoke: Invoke) -> None:
    team = ok(invoke, "teams", "create", "--name", "capped")
    user = ok(invoke, "users", "create", "--name", "kate", "--team", "capped")
    assert ok(invoke, "users", "update", user["id"], "--rpm", "60", "--concurrency", "3")["limits"] == {
        "rpm": 60,
        "rpd": None,
        "tpm": None,
        "concurrency": 3,
    }
    updated = ok(invoke, "teams", "update", team["id"], "--tpm", "100000", "--group", "default")
    assert updated["limits"]["tpm"] == 100000


def test_users_update_links_and_unlinks_a_single_sign_on_subject(invoke: Invoke) -> None:
    ok(invoke, "users", "create", "--name", "carol")
    issuer = "https://sso.example.com/realms/staff"
    linked = ok(invoke, "users", "update", "carol", "--sso-issuer", issuer, "--sso-subject", "f81d4fae")
    assert linked["sso"] == {"issuer": issuer, "subject": "f81d4fae"}
    assert ok(invoke, "users", "show", "carol")["sso"] == {"issuer": issuer, "subject": "f81d4fae"}
    ok(invoke, "users", "create", "--name", "dave")
    taken = invoke("users", "update", "dave", "--sso-issuer", issuer, "--sso-subject", "f81d4fae")
    assert taken.exit_code == 1 and "single sign-on identity" in taken.output  # one user per identity
    assert ok(invoke, "users", "update", "carol", "--no-sso")["sso"] is None
    without = invoke("users", "update", "carol", "--sso-subject", "f81d4fae")
    assert without.exit_code == 2 and "portal.oidc" in without.output
