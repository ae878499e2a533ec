"""A scripted stand-in upstream for agent clients: answers that call tools, and a native Responses API.

The general stand-in (support/upstream.py) echoes; agents need more: the first turn answers with a
tool call, the next (once the tool's output is in the conversation) with text. Each chat request is
answered by the next `Reply` in `.replies` (text when the queue is empty). With `native_responses` it
also serves `POST /v1/responses` itself (a fixed answer with known usage), like OpenAI, so tests can
tell a passed-through call from a translated one. It runs on 127.0.0.1 in a thread with its own loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

NATIVE_TEXT = "native answer"
NATIVE_USAGE = {
    "input_tokens": 21,
    "input_tokens_details": {"cached_tokens": 5, "cache_write_tokens": 0},
    "output_tokens": 9,
    "output_tokens_details": {"reasoning_tokens": 4},
    "total_tokens": 30,
}
# Tools as a Responses client declares them: a function tool and a custom (free-form) one.
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}
PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Apply a patch",
    "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
}
CHAT_USAGE = {"prompt_tokens": 17, "completion_tokens": 6, "total_tokens": 23}


@dataclass
class Reply:
    """One answer: `text`, or a tool call (`tool` named, with `arguments` as a JSON string)."""

    text: str = ""
    tool: str | None = None
    arguments: str = "{}"
    call_id: str = "call_standin_1"
    reasoning: str = ""


@dataclass
class Seen:
    path: str
    json: Any
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def _chunk(delta: dict[str, Any] | None, finish: str | None = None, usage: Any = None) -> bytes:
    doc: dict[str, Any] = {
        "id": "chatcmpl-agent",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
    }
    doc["choices"] = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    if usage is not None:
        doc["usage"] = usage
    return b"data: " + orjson.dumps(doc) + b"\n\n"


class AgentUpstream:
    def __init__(self, *, native_responses: bool = False) -> None:
        self.native_responses = native_responses
        # End the next stream cleanly but short: a native one before `response.completed`, a chat one
        # with neither a finish reason nor `[DONE]` (as llama.cpp's server does when it fails).
        self.stop_short = False
        self.replies: list[Reply] = []
        # Responses a native stand-in stored (`store` not false), by id, as OpenAI's account keeps them.
        self.stored: dict[str, dict[str, Any]] = {}
        self.requests: list[Seen] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, name="agent-upstream", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("agent stand-in did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def chat_requests(self) -> list[Any]:
        return [r.json for r in self.requests if r.path.endswith("/chat/completions")]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_route("*", "/v1/responses/{id}", self._stored)
        app.router.add_route("*", "/v1/responses/{id}/{sub}", self._stored)
        app.router.add_route("*", "/{tail:.*}", self._other)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def close(self) -> None:
        async def stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _record(self, request: web.Request) -> Any:
        body = await request.read()
        doc = orjson.loads(body) if body else None
        self.requests.append(
            Seen(request.path, doc, {k.lower(): v for k, v in request.headers.items()}, body)
        )
        return doc

    async def _stored(self, request: web.Request) -> web.Response:
        """GET/DELETE a stored response, its input items, or cancel it: what any caller may do upstream."""
        await self._record(request)
        found = self.stored.get(request.match_info["id"]) if self.native_responses else None
        sub = request.match_info.get("sub", "")
        if found is None or sub not in ("", "input_items", "cancel"):
            return await self._other(request)
        if sub == "input_items":
            return web.json_response({"object": "list", "data": [], "has_more": False})
        if request.method == "DELETE":
            del self.stored[found["id"]]
            return web.json_response({"id": found["id"], "object": "response", "deleted": True})
        return web.json_response(found)

    async def _other(self, request: web.Request) -> web.Response:
        await self._record(request)
        error = {
            "message": f"no route {request.path}",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
        return web.json_response({"error": error}, status=404)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        reply = self.replies.pop(0) if self.replies else Reply(text="Hello from the stand-in.")
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.reasoning:
            message["reasoning_content"] = reply.reasoning
        finish = "stop"
        if reply.tool:
            call = {
                "id": reply.call_id,
                "type": "function",
                "function": {"name": reply.tool, "arguments": reply.arguments},
            }
            message["tool_calls"] = [call]
            finish = "tool_calls"
        if not body.get("stream"):
            answer = {
                "id": "chatcmpl-agent",
                "object": "chat.completion",
                "created": 1,
                "model": body.get("model"),
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": CHAT_USAGE,
            }
            return web.json_response(answer)
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(_chunk({"role": "assistant", "content": ""}))
        if self.stop_short:
            self.stop_short = False
            await resp.write(_chunk({"content": reply.text[:8]}))
            await resp.write_eof()
            return resp
        if reply.reasoning:
            await resp.write(_chunk({"reasoning_content": reply.reasoning}))
        for piece in [reply.text[i : i + 8] for i in range(0, len(reply.text), 8)]:
            await resp.write(_chunk({"content": piece}))
        if reply.tool:
            first = {
                "index": 0,
                "id": reply.call_id,
                "type": "function",
                "function": {"name": reply.tool, "arguments": ""},
            }
            await resp.write(_chunk({"tool_calls": [first]}))
            half = len(reply.arguments) // 2
            for part in (reply.arguments[:half], reply.arguments[half:]):
                await resp.write(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}))
        await resp.write(_chunk({}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            await resp.write(_chunk(None, usage=CHAT_USAGE))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        if not self.native_responses:
            return await self._other(request)
        item = {
            "type": "message",
            "id": "msg_native",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": NATIVE_TEXT, "annotations": [], "logprobs": []}],
        }
        stored = body.get("store") is not False
        response = {
            "id": f"resp_native_{len(self.stored) + 2}" if stored else "resp_native_1",
            "object": "response",
            "created_at": 1,
            "status": "completed",
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "model": body.get("model"),
            "output": [item],
            "parallel_tool_calls": True,
            "temperature": 1.0,
            "top_p": 1.0,
            "tool_choice": "auto",
            "tools": [],
            "metadata": {},
            "usage": NATIVE_USAGE,
        }
        if stored:
            self.stored[response["id"]] = response
        if not body.get("stream"):
            return web.json_response(response)
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        created = {**response, "status": "in_progress", "output": []}
        del created["usage"]
        events = [
            {"type": "response.created", "response": created},
            {
                "type": "response.output_text.delta",
                "item_id": "msg_native",
                "output_index": 0,
                "content_index": 0,
                "delta": NATIVE_TEXT,
                "logprobs": [],
            },
            {"type": "response.completed", "response": response},
        ]
        if self.stop_short:
            self.stop_short = False
            events = events[:-1]
        for i, ev in enumerate(events):
            ev["sequence_number"] = i
            await resp.write(b"event: " + ev["type"].encode() + b"\ndata: " + orjson.dumps(ev) + b"\n\n")
        await resp.write_eof()
        return resp
