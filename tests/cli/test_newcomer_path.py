"""The README's first steps as a newcomer takes them: `serve` reads ./sluicegate.yaml, the banner says
OPEN only when no key exists anywhere, `keys show` takes a prefix, key names are unique, and the README's
example key can list models."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner
from support.gateway import Gateway, child_env, free_port, wait_healthy

from sluicegate.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def invoke(config: Path, *args: str) -> object:
    return CliRunner().invoke(cli, [*args, "--config", str(config)], env={"SLUICEGATE_LANG": "en"})


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "sluicegate.yaml"
    path.write_text(
        yaml.safe_dump({"database": f"sqlite:///{tmp_path / 'n.db'}", "server": {"port": free_port()}})
    )
    return path


def serve_in(directory: Path, port: int) -> Gateway:
    """`sluicegate serve` with no option at all, run from `directory`, as the README says."""
    out, err = open(directory / "stdout.log", "wb"), open(directory / "stderr.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "sluicegate", "serve"], cwd=directory, stdout=out, stderr=err, env=child_env()
    )
    gateway = Gateway(process, port, directory, directory / "sluicegate.yaml")
    wait_healthy(gateway)
    return gateway


def create(config: Path, *args: str) -> dict:
    result = invoke(config, "keys", "create", *args, "--json")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    return json.loads(result.output)  # type: ignore[attr-defined]


def test_keys_show_takes_a_unique_prefix_of_the_id_or_the_secret(config: Path) -> None:
    made = create(config, "--name", "prefixed")
    for prefix in (made["id"][:10], made["key"][:12]):
        shown = invoke(config, "keys", "show", prefix, "--json")
        assert shown.exit_code == 0, shown.output  # type: ignore[attr-defined]
        assert json.loads(shown.output)["id"] == made["id"]  # type: ignore[attr-defined]


def test_an_ambiguous_prefix_names_the_keys_it_matches(config: Path) -> None:
    first, second = create(config, "--name", "one"), create(config, "--name", "two")
    result = invoke(config, "keys", "show", "key_")
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert first["id"] in result.output and second["id"] in result.output  # type: ignore[attr-defined]


def test_a_duplicate_key_name_is_refused(config: Path) -> None:
    create(config, "--name", "team-a")
    again = invoke(config, "keys", "create", "--name", "team-a")
    assert again.exit_code == 1 and "already exists" in again.output  # type: ignore[attr-defined]


def test_a_revoked_keys_name_can_be_used_again(config: Path) -> None:
    old = create(config, "--name", "rotated")
    assert invoke(config, "keys", "revoke", old["id"]).exit_code == 0  # type: ignore[attr-defined]
    assert create(config, "--name", "rotated")["name"] == "rotated"


def test_serve_reads_the_sluicegate_yaml_of_the_current_directory(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "sluicegate.yaml").write_text(
        yaml.safe_dump(
            {
                "server": {"port": port},
                "models": {"from-yaml": "mock/mock-gpt"},
            }
        )
    )
    gateway = serve_in(tmp_path, port)
    try:
        models = httpx.get(f"{gateway.base_url}/models", timeout=10).json()
        assert [m["id"] for m in models["data"]] == ["from-yaml"]
    finally:
        gateway.stop()


def test_the_banner_does_not_say_open_when_the_store_holds_a_key(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "sluicegate.yaml"
    config.write_text(yaml.safe_dump({"server": {"port": port}}))
    create(config, "--name", "only-managed")
    gateway = serve_in(tmp_path, port)
    try:
        assert httpx.get(f"{gateway.base_url}/models", timeout=10).status_code == 401
    finally:
        gateway.stop()
    assert "WITHOUT authentication" not in gateway.stderr_text()
    assert "NO API KEYS" not in gateway.logs()


def readme_key_command(readme: Path) -> list[str]:
    text = readme.read_text()
    match = re.search(r"^(sluicegate keys create .*?)(?<!\\)$", text, flags=re.M | re.S)
    assert match, f"no `sluicegate keys create` in {readme.name}"
    return shlex.split(match.group(1).replace("\\\n", " "))[1:]


@pytest.mark.parametrize("readme", ["README.md", "README.zh-CN.md"])
def test_the_readmes_example_key_can_list_models(readme: str, tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "sluicegate.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server": {"port": port},
                "models": {"qwen-plus": "mock/mock-gpt", "gpt-4o-mini": "mock/mock-gpt"},
            }
        )
    )
    args = readme_key_command(ROOT / readme)
    result = CliRunner().invoke(cli, [*args, "--config", str(config)])
    assert result.exit_code == 0, result.output
    key = json.loads(result.output)["key"]
    gateway = serve_in(tmp_path, port)
    try:
        listed = httpx.get(
            f"{gateway.base_url}/models", headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
        assert listed.status_code == 200, listed.text
        assert "qwen-plus" in [m["id"] for m in listed.json()["data"]]
    finally:
        gateway.stop()


@pytest.mark.parametrize("readme", ["README.md", "README.zh-CN.md"])
def test_the_readme_activates_the_venv_before_its_first_sluicegate_command(readme: str) -> None:
    text = (ROOT / readme).read_text()
    activate = text.index("source .venv/bin/activate")
    first_command = re.search(r"^sluicegate ", text, flags=re.M)
    assert first_command is not None and activate < first_command.start()


def test_the_banner_lists_the_routes_kept_in_the_store(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "sluicegate.yaml"
    config.write_text(yaml.safe_dump({"server": {"port": port}}))
    added = invoke(config, "models", "add", "stored-route", "--channel", "mock/mock-gpt")
    assert added.exit_code == 0, added.output  # type: ignore[attr-defined]
    gateway = serve_in(tmp_path, port)
    gateway.stop()
    assert "stored-route" in gateway.stderr_text() and "-> mock/mock-gpt" in gateway.stderr_text()
    assert "No upstream configured" not in gateway.stderr_text()
