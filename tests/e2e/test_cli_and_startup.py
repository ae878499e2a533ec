"""The command line: check-config explains a bad file (field and line) and shows a good one with
secrets masked; serve refuses to expose an unauthenticated gateway, warns when it serves one on
loopback, substitutes ${ENV} references; --version."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from support.gateway import (
    CLIENT_KEY,
    PROVIDER_KEY,
    Core,
    Gateway,
    child_env,
    core_config,
    free_port,
    make_openai_client,
    run_cli,
)
from support.schema import parse_sse
from support.upstream import Upstream, reply_text

import sluicegate

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

GOOD = f"""\
keys:
  - {{key: {CLIENT_KEY}, name: team-a}}
upstreams:
  up: {{base_url: "http://127.0.0.1:9/v1", api_key: "{PROVIDER_KEY}"}}
models:
  gpt-4o-mini: up
  renamed: up/real-model-name
"""


def write(tmp_path: Path, text: str, name: str = "sluicegate.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def test_version_flag_prints_the_package_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0, output(result)
    assert sluicegate.__version__ in result.stdout


def test_check_config_accepts_a_good_file_and_lists_its_routes(tmp_path: Path) -> None:
    result = run_cli("check-config", str(write(tmp_path, GOOD)))
    assert result.returncode == 0, output(result)
    text = output(result)
    assert "gpt-4o-mini" in text and "renamed" in text
    assert "real-model-name" in text
    assert "up" in text


def test_check_config_masks_the_provider_and_client_keys(tmp_path: Path) -> None:
    result = run_cli("check-config", str(write(tmp_path, GOOD)))
    assert result.returncode == 0, output(result)
    assert PROVIDER_KEY not in output(result)
    assert CLIENT_KEY not in output(result)


def test_check_config_shows_a_native_upstream_with_its_auth_style_and_a_masked_key(tmp_path: Path) -> None:
    secret = "sk-ant-api03-very-secret-key-0123456789"
    config = (
        f"upstreams:\n  claude: {{preset: anthropic, api_key: {secret}}}\n"
        f"  glm: {{preset: zhipu-anthropic, api_key: {secret}}}\n"
        f"  aws: {{preset: bedrock, region: us-west-2, aws_access_key_id: AKIDX, aws_secret_access_key: {secret}}}\n"
        "models:\n  claude-sonnet-4-5: claude\n"
    )
    result = run_cli("check-config", str(write(tmp_path, config)))
    assert result.returncode == 0, output(result)
    text = output(result)
    lines = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ") and line.split()}
    assert "anthropic" in lines["claude"] and "https://api.anthropic.com" in lines["claude"]
    assert "x-api-key + anthropic-version" in lines["claude"]
    assert "https://open.bigmodel.cn/api/anthropic" in lines["glm"]
    assert "https://bedrock-runtime.us-west-2.amazonaws.com" in lines["aws"] and "AWS SigV4" in lines["aws"]
    assert secret not in text
    as_json = run_cli("check-config", "--json", str(write(tmp_path, config)))
    assert as_json.returncode == 0 and secret not in output(as_json)


def test_check_config_names_a_misspelt_field_and_its_line(tmp_path: Path) -> None:
    bad = GOOD.replace('up: {base_url: "http://127.0.0.1:9/v1"', 'up: {base_ur: "http://127.0.0.1:9/v1"')
    line = next(i for i, text in enumerate(bad.splitlines(), 1) if "base_ur:" in text)
    result = run_cli("check-config", str(write(tmp_path, bad)))
    assert result.returncode != 0
    text = output(result)
    assert "upstreams.up.base_ur" in text, text
    assert f"line {line}" in text, text
    assert PROVIDER_KEY not in text


def test_check_config_names_a_model_routed_to_an_unknown_upstream(tmp_path: Path) -> None:
    bad = GOOD + "  orphan: nowhere/some-model\n"
    line = len(bad.splitlines())
    result = run_cli("check-config", str(write(tmp_path, bad)))
    assert result.returncode != 0
    text = output(result)
    assert "models.orphan" in text, text
    assert "nowhere" in text
    assert f"line {line}" in text, text


def test_check_config_reports_invalid_yaml_with_its_line(tmp_path: Path) -> None:
    bad = 'keys: []\nupstreams:\n  up: {base_url: "http://x/v1"\nmodels: {}\n'
    result = run_cli("check-config", str(write(tmp_path, bad)))
    assert result.returncode != 0
    text = output(result)
    assert "yaml" in text.lower(), text
    assert "line" in text.lower(), text
    assert "Traceback" not in text


def test_check_config_reports_a_missing_file_without_a_traceback(tmp_path: Path) -> None:
    result = run_cli("check-config", str(tmp_path / "absent.yaml"))
    assert result.returncode != 0
    assert "Traceback" not in output(result)


def test_serve_without_keys_refuses_to_listen_on_all_interfaces(tmp_path: Path) -> None:
    config = write(tmp_path, 'upstreams:\n  up: {base_url: "http://127.0.0.1:9/v1"}\nmodels:\n  m: up\n')
    command = [
        sys.executable,
        "-m",
        "sluicegate",
        "serve",
        "--config",
        str(config),
        "--host",
        "0.0.0.0",
        "--port",
        str(free_port()),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=15, env=child_env())
    except subprocess.TimeoutExpired:
        pytest.fail("serve with no keys on 0.0.0.0 kept running instead of refusing to start")
    assert result.returncode != 0
    text = output(result).lower()
    assert "key" in text, output(result)
    assert "traceback" not in text, output(result)


def test_serve_without_keys_on_loopback_warns_and_serves(
    upstream: Upstream, gateway_factory: Callable[..., Gateway]
) -> None:
    gateway = gateway_factory(core_config(upstream.url, upstream.root, keys=False))
    response = httpx.post(f"{gateway.base_url}/chat/completions", json=CHAT, timeout=10)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == reply_text(CHAT)
    warnings = [line for line in gateway.logs().splitlines() if "warn" in line.lower()]
    assert warnings, f"no warning in the logs:\n{gateway.logs()[-2000:]}"
    assert any("key" in line.lower() or "auth" in line.lower() for line in warnings), warnings


def test_serve_substitutes_the_provider_key_from_the_environment(
    upstream: Upstream, gateway_factory: Callable[..., Gateway]
) -> None:
    secret = "sk-from-the-environment-5b1e2d"
    config = core_config(upstream.url, upstream.root)
    for up in config["upstreams"].values():
        up["api_key"] = "${E2E_PROVIDER_KEY}"
    gateway = gateway_factory(config, env={"E2E_PROVIDER_KEY": secret})
    with make_openai_client(gateway, CLIENT_KEY) as client:
        client.chat.completions.create(**CHAT)
    assert upstream.last.authorization == f"Bearer {secret}"
    assert secret not in gateway.logs()


def test_logs_never_contain_the_provider_or_client_key(core: Core) -> None:
    with core.client() as client:
        client.chat.completions.create(**CHAT)
        list(client.chat.completions.create(**CHAT, stream=True))
    core.upstream.behaviour = "status 401"
    httpx.post(
        f"{core.gateway.base_url}/chat/completions",
        json={**CHAT, "model": "logs401-model"},
        timeout=10,
        headers=core.auth,
    )
    httpx.post(
        f"{core.gateway.base_url}/chat/completions",
        json=CHAT,
        timeout=10,
        headers={"Authorization": "Bearer sk-wrong-but-secret-9999"},
    )
    core.upstream.behaviour = "cut_stream after=1"
    with httpx.stream(
        "POST",
        f"{core.gateway.base_url}/chat/completions",
        json={**CHAT, "model": "logscut-model", "stream": True},
        headers=core.auth,
        timeout=2,
    ) as response:
        try:
            for text in response.iter_text():
                if "[DONE]" in text:
                    break
        except httpx.ReadTimeout:
            pass
    logs = core.gateway.logs()
    assert logs, "the gateway wrote no log at all"
    assert PROVIDER_KEY not in logs
    assert CLIENT_KEY not in logs
    assert "sk-wrong-but-secret-9999" not in logs


def test_serve_stops_cleanly_on_sigterm(upstream: Upstream, gateway_factory: Callable[..., Gateway]) -> None:
    gateway = gateway_factory(core_config(upstream.url, upstream.root))
    code = gateway.stop(timeout=45)
    assert code == 0, f"exit code {code}\n{gateway.stderr_text()[-2000:]}"
    assert "Traceback" not in gateway.logs()


def test_check_config_accepts_the_documented_example_with_cors_origins(tmp_path: Path) -> None:
    # An example in the shape docs/configuration.md documents (server.cors.allow_origins, an Azure
    # upstream, a renamed model, per-section timeouts).
    example = f"""\
    keys:
      - {{key: {CLIENT_KEY}, name: team-a}}
    upstreams:
      up:   {{base_url: "http://127.0.0.1:9/v1", api_key: "{PROVIDER_KEY}"}}
      az:   {{preset: azure, base_url: "http://127.0.0.1:9", api_key: "{PROVIDER_KEY}", api_version: "2024-10-21"}}
    models:
      gpt-4o-mini: up
      renamed: up/real-model-name
    server:
      cors: {{allow_origins: ["https://chat.example.com"]}}
      max_body_bytes: 1048576
    timeouts: {{connect: 2, first_byte: 5, idle: 5, total: 30}}
    """
    result = run_cli("check-config", str(write(tmp_path, example)))
    assert result.returncode == 0, output(result)


def test_sigterm_lets_an_in_flight_stream_finish(
    upstream: Upstream, gateway_factory: Callable[..., Gateway]
) -> None:
    gateway = gateway_factory(core_config(upstream.url, upstream.root))
    upstream.behaviour = "slow_stream delay=0.25 chunks=6"
    body = {**CHAT, "stream": True}
    raw = b""
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/chat/completions",
        json=body,
        timeout=15,
        headers={"Authorization": f"Bearer {CLIENT_KEY}"},
    ) as response:
        chunks = response.iter_bytes()
        raw += next(chunks)
        gateway.process.send_signal(signal.SIGTERM)
        for data in chunks:
            raw += data
    events = parse_sse(raw)
    assert events[-1] == "[DONE]", f"the stream was cut by the shutdown: {events[-2:]}"
    assert not any('"error"' in e for e in events)
    # exits a few seconds after the stream (store and log sink closed); generous for a loaded box
    assert gateway.process.wait(45) == 0
