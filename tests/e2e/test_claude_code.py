"""Claude Code itself (the real CLI from npm) against the gateway and a chat-only stand-in upstream.

Claude Code speaks only Anthropic's Messages API. Run headless (`claude -p ... --output-format
json`), it must work on any upstream the gateway routes to: with its default model, with a custom
model name, and through a round trip of its Bash tool. The stand-in answers like a reasoning model
(it streams `reasoning_content`) and asks for the tool call itself. Each test checks what the CLI
printed and what the upstream received; when a new CLI version sends something else, the
assertions say what changed.
"""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from metering_kit import LogTable, wait_until
from support.gateway import Gateway, start_gateway
from support.npm_clients import CLAUDE_CODE, claude_code
from support.scripted_upstream import Reply, ScriptedUpstream, text_reply, tool_call_reply

KEY = "sk-claude-code-client-key-1"
SERVED = "stand-in-chat-model"
DEFAULT_MODEL = "claude-opus-4-8"  # Claude Code 2.1.197's default
# The default, and the Haiku/Sonnet names this version uses for side tasks, all to the stand-in.
ROUTED = (
    DEFAULT_MODEL,
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
    "claude-haiku-4-5-20251001",
    "claude-sonnet-5",
)
CUSTOM_MODEL = "house-coder"
BASH_TRIGGER = "run the marker command"


class Env:
    def __init__(self, gateway: Gateway, upstream: ScriptedUpstream, log: LogTable, cli: Path) -> None:
        self.gateway, self.upstream, self.log, self.cli = gateway, upstream, log, cli

    def run(self, prompt: str, *args: str, **env: str) -> dict[str, Any]:
        """Run the CLI headless in a scratch HOME; its JSON result."""
        home = tempfile.mkdtemp(prefix="sg-claude-home-")
        done = subprocess.run(
            [str(self.cli), "-p", prompt, "--output-format", "json", *args],
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": home,
                "ANTHROPIC_BASE_URL": self.gateway.url,
                "ANTHROPIC_API_KEY": KEY,
                "DISABLE_TELEMETRY": "1",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "DISABLE_AUTOUPDATER": "1",
                **env,
            },
            cwd=home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.stdout.strip(), (
            f"Claude Code printed nothing (exit {done.returncode}): {done.stderr[-2000:]}"
        )
        result: dict[str, Any] = orjson.loads(done.stdout.strip().splitlines()[-1])
        assert result.get("type") == "result", result
        assert not result.get("is_error"), (
            f"Claude Code reported an error: {result.get('result')!r} (status {result.get('api_error_status')}); "
            f"the upstream received {len(self.upstream.received)} request(s); gateway log:\n{self.gateway.logs()[-3000:]}"
        )
        return result

    def models_requested(self, since: float) -> set[str]:
        """The public model names the CLI asked the gateway for since then, from the request log."""
        rows = self.log.rows("endpoint = ? AND ts >= ?", "/v1/messages", since)
        return {r["model_requested"] for r in rows}


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    try:
        cli = claude_code()
    except FileNotFoundError as exc:  # no npm on this machine: nothing to run the real client with
        pytest.skip(str(exc))
    up = ScriptedUpstream()
    database = f"sqlite:///{Path(tempfile.mkdtemp(prefix='sg-claude-')) / 'log.db'}"
    gateway = start_gateway(
        {
            "database": database,
            "keys": [{"key": KEY, "name": "claude-code"}],
            "upstreams": {"chat": {"base_url": up.url, "api_key": "sk-provider-secret"}},
            "models": {name: f"chat/{SERVED}" for name in (*ROUTED, CUSTOM_MODEL)},
            "metering": {"flush_interval_s": 0.2},
        }
    )
    try:
        yield Env(gateway, up, LogTable(database), cli)
    finally:
        gateway.stop()
        up.close()


@pytest.fixture(autouse=True)
def started(env: Env) -> float:
    """When the test began: the request log is read from then on."""
    env.upstream.received.clear()
    return time.time()


def user_text(body: dict[str, Any]) -> str:
    texts = []
    for message in body["messages"]:
        if message["role"] == "user":
            content = message["content"]
            texts.append(
                content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)
            )
    return "\n".join(texts)


def reasoning_answer(text: str) -> Any:
    """A stand-in that thinks (reasoning_content, as DeepSeek or Qwen stream it) and then says `text`."""
    return lambda body: text_reply(body, text, reasoning="The user greets me; I greet back.")


