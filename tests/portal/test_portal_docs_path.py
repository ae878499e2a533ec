"""docs/portal.md followed step by step, as an operator and a user would: switch the portal on, create a
user with a password through the CLI (read from standard input), top up and make codes, then sign in,
redeem, create a key and use it, as the user."""

from __future__ import annotations

import json
from pathlib import Path

from support.gateway import run_cli, start_gateway
from support.portal_kit import PortalClient, Site, chat
from support.upstream import Upstream


def test_the_operator_and_the_user_succeed_from_the_docs_alone(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'sluicegate.db'}"
    with Upstream() as upstream:
        config = {
            "database": database,
            "upstreams": {"up": {"base_url": upstream.url, "api_key": "sk-provider-secret-0123"}},
            "models": {"gpt-4o-mini": "up"},
            "portal": {"enabled": True},
        }
        with start_gateway(config) as gateway:
            cfg = str(gateway.config_path)
            made = run_cli("users", "create", "--name", "alice", "--password-stdin", "--config", cfg,
                           input="a long passphrase\n")  # fmt: skip
            assert made.returncode == 0, made.stderr
            user_id = made.stdout.strip()
            assert user_id.startswith("usr_")
            topped = run_cli("balance", "topup", user_id, "20", "--reason", "welcome credit", "--config", cfg)
            assert topped.returncode == 0, topped.stderr
            codes = run_cli("codes", "create", "--amount", "10", "--count", "5", "--expires", "30d",
                            "--json", "--config", cfg)  # fmt: skip
            assert codes.returncode == 0, codes.stderr
            code = json.loads(codes.stdout)["codes"][0]

            user = PortalClient(Site(gateway, database))
            assert user.login("alice", "a long passphrase").status_code == 200
            assert user.post("redeem", {"code": code}).json()["balance"]["balance"] == 30.0
            key = user.post("keys", {"name": "laptop"}).json()["key"]
            assert chat(Site(gateway, database), key).status_code == 200
            assert "a long passphrase" not in gateway.logs()
