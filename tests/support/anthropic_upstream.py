"""A stand-in Anthropic Messages API on a real loopback port, written from Anthropic's API reference.

It checks what it receives as Anthropic does: `x-api-key` (401 `authentication_error` otherwise),
`anthropic-version` (400 without it), and the body against the published `CreateMessageParams`
schema (`BetaCreateMessageParams` when an `anthropic-beta` header asks for betas, as Claude Code does) (400 `invalid_request_error` naming the first violation). It answers in the native shapes:
a `Message`, or the event stream (message_start, content_block_start/delta/stop, message_delta,
message_stop), with thinking blocks and their signatures, tool use, and prompt-cache usage.

What it answers is a function of the request, so a test can say what the client must see:
- a request with `thinking` gets a thinking block first (signed `SIGNATURE`);
- a request with tools whose last user turn mentions "weather" gets a `tool_use` of the first tool;
- any `cache_control` in the request reports `CACHE_WRITE` cache-creation and `CACHE_READ` cache-read
  tokens (input_tokens stays `INPUT`); otherwise no cache figures beyond zeros;
- the model name picks an error: `overloaded` → 529, `low-balance` → 400 "credit balance is too low",
  `stream-error` → a stream that fails in band with an `error` event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from support.anthropic_spec import anthropic_spec
from support.standin import StandIn

PROVIDER_KEY = "sk-ant-provider-secret"
SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
TEXT = "Hello from Claude."
THINKING = "The user greets me; answer briefly."
INPUT, OUTPUT, CACHE_WRITE, CACHE_READ = 21, 7, 1500, 3000
COUNTED = 4321  # what count_tokens answers: no tokenizer's estimate would land on it


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes


def _error(status: int, type_: str, message: str) -> web.Response:
    body = {"type": "error", "error": {"type": type_, "message": message}, "request_id": "req_standin"}
    return web.json_response(body, status=status)


def _uses_cache(body: Any) -> bool:
    if isinstance(body, dict):
        return "cache_control" in body or any(_uses_cache(v) for v in body.values())
    if isinstance(body, list):
        return any(_uses_cache(v) for v in body)
    return False


def _last_user_text(body: dict[str, Any]) -> str:
    for msg in reversed(body.get("messages") or []):
        if msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, str):
                return content
            return " ".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


def answer_blocks(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    blocks: list[dict[str, Any]] = []
    if body.get("thinking", {}).get("type") == "enabled":
        blocks.append({"type": "thinking", "thinking": THINKING, "signature": SIGNATURE})
    tools = body.get("tools") or []
    if tools and "weather" in _last_user_text(body):
        blocks.append(
            {
                "type": "tool_use",
                "id": "toolu_01A",
                "name": tools[0]["name"],
                "input": {"city": "Paris"},
                "caller": {"type": "direct"},
            }
        )
        return blocks, "tool_use"
    blocks.append({"type": "text", "text": TEXT, "citations": None})
    return blocks, "end_turn"


def usage(body: dict[str, Any]) -> dict[str, Any]:
    cached = _uses_cache(body)
    write = CACHE_WRITE if cached else 0
    return {
        "input_tokens": INPUT,
        "output_tokens": OUTPUT,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": CACHE_READ if cached else 0,
        "cache_creation": {"ephemeral_5m_input_tokens": write, "ephemeral_1h_input_tokens": 0},
        "server_tool_use": None,
        "output_tokens_details": None,
        "inference_geo": None,
        "service_tier": "standard",
    }


def _sse(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def stream_events(body: dict[str, Any], fail: bool = False) -> list[bytes]:
    blocks, stop = answer_blocks(body)
    u = usage(body)
    start_usage = {**u, "output_tokens": 1}
    msg = {
        "id": "msg_01standin",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "stop_details": None,
        "container": None,
        "usage": start_usage,
    }
    out = [_sse("message_start", {"type": "message_start", "message": msg}), _sse("ping", {"type": "ping"})]
    for i, block in enumerate(blocks):
        if block["type"] == "thinking":
            out.append(
                _sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                    },
                )
            )
            out.append(
                _sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {"type": "thinking_delta", "thinking": block["thinking"]},
                    },
                )
            )
            out.append(
                _sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {"type": "signature_delta", "signature": block["signature"]},
                    },
                )
            )
        elif block["type"] == "tool_use":
            out.append(
                _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": i, "content_block": {**block, "input": {}}},
                )
            )
            for part in ('{"city": ', '"Paris"}'):
                out.append(
                    _sse(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "input_json_delta", "partial_json": part},
                        },
                    )
                )
        else:
            out.append(
                _sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "text", "text": "", "citations": None},
                    },
                )
            )
            for part in ("Hello ", "from Claude."):
                out.append(
                    _sse(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "text_delta", "text": part},
                        },
                    )
                )
            if fail:
                out.append(
                    _sse(
                        "error",
                        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                    )
                )
                return out
        out.append(_sse("content_block_stop", {"type": "content_block_stop", "index": i}))
    out.append(
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "stop_details": None,
                    "container": None,
                },
                "usage": {
                    "output_tokens": OUTPUT,
                    "input_tokens": None,
                    "cache_creation_input_tokens": None,
                    "cache_read_input_tokens": None,
                    "server_tool_use": None,
                    "output_tokens_details": None,
                },
            },
        )
    )
    out.append(_sse("message_stop", {"type": "message_stop"}))
    return out


class AnthropicUpstream(StandIn):
    """The stand-in, served from a background thread (sync and async tests alike). `.received` lists requests."""

    name = "AnthropicUpstream"

    def __init__(self, key: str = PROVIDER_KEY) -> None:
        self.key = key
        super().__init__()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)

    async def _checked(self, request: web.Request, schema: str) -> dict[str, Any] | web.Response:
        """The request's body once it passes Anthropic's checks (recorded either way), or the error."""
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _error(400, "invalid_request_error", "body is not JSON")
        self.received.append(Received({k.lower(): v for k, v in request.headers.items()}, body, raw))
        if request.headers.get("x-api-key") != self.key:
            return _error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return _error(400, "invalid_request_error", "anthropic-version: header is required")
        errors = anthropic_spec().errors(schema, body)
        if errors:
            return _error(
                400, "invalid_request_error", f"{'.'.join(map(str, errors[0].path))}: {errors[0].message}"
            )
        return body

    async def _count_tokens(self, request: web.Request) -> web.Response:
        """`POST /v1/messages/count_tokens`: checked as Anthropic does, answered with `COUNTED`."""
        checked = await self._checked(request, "CountMessageTokensParams")
        if isinstance(checked, web.Response):
            return checked
        return web.json_response({"input_tokens": COUNTED})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        # Beta fields (context_management, ...) are accepted only when a beta is asked for, as Anthropic does.
        schema = "BetaCreateMessageParams" if request.headers.get("anthropic-beta") else "CreateMessageParams"
        checked = await self._checked(request, schema)
        if isinstance(checked, web.Response):
            return checked
        body = checked
        model = body["model"]
        if "overloaded" in model:
            return _error(529, "overloaded_error", "Overloaded")
        if "low-balance" in model:
            return _error(
                400, "invalid_request_error", "Your credit balance is too low to access the Anthropic API."
            )
        if body.get("stream"):
            resp = web.StreamResponse(
                headers={"content-type": "text/event-stream", "request-id": "req_standin"}
            )
            await resp.prepare(request)
            for event in stream_events(body, fail="stream-error" in model):
                await resp.write(event)
            await resp.write_eof()
            return resp
        blocks, stop = answer_blocks(body)
        message = {
            "id": "msg_01standin",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": blocks,
            "stop_reason": stop,
            "stop_sequence": None,
            "stop_details": None,
            "container": None,
            "usage": usage(body),
        }
        return web.json_response(message, headers={"request-id": "req_standin"})
