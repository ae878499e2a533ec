"""Codex, the real CLI from npm, against the gateway with a chat-only stand-in upstream.

Codex speaks only the Responses API (`wire_api = "responses"`), streamed, with `store: false`. The
gateway translates it onto chat completions. The CLI is installed from the npm registry at test time
into a cache under the repository's .venv (reused across runs); the test is skipped only when npm is
missing. If a new Codex version sends something else (other tools, no shell tool), the assertions say
what it sent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from support.agent_upstream import AgentUpstream, Reply
from support.gateway import Gateway, start_gateway

KEY = "sk-codex-client-key-51d7"
CODEX_VERSION = os.environ.get("SLUICEGATE_CODEX_VERSION", "0.171.0")
CACHE = Path(__file__).resolve().parents[2] / ".venv" / "npm-clients"
SHELL_TOOLS = ("exec_command", "shell", "local_shell")


def npm_binary(package: str, version: str, name: str) -> Path:
    """A client CLI from npm, installed once into the cache (offline apart from the npm registry)."""
    if shutil.which("npm") is None:
        pytest.skip(f"npm is not installed: the real-client test needs it to install {package}")
    binary = CACHE / "node_modules" / ".bin" / name
    if not binary.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), f"{package}@{version}"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"npm install {package} failed:\n{done.stderr[-2000:]}"
    return binary


def codex_binary() -> Path:
    return npm_binary("@openai/codex", CODEX_VERSION, "codex")


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[Path, Gateway, AgentUpstream]]:
    binary = codex_binary()
    upstream = AgentUpstream()
    gateway = start_gateway(
        {
            "keys": [{"key": KEY, "name": "codex"}],
            "upstreams": {"chat": {"base_url": upstream.url, "api_key": "sk-provider-chat-only"}},
            "models": {"my-model": "chat/agent-model"},
        }
    )
    try:
        yield binary, gateway, upstream
    finally:
        gateway.stop()
        upstream.close()


def run_codex(binary: Path, gateway: Gateway, prompt: str, *extra: str) -> subprocess.CompletedProcess[str]:
    home = Path(tempfile.mkdtemp(prefix="codex-home-"))
    (home / "config.toml").write_text(
        'model = "my-model"\nmodel_provider = "gw"\n[model_providers.gw]\nname = "gateway"\n'
        f'base_url = "{gateway.url}/v1"\nenv_key = "GW_KEY"\nwire_api = "responses"\n'
    )
    work = Path(tempfile.mkdtemp(prefix="codex-work-"))
    env = {**os.environ, "CODEX_HOME": str(home), "GW_KEY": KEY, "HOME": str(home)}
    return subprocess.run(
        [str(binary), "exec", "--skip-git-repo-check", *extra, prompt],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def tool_names(request: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in request.get("tools") or []]


def test_codex_prints_a_plain_answer_from_a_chat_only_upstream(env: Any) -> None:
    binary, gateway, upstream = env
    upstream.requests.clear()
    upstream.replies[:] = [Reply(text="Hi from the chat-only stand-in.")]
    done = run_codex(binary, gateway, "Say hi")
    assert done.returncode == 0, f"codex failed:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
    assert "Hi from the chat-only stand-in." in done.stdout
    sent = upstream.chat_requests()
    assert sent, "the upstream received no chat request"
    assert sent[0]["stream"] is True
    users = [m["content"] for m in sent[0]["messages"] if m["role"] == "user"]
    assert users[-1] == "Say hi", f"the last user message Codex's request became is {users[-1]!r}"
    assert any(n in tool_names(sent[0]) for n in SHELL_TOOLS), (
        f"Codex {CODEX_VERSION} offered no shell tool; the tools it sent were {tool_names(sent[0])}"
    )


def test_codex_runs_a_shell_tool_call_and_answers_after_its_output(env: Any) -> None:
    binary, gateway, upstream = env
    upstream.requests.clear()
    command = "echo sluice-$((6*7))"
    upstream.replies[:] = [
        Reply(tool="exec_command", arguments=orjson.dumps({"cmd": command}).decode(), call_id="call_shell_1"),
        Reply(text="The command printed sluice-42."),
    ]
    done = run_codex(binary, gateway, "Run the command", "--dangerously-bypass-approvals-and-sandbox")
    assert done.returncode == 0, f"codex failed:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
    sent = upstream.chat_requests()
    assert len(sent) >= 2, f"Codex sent {len(sent)} request(s); a tool round trip needs 2"
    assert "exec_command" in tool_names(sent[0]), (
        f"Codex {CODEX_VERSION} no longer offers exec_command; it sent {tool_names(sent[0])}"
    )
    messages = sent[1]["messages"]
    calls = [c for m in messages if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    assert [c["id"] for c in calls] == ["call_shell_1"], f"the tool call did not come back as sent: {calls}"
    outputs = [m for m in messages if m["role"] == "tool"]
    assert outputs and outputs[0]["tool_call_id"] == "call_shell_1"
    assert "sluice-42" in outputs[0]["content"], (
        f"the tool output Codex sent back: {outputs[0]['content'][:500]!r}"
    )
    assert "The command printed sluice-42." in done.stdout