def assert_claude_code_shape(body: dict[str, Any]) -> None:
    """What Claude Code 2.1.197 sends, as the upstream sees it after translation."""
    roles = [m["role"] for m in body["messages"]]
    assert body["model"] == SERVED
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert roles[0] == "system", f"the system prompt no longer comes first: roles {roles}"
    assert "system" in roles[1:], (
        f"Claude Code no longer sends a mid-conversation system message (roles {roles}); "
        "the gateway maps it in place, and tests/providers/test_anthropic_agents.py describes it"
    )
    tools = {t["function"]["name"] for t in body.get("tools", [])}
    assert "Bash" in tools, f"Claude Code's tools changed: {sorted(tools)}"
    assert body.get("reasoning_effort") == "high", (
        f"Claude Code's thinking/effort changed: reasoning_effort {body.get('reasoning_effort')!r}"
    )


def test_claude_code_with_its_default_model(env: Env, started: float) -> None:
    env.upstream.respond = reasoning_answer("Hello from a chat-only upstream.")
    result = env.run("Say hi")
    assert result["result"] == "Hello from a chat-only upstream."
    assert result["stop_reason"] == "end_turn"
    assert result["usage"]["output_tokens"] == 7 and result["usage"]["input_tokens"] == 11
    assert len(env.upstream.received) >= 1
    body = env.upstream.bodies[0]
    assert_claude_code_shape(body)
    assert "Say hi" in user_text(body)
    requested = wait_until(lambda: env.models_requested(started), timeout=10)
    assert requested and requested <= set(ROUTED), (
        f"Claude Code {CLAUDE_CODE[1]} asked for models {sorted(requested)}; routed: {sorted(ROUTED)}"
    )
    assert DEFAULT_MODEL in requested, f"the default model is no longer {DEFAULT_MODEL}: {sorted(requested)}"


def test_claude_code_with_a_custom_model_name(env: Env, started: float) -> None:
    env.upstream.respond = reasoning_answer("Custom model here.")
    result = env.run("Say hi", ANTHROPIC_MODEL=CUSTOM_MODEL)
    assert result["result"] == "Custom model here."
    assert CUSTOM_MODEL in result["modelUsage"], f"the CLI accounted usage under {list(result['modelUsage'])}"
    assert_claude_code_shape(env.upstream.bodies[0])
    requested = wait_until(lambda: env.models_requested(started), timeout=10)
    assert requested == {CUSTOM_MODEL}, (
        f"with ANTHROPIC_MODEL={CUSTOM_MODEL} the CLI asked for {sorted(requested)}"
    )


def test_claude_code_runs_its_bash_tool_and_the_result_comes_back(env: Env) -> None:
    marker = f"sluicegate-{random.randint(10_000, 99_999)}"
    seen_results: list[str] = []

    def respond(body: dict[str, Any]) -> Reply:
        results = [m for m in body["messages"] if m["role"] == "tool"]
        if results:
            seen_results.append(str(results[-1]["content"]))
            ok = marker in seen_results[-1]
            return text_reply(body, f"The command printed {marker}." if ok else "The marker is missing.")
        if BASH_TRIGGER in user_text(body):
            return tool_call_reply(
                body,
                "Bash",
                {"command": f"echo {marker}", "description": "Print the marker"},
                call_id="call_marker",
            )
        return text_reply(body, "nothing to do")

    env.upstream.respond = respond
    result = env.run(f"Please {BASH_TRIGGER}.", "--allowedTools", "Bash")
    assert result["result"] == f"The command printed {marker}.", (
        f"the tool_result the upstream received: {seen_results!r}"
    )
    assert result["num_turns"] == 2
    assert seen_results and marker in seen_results[-1]
    last = env.upstream.bodies[-1]["messages"]
    call = next(m for m in last if m["role"] == "assistant" and m.get("tool_calls"))
    assert call["tool_calls"][0]["id"] == "call_marker"
    assert orjson.loads(call["tool_calls"][0]["function"]["arguments"])["command"] == f"echo {marker}"
    tool = next(m for m in last if m["role"] == "tool")
    assert tool["tool_call_id"] == "call_marker"
    assert "reasoning_content" not in str(last), "thinking sent back by the CLI is dropped, not forwarded"
