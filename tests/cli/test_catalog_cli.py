"""`sluicegate upstreams|models|prices|audit|channels` as scripts use them (--json), on a real store,
and against a running gateway found the way `serve` was started."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner, Result
from support.gateway import Gateway, start_gateway
from support.upstream import Upstream

from sluicegate.cli.main import cli

MASTER = "cli-master-key-0123456789abcdefgh"
SECRET = "sk-cli-provider-secret-8d1e77"
ADMIN = "adm-cli-0123456789abcdef-tests"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "sluicegate.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "database": f"sqlite:///{tmp_path / 'cli.db'}",
                "upstreams": {"filed": {"base_url": "http://127.0.0.1:9"}},
                "models": {"filed-model": "filed"},
            }
        )
    )
    return path


def sg(config: Path, *args: str, master: bool = True, lang: str = "en", stdin: str | None = None) -> Result:
    env = {"SLUICEGATE_MASTER_KEY": MASTER if master else "", "SLUICEGATE_LANG": lang}
    return CliRunner().invoke(cli, [*args, "--config", str(config)], env=env, input=stdin)


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    return json.loads(result.output)


def test_upstreams_add_list_show_update_remove_with_json(config: Path) -> None:
    added = ok_json(
        sg(
            config,
            "upstreams",
            "add",
            "extra",
            "--base-url",
            "http://127.0.0.1:7",
            "--api-key",
            SECRET,
            "--json",
        )
    )
    assert (
        added["name"] == "extra"
        and added["source"] == "store"
        and added["api_key"].endswith(f"({len(SECRET)})")
    )
    listed = ok_json(sg(config, "upstreams", "list", "--json"))
    assert [(u["name"], u["source"]) for u in listed] == [("filed", "file"), ("extra", "store")]
    updated = ok_json(sg(config, "upstreams", "update", "extra", "--rpm", "60", "--disable", "--json"))
    assert updated["rpm"] == 60 and updated["enabled"] is False and updated["api_key"] == added["api_key"]
    assert ok_json(sg(config, "upstreams", "show", "extra", "--json"))["rpm"] == 60
    assert ok_json(sg(config, "upstreams", "remove", "extra", "--json"))["deleted"] is True
    assert sg(config, "upstreams", "show", "extra").exit_code == 1


def test_an_api_key_can_come_from_standard_input(config: Path) -> None:
    added = ok_json(
        sg(
            config,
            "upstreams",
            "add",
            "piped",
            "--base-url",
            "http://127.0.0.1:7",
            "--api-key",
            "-",
            "--json",
            stdin=SECRET + "\n",
        )
    )
    assert added["api_key"].endswith(f"({len(SECRET)})")


def test_a_provider_key_without_a_master_key_is_refused(config: Path) -> None:
    result = sg(
        config, "upstreams", "add", "x", "--base-url", "http://127.0.0.1:7", "--api-key", SECRET, master=False
    )
    assert result.exit_code == 1 and "SLUICEGATE_MASTER_KEY" in result.output
    assert ok_json(sg(config, "upstreams", "list", "--json", master=False))[-1]["name"] == "filed"


def test_models_add_update_remove_with_channel_specs(config: Path) -> None:
    added = ok_json(
        sg(
            config,
            "models",
            "add",
            "chat",
            "--channel",
            "filed/a,weight=3",
            "--channel",
            "mock/mock-gpt,priority=1",
            "--json",
        )
    )
    assert [(c["name"], c["weight"], c["priority"]) for c in added["channels"]] == [
        ("filed/a", 3, 0),
        ("mock/mock-gpt", 1, 1),
    ]
    updated = ok_json(sg(config, "models", "update", "chat", "--channel", "filed/b", "--json"))
    assert [c["name"] for c in updated["channels"]] == ["filed/b"]
    assert {m["name"] for m in ok_json(sg(config, "models", "list", "--json"))} == {"filed-model", "chat"}
    assert ok_json(sg(config, "models", "remove", "chat", "--json"))["deleted"] is True


def test_a_file_model_is_read_only_from_the_cli(config: Path) -> None:
    result = sg(config, "models", "remove", "filed-model")
    assert result.exit_code == 1 and "configuration file" in result.output


def test_prices_set_list_remove_with_json(config: Path) -> None:
    price = ok_json(
        sg(
            config,
            "prices",
            "set",
            "chat",
            "--input",
            "0.5",
            "--output",
            "1.5",
            "--currency",
            "CNY",
            "--json",
        )
    )
    assert price == {**price, "model": "chat", "input": 0.5, "output": 1.5, "currency": "CNY"}
    assert [p["model"] for p in ok_json(sg(config, "prices", "list", "--json"))] == ["chat"]
    assert ok_json(sg(config, "prices", "remove", "chat", "--json"))["deleted"] is True


def test_audit_names_the_cli_user_and_masks_secrets(config: Path) -> None:
    sg(config, "upstreams", "add", "audited", "--base-url", "http://127.0.0.1:7", "--api-key", SECRET)
    entries = ok_json(sg(config, "audit", "--json"))
    assert entries[0]["actor"].startswith("cli:") and entries[0]["target"] == "audited"
    exported = sg(config, "audit", "--csv")
    assert exported.exit_code == 0 and SECRET not in exported.output
    assert exported.output.splitlines()[0].startswith("id,ts,actor")


def test_tables_are_in_chinese_under_a_chinese_locale(config: Path) -> None:
    result = sg(config, "upstreams", "list", lang="zh_CN.UTF-8")
    assert result.exit_code == 0 and result.output.splitlines()[0].split()[:3] == ["名称", "来源", "状态"]
    assert "配置文件" in result.output


# -- channels through the running gateway ------------------------------------------------------------------


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Upstream]]:
    with Upstream() as upstream:
        db = tmp_path_factory.mktemp("channels-cli") / "g.db"
        gateway = start_gateway(
            {
                "database": f"sqlite:///{db}",
                "admin_key": ADMIN,
                "upstreams": {"up": {"base_url": upstream.url, "api_key": SECRET}},
                "models": {"gpt-4o-mini": "up"},
            }
        )
        try:
            yield gateway, upstream
        finally:
            gateway.stop()


def test_serve_notes_its_url_beside_its_config(running: tuple[Gateway, Upstream]) -> None:
    gateway, _ = running
    state = json.loads((gateway.config_path.parent / ".sluicegate-serve.json").read_text())
    assert state == {"url": gateway.url, "pid": gateway.pid}


def test_channels_test_finds_the_gateway_and_reports_the_answer(running: tuple[Gateway, Upstream]) -> None:
    gateway, _ = running
    result = ok_json(sg(gateway.config_path, "channels", "test", "up/gpt-4o-mini", "--json"))
    assert result["ok"] is True and result["latency_ms"] >= 0 and result["answer"]


def test_channels_test_exits_1_when_the_channel_fails(running: tuple[Gateway, Upstream]) -> None:
    gateway, upstream = running
    upstream.script("fail")
    result = sg(gateway.config_path, "channels", "test", "up/gpt-4o-mini")
    assert result.exit_code == 1 and "FAILED (500)" in result.output
    sg(gateway.config_path, "channels", "reset", "up/gpt-4o-mini")


def test_channels_reset_and_disable_reach_the_gateway(running: tuple[Gateway, Upstream]) -> None:
    gateway, _ = running
    assert (
        ok_json(sg(gateway.config_path, "channels", "reset", "up/gpt-4o-mini", "--json"))["state"] == "closed"
    )
    assert (
        ok_json(sg(gateway.config_path, "channels", "disable", "up/gpt-4o-mini", "--json"))["enabled"]
        is False
    )
    try:

        def refused() -> bool:
            answer = httpx.post(
                f"{gateway.base_url}/chat/completions",
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                timeout=10,
            )
            return answer.status_code == 404

        from support.deployment import wait_until

        assert wait_until(refused, 5) is not None
    finally:
        sg(gateway.config_path, "channels", "enable", "up/gpt-4o-mini")


def test_keys_made_from_the_cli_are_audited_as_the_cli_user(config: Path) -> None:
    made = ok_json(sg(config, "keys", "create", "--name", "from-terminal", "--json"))
    entries = ok_json(sg(config, "audit", "--kind", "key", "--json"))
    assert entries[0]["target"] == made["id"] and entries[0]["actor"].startswith("cli:")
    assert made["key"] not in json.dumps(entries)
