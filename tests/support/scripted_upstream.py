"""A chat-only stand-in upstream whose answers a test writes as a Python function.

`support.upstream.Upstream` answers by fixed behaviours; agents (Claude Code) and reasoning models
need answers that depend on the conversation: call a tool first, check its result, then answer;
stream `reasoning_content` before the text; stop mid-stream without a finish reason. Here a test
sets `upstream.respond = fn`, where `fn(body) -> Reply` sees the chat request as received.

Helpers build the OpenAI shapes: `text_reply`, `tool_call_reply`, and `Reply.stream` /
`Reply.whole`. Like the other stand-in it runs in its own thread and loop on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

CREATED = 1_700_000_000


@dataclass
class Reply:
    """One answer: a status and JSON body, or a list of SSE `data:` payloads (dicts or "[DONE]").

    `abort_after` (streams) drops the connection after that many events; `content_type` lets a test
    send a stream with another type.
    """

    status: int = 200
    body: Any = None
    events: list[Any] | None = None
    abort_after: int | None = None

    @classmethod
    def whole(cls, body: Any, status: int = 200) -> Reply:
        return cls(status=status, body=body)

    @classmethod
    def stream(cls, events: list[Any], abort_after: int | None = None) -> Reply:
        return cls(events=events, abort_after=abort_after)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    json: Any


def _chunk(cid: str, model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def text_reply(
    body: dict[str, Any],
    text: str,
    *,
    reasoning: str | None = None,
    usage: bool = True,
    done: bool = True,
    finish: str | None = "stop",
) -> Reply:
    """A plain answer, streamed if the request asked (reasoning first, as DeepSeek streams it)."""
    model = str(body.get("model") or "m")
    cid = f"chatcmpl-{abs(hash(text)) % 10**8:08d}"
    include = bool((body.get("stream_options") or {}).get("include_usage"))
    if not body.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if reasoning is not None:
            message["reasoning_content"] = reasoning
        doc: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        }
        if usage:
            doc["usage"] = _usage(11, 7)
        return Reply.whole(doc)
    events: list[Any] = [_chunk(cid, model, {"role": "assistant", "content": ""}, None)]
    if reasoning is not None:
        half = len(reasoning) // 2
        events += [
            _chunk(cid, model, {"reasoning_content": reasoning[:half]}, None),
            _chunk(cid, model, {"reasoning_content": reasoning[half:]}, None),
        ]
    half = len(text) // 2
    events += [
        _chunk(cid, model, {"content": text[:half]}, None),
        _chunk(cid, model, {"content": text[half:]}, None),
    ]
    if finish is not None:
        events.append(_chunk(cid, model, {}, finish))
    if include and usage:
        usage_chunk = {"id": cid, "object": "chat.completion.chunk", "created": CREATED, "model": model}
        events.append({**usage_chunk, "choices": [], "usage": _usage(11, 7)})
    if done:
        events.append("[DONE]")
    return Reply.stream(events)


def tool_call_reply(
    body: dict[str, Any], name: str, arguments: dict[str, Any], call_id: str = "call_1"
) -> Reply:
    """An answer that asks for one tool call (arguments streamed in two pieces)."""
    model = str(body.get("model") or "m")
    cid = "chatcmpl-tool"
    raw = orjson.dumps(arguments).decode()
    if not body.get("stream"):
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": raw}}],
        }
        return Reply.whole(
            {
                "id": cid,
                "object": "chat.completion",
                "created": CREATED,
                "model": model,
                "choices": [
                    {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}
                ],
                "usage": _usage(20, 9),
            }
        )
    half = len(raw) // 2
    first = {
        "index": 0,
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": raw[:half]},
    }
    events: list[Any] = [
        _chunk(cid, model, {"role": "assistant", "content": None}, None),
        _chunk(cid, model, {"tool_calls": [first]}, None),
        _chunk(cid, model, {"tool_calls": [{"index": 0, "function": {"arguments": raw[half:]}}]}, None),
        _chunk(cid, model, {}, "tool_calls"),
    ]
    if (body.get("stream_options") or {}).get("include_usage"):
        usage_chunk = {"id": cid, "object": "chat.completion.chunk", "created": CREATED, "model": model}
        events.append({**usage_chunk, "choices": [], "usage": _usage(20, 9)})
    events.append("[DONE]")
    return Reply.stream(events)


@dataclass
class ScriptedUpstream:
    """The server; `respond` decides every answer. `.url` is the OpenAI base URL (with /v1)."""

    respond: Callable[[dict[str, Any]], Reply] = field(default=lambda body: text_reply(body, "hello"))
    received: list[Received] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._ids = itertools.count(1)
        self._thread = threading.Thread(target=self._run, name="scripted-upstream", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("scripted upstream did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def bodies(self) -> list[Any]:
        return [r.json for r in list(self.received)]

    def close(self) -> None:
        async def stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = orjson.loads(raw) if raw else {}
        self.received.append(Received(request.path, {k.lower(): v for k, v in request.headers.items()}, body))
        try:
            reply = self.respond(body)
        except Exception as exc:  # a test's assertion inside `respond`: answer 500 and keep the message
            return web.json_response(
                {"error": {"message": f"stand-in: {exc!r}", "type": "server_error"}}, status=500
            )
        if reply.events is None:
            return web.Response(
                status=reply.status, body=orjson.dumps(reply.body), content_type="application/json"
            )
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream", "cache-control": "no-cache"}
        )
        await response.prepare(request)
        for i, event in enumerate(reply.events):
            if reply.abort_after is not None and i >= reply.abort_after:
                if request.transport is not None:
                    request.transport.abort()
                return response
            payload = event.encode() if isinstance(event, str) else orjson.dumps(event)
            await response.write(b"data: " + payload + b"\n\n")
        await response.write_eof()
        return response
