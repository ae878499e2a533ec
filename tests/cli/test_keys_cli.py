"""`sluicegate keys` as scripts use it: real subprocesses and click's runner, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.pg import fresh_postgres_database

from sluicegate.cli.main import cli
from sluicegate.store.secrets import hash_key

SLUICEGATE = Path(sys.executable).with_name("sluicegate")


def clean_env() -> dict[str, str]:
    """The environment without any Sluicegate setting the developer may have exported."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SLUICEGATE_")}


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed `sluicegate` executable as a script would."""
    return subprocess.run(
        [str(SLUICEGATE), *args], cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'keys.db'}"


@pytest.fixture
def invoke(database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Run a `keys` command in-process with click's runner against the test database."""
    for name in [k for k in os.environ if k.startswith("SLUICEGATE_")]:
        monkeypatch.delenv(name)
    runner = CliRunner()

    def call(*args: str) -> Result:
        return runner.invoke(cli, ["keys", *args, "--database", database], catch_exceptions=False)

    yield call


def created(invoke: object, *args: str) -> dict[str, object]:
    result = invoke("create", *args, "--json")  # type: ignore[operator]
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_create_json_prints_the_key_once_with_its_fields(tmp_path: Path, database: str) -> None:
    done = run_cli(
        "keys", "create", "--database", database, "--name", "ci", "--owner", "platform", "--models", "gpt-4o*,qwen-max",
        "--endpoints", "chat,embeddings", "--ip", "10.0.0.0/8", "--rpm", "60", "--tpm", "90000",
        "--budget-usd", "25", "--budget-period", "month", "--store-bodies", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["key"].startswith("sk-sg-") and data["id"].startswith("key_")
    assert (data["name"], data["owner"], data["status"]) == ("ci", "platform", "active")
    assert data["models"] == ["gpt-4o*", "qwen-max"]
    assert data["endpoints"] == ["chat", "embeddings"]
    assert data["networks"] == ["10.0.0.0/8"]
    assert data["limits"]["rpm"] == 60 and data["limits"]["tpm"] == 90000
    assert data["limits"]["budget_usd_month"] == 25.0
    assert data["store_bodies"] is True


def test_create_without_json_shows_the_secret_and_says_it_is_shown_once(invoke: object) -> None:
    result = invoke("create", "--name", "human")  # type: ignore[operator]
    assert result.exit_code == 0
    secrets = [word for word in result.output.split() if word.startswith("sk-sg-") and len(word) == 49]
    assert len(secrets) == 1
    assert "only time the key is shown" in result.output


def test_list_and_show_never_print_the_secret(invoke: object) -> None:
    key = created(invoke, "--name", "quiet")
    secret, key_hash = str(key["key"]), hash_key(str(key["key"]))
    outputs = [
        invoke(*args).output  # type: ignore[operator]
        for args in (("list",), ("list", "--json"), ("show", str(key["id"])), ("show", str(key["id"]), "--json"),
                     ("update", str(key["id"]), "--rpm", "5", "--json"), ("revoke", str(key["id"])),
                     ("list", "--all", "--json"))
    ]  # fmt: skip
    for output in outputs:
        assert secret not in output
        assert secret[10:] not in output
        assert key_hash not in output
    assert str(key["id"]) in outputs[0]


def test_list_shows_an_aligned_table(invoke: object) -> None:
    created(invoke, "--name", "a", "--rpm", "10")
    created(invoke, "--name", "longer-name")
    lines = invoke("list").output.splitlines()  # type: ignore[operator]
    assert lines[0].split()[:5] == ["ID", "NAME", "OWNER", "PREFIX", "STATUS"]
    assert len({line.index("sk-sg-") for line in lines[1:]}) == 1
    assert "rpm=10" in lines[1]


def test_update_changes_limits_and_none_or_zero_clears_them(invoke: object) -> None:
    key = created(invoke, "--name", "k", "--rpm", "60", "--tpm", "1000", "--models", "gpt-4o")
    result = invoke(
        "update",
        str(key["id"]),
        "--rpm",
        "none",
        "--tpm",
        "0",
        "--concurrency",
        "3",
        "--models",
        "",
        "--budget-tokens",
        "500000",
        "--budget-period",
        "day",
        "--json",
    )  # type: ignore[operator]
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["limits"]["rpm"], data["limits"]["tpm"], data["limits"]["concurrency"]) == (None, None, 3)
    assert data["limits"]["budget_tokens_day"] == 500000
    assert data["models"] == []


def test_disable_and_enable(invoke: object) -> None:
    key = created(invoke, "--name", "k")
    disabled = json.loads(invoke("update", str(key["id"]), "--disable", "--json").output)  # type: ignore[operator]
    assert (disabled["enabled"], disabled["status"]) == (False, "disabled")
    enabled = json.loads(invoke("update", str(key["id"]), "--enable", "--json").output)  # type: ignore[operator]
    assert (enabled["enabled"], enabled["status"]) == (True, "active")


