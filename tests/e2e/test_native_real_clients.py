"""Claude Code and Codex, the real CLIs from npm, through the gateway to native upstreams.

Each client runs headless against the gateway, which speaks natively to (a) the stand-in Anthropic
Messages API (`preset: anthropic`, base_url overridden) and (b) the stand-in Gemini API
(`preset: gemini`). The assertions look at both ends: what the client printed, and what the stand-in
received (its native shape and auth headers, not OpenAI's). Codex on Gemini also runs one shell tool
call round trip: the stand-in asks for `exec_command`, Codex runs it, and its output must come back
to Gemini as a `functionResponse`. The CLIs are installed from npm (Claude Code by support/npm_clients.py, Codex as in
tests/e2e/test_codex_client.py); the tests skip only when npm is missing.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from support.anthropic_upstream import PROVIDER_KEY, TEXT, AnthropicUpstream
from support.gateway import Gateway, start_gateway
from support.gemini_upstream import API_KEY, GeminiUpstream
from support.gemini_upstream import TEXT as GEMINI_TEXT
from support.npm_clients import claude_code
from test_codex_client import KEY as CODEX_KEY
from test_codex_client import codex_binary, run_codex

KEY = "sk-native-clients-key-7c1e"


def claude_binary() -> Path:
    """The pinned Claude Code from the shared npm cache (support/npm_clients.py)."""
    try:
        return claude_code()
    except FileNotFoundError as exc:  # npm itself is missing
        pytest.skip(str(exc))


class Env:
    def __init__(self, gateway: Gateway, claude: AnthropicUpstream, gemini: GeminiUpstream) -> None:
        self.gateway, self.claude, self.gemini = gateway, claude, gemini


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    claude, gemini = AnthropicUpstream(), GeminiUpstream()
    gateway = start_gateway(
        {
            "keys": [{"key": KEY, "name": "claude-code"}, {"key": CODEX_KEY, "name": "codex"}],
            "upstreams": {
                "claude": {"preset": "anthropic", "base_url": claude.root, "api_key": PROVIDER_KEY},
                "gem": {"preset": "gemini", "base_url": gemini.root, "api_key": API_KEY},
            },
            "models": {
                "on-claude": "claude/claude-sonnet-4-5",
                "on-gemini": "gem/gemini-2.5-flash",
            },
        }
    )
    try:
        yield Env(gateway, claude, gemini)
    finally:
        gateway.stop()
        claude.close()
        gemini.close()


def run_claude(gateway: Gateway, model: str, prompt: str) -> subprocess.CompletedProcess[str]:
    home = Path(tempfile.mkdtemp(prefix="cc-home-"))
    env = {
        **os.environ,
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": gateway.url,
        "ANTHROPIC_API_KEY": KEY,
        "ANTHROPIC_MODEL": model,
        "ANTHROPIC_SMALL_FAST_MODEL": model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "DISABLE_TELEMETRY": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    return subprocess.run(
        [str(claude_binary()), "-p", prompt, "--output-format", "json"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=home,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def codex(env: Env, model: str, prompt: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_codex(codex_binary(), env.gateway, prompt, *extra, "-m", model)


def gemini_calls(env: Env) -> list[Any]:
    return [r for r in env.gemini.received if ":" in r.path.rsplit("/", 1)[-1]]


def test_claude_code_answers_from_a_native_anthropic_upstream(env: Env) -> None:
    env.claude.received.clear()
    done = run_claude(env.gateway, "on-claude", "Say hi")
    assert done.returncode == 0, f"claude failed:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
    assert TEXT in done.stdout, done.stdout[-1500:]
    sent = [r for r in env.claude.received if r.body.get("model") == "claude-sonnet-4-5"]
    assert sent, "the Anthropic stand-in received no Messages request"
    first = sent[-1]
    assert first.headers["x-api-key"] == PROVIDER_KEY
    assert first.headers.get("anthropic-version")
    assert first.headers.get("anthropic-beta"), "Claude Code's anthropic-beta header was not passed on"
    assert "authorization" not in first.headers
    assert first.body["stream"] is True
    assert len(first.body.get("tools") or []) > 3, "Claude Code's tools did not reach the upstream"


def test_claude_code_answers_from_a_native_gemini_upstream(env: Env) -> None:
    env.gemini.received.clear()
    done = run_claude(env.gateway, "on-gemini", "Say hi")
    assert done.returncode == 0, f"claude failed:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
    assert GEMINI_TEXT in done.stdout, done.stdout[-1500:]
    calls = gemini_calls(env)
    assert calls, "the Gemini stand-in received no generateContent request"
    last = calls[-1]
    assert last.path.endswith("/models/gemini-2.5-flash:streamGenerateContent")
    assert last.headers.get("x-goog-api-key") == API_KEY
    assert "contents" in last.body and "messages" not in last.body
    assert last.body.get("systemInstruction"), "Claude Code's system prompt did not become systemInstruction"


def test_codex_answers_from_a_native_anthropic_upstream(env: Env) -> None:
    env.claude.received.clear()
    done = codex(env, "on-claude", "Say hi")
    assert done.returncode == 0, f"codex failed:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
    assert TEXT in done.stdout, done.stdout[-1500:]
    assert env.claude.received, "the Anthropic stand-in received nothing"
    sent = env.claude.received[-1]
    assert sent.headers["x-api-key"] == PROVIDER_KEY
    assert sent.body["model"] == "claude-sonnet-4-5"
    assert sent.body["messages"][-1]["role"] == "user"
    assert "input" not in sent.body, "the Responses body reached the upstream untranslated"


def test_codex_answers_from_a_native_gemini_upstream(env: Env) -> None:
    env.gemini.received.clear()
    done = codex(env, "on-gemini", "Say hi")
    assert done.returncode == 0, f"codex failed:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
    assert GEMINI_TEXT in done.stdout, done.stdout[-1500:]
    calls = gemini_calls(env)
    assert calls, "the Gemini stand-in received nothing"
    assert calls[-1].headers.get("x-goog-api-key") == API_KEY
    names = [
        d["name"] for t in calls[-1].body.get("tools") or [] for d in t.get("functionDeclarations") or []
    ]
    assert "exec_command" in names, f"Codex's shell tool did not reach Gemini; it got {names}"


def test_codex_runs_a_shell_tool_call_round_trip_on_a_native_gemini_upstream(env: Env) -> None:
    env.gemini.received.clear()
    env.gemini.scripted[:] = [
        [{"functionCall": {"name": "exec_command", "args": {"cmd": "echo sluice-$((6*7))"}}}],
        [{"text": "The command printed sluice-42."}],
    ]
    done = codex(env, "on-gemini", "Run the command", "--dangerously-bypass-approvals-and-sandbox")
    assert done.returncode == 0, f"codex failed:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
    assert "The command printed sluice-42." in done.stdout
    calls = gemini_calls(env)
    assert len(calls) >= 2, f"Codex sent {len(calls)} request(s); a tool round trip needs 2"
    contents = calls[1].body["contents"]
    asked = [
        p["functionCall"] for c in contents if c["role"] == "model" for p in c["parts"] if "functionCall" in p
    ]
    assert [a["name"] for a in asked] == ["exec_command"], contents
    answers = [p["functionResponse"] for c in contents for p in c["parts"] if "functionResponse" in p]
    assert answers and answers[0]["name"] == "exec_command", contents
    assert "sluice-42" in orjson.dumps(answers[0]["response"]).decode(), answers[0]