def test_expires_takes_a_duration(invoke: object) -> None:
    key = created(invoke, "--name", "k", "--expires", "30d")
    expires = datetime.fromisoformat(str(key["expires_at"]).replace("Z", "+00:00"))
    assert abs((expires - datetime.now(UTC)).total_seconds() - 30 * 86400) < 60


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--ip", "10.0.0.0/33"), "invalid network '10.0.0.0/33'"),
        (("--endpoints", "chat,speech"), "unknown endpoint 'speech'"),
        (("--expires", "soon"), "invalid expiry 'soon'"),
        (("--rpm", "fast"), "'fast' is not a whole number"),
        (("--rpm", "-5"), "negative"),
        (("--budget-period", "month"), "--budget-period needs --budget-tokens or --budget-usd"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(
    invoke: object, args: tuple[str, ...], message: str
) -> None:
    result = invoke("create", "--name", "x", *args)  # type: ignore[operator]
    assert result.exit_code == 2
    assert message in result.output
    assert invoke("list", "--json").output.strip() == "[]"  # type: ignore[operator]


def test_a_script_sees_bad_input_as_exit_status_2_on_stderr(tmp_path: Path, database: str) -> None:
    done = run_cli(
        "keys", "create", "--database", database, "--name", "x", "--ip", "10.0.0.0/33", cwd=tmp_path
    )
    assert done.returncode == 2
    assert "invalid network '10.0.0.0/33'" in done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr


def test_update_without_options_is_a_usage_error(invoke: object) -> None:
    key = created(invoke, "--name", "k")
    result = invoke("update", str(key["id"]))  # type: ignore[operator]
    assert result.exit_code == 2
    assert "nothing to change" in result.output


def test_revoke_is_final(invoke: object) -> None:
    key = created(invoke, "--name", "k")
    revoked = invoke("revoke", str(key["id"]), "--json")  # type: ignore[operator]
    assert json.loads(revoked.output)["status"] == "revoked"
    again = invoke("update", str(key["id"]), "--enable")  # type: ignore[operator]
    assert again.exit_code == 1
    assert "revoked" in again.output
    assert invoke("list", "--json").output.strip() == "[]"  # type: ignore[operator]


def test_an_unknown_id_is_an_error(invoke: object) -> None:
    for args in (("show", "key_nope"), ("update", "key_nope", "--rpm", "1"), ("revoke", "key_nope")):
        result = invoke(*args)  # type: ignore[operator]
        assert result.exit_code == 1
        assert "no key with id 'key_nope'" in result.output


def test_the_config_file_names_the_database(tmp_path: Path) -> None:
    (tmp_path / "gate.yaml").write_text(f"database: sqlite:///{tmp_path / 'from-config.db'}\n")
    done = run_cli("keys", "create", "--config", "gate.yaml", "--name", "cfg", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "from-config.db").is_file()


def test_the_config_file_comes_from_sluicegate_config(tmp_path: Path) -> None:
    (tmp_path / "gate.yaml").write_text(f"database: sqlite:///{tmp_path / 'from-env.db'}\n")
    env = {**clean_env(), "SLUICEGATE_CONFIG": str(tmp_path / "gate.yaml")}
    assert run_cli("keys", "create", "--name", "env", cwd=tmp_path, env=env).returncode == 0
    assert (tmp_path / "from-env.db").is_file()


def test_without_a_database_setting_the_store_is_a_file_next_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "sluicegate.yaml").write_text("server: {}\n")
    done = run_cli("keys", "list", "--config", "etc/sluicegate.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "etc" / "sluicegate.db").is_file()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    with fresh_postgres_database("sg_cli") as url:
        yield url


def test_keys_work_against_postgresql(tmp_path: Path, postgres_url: str) -> None:
    done = run_cli(
        "keys", "create", "--database", postgres_url, "--name", "pg", "--rpm", "5", "--json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    key = json.loads(done.stdout)
    listed = run_cli("keys", "list", "--database", postgres_url, "--json", cwd=tmp_path)
    assert [k["id"] for k in json.loads(listed.stdout)] == [key["id"]]
    assert key["key"] not in listed.stdout
    revoked = run_cli("keys", "revoke", key["id"], "--database", postgres_url, "--json", cwd=tmp_path)
    assert json.loads(revoked.stdout)["status"] == "revoked"


def test_a_keys_cache_setting_is_set_shown_and_cleared(invoke: object) -> None:
    data = created(invoke, "--name", "no-cache", "--cache", "off")
    assert data["cache"] == "off"
    result = invoke("update", str(data["id"]), "--cache", "default", "--json")  # type: ignore[operator]
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["cache"] is None
    result = invoke("update", str(data["id"]), "--cache", "on")  # type: ignore[operator]
    assert result.exit_code == 0 and "on" in result.output
