"""A stand-in OpenAI-compatible upstream on a real loopback port.

It runs an aiohttp server in a background thread with its own event loop, so the same object
serves sync tests (the official `openai` SDK) and async tests (aiohttp, httpx) alike: nothing
the test does on its own loop can stall the upstream, and vice versa.

Answers are deterministic functions of the request, so a test can say exactly what the client
should see. Behaviours are chosen per test (`upstream.behaviour = "slow_stream delay=0.2"`), for
the next few requests (`upstream.script("fail", "ok")`), per request with the header
`x-test-behaviour` (only if the gateway forwards it; Sluicegate does not), or per route with a model
name `behaviour=<kind>,<key=value>...` (a gateway route `up/behaviour=hang` makes that channel hang
while the others work: failover tests with one stand-in). Precedence: header, model, script,
`.behaviour`. A behaviour is written as a kind followed by `key=value` options:

    ok                          normal answer
    slow delay=S                wait S seconds before sending headers
    slow_stream delay=S         stream chunks S seconds apart (non-stream: like slow)
    fail                        500 with an OpenAI error body
    status 429                  that status with a fitting OpenAI error body (429 adds Retry-After: 2)
    refuse                      close the connection without any response
    hang                        never answer (until the client goes away or the upstream closes)
    cut_stream after=K          send K chunks (role chunk included) then drop the connection
    no_usage                    never report usage (like llama.cpp)
    no_done                     end the stream cleanly but without `data: [DONE]` (some providers do)
    endless                     stream content chunks without end (until the client goes away);
                                `delay=S` between chunks (default 0: as fast as it can)
    short_body                  a whole JSON answer whose Content-Length promises more bytes than
                                are sent, then the connection closes (a body cut in transit)

The stand-in ignores `max_tokens`, as a careless upstream does: an answer has `chunks` content chunks
(and reports `chunks` completion tokens) whatever the request asked. A 200 `text/html` page on a JSON
endpoint is `status 200 html=1`.

Options valid with any kind: `chunks=N` (content chunks in a stream, default 4),
`no_request_id=1` (omit the x-request-id header), `retry_after=S` (for `status`),
`reject_key=K` (a request carrying provider key K, as a Bearer token, `api-key` or `x-api-key`,
gets 401 `invalid_api_key`, like a provider refusing a revoked key; other keys get `kind`).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import itertools
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

EMBEDDING_DIM = 8
DEFAULT_CHUNKS = 4
# A model named "behaviour=<kind>,<key=value>,..." chooses the behaviour of that request, so a gateway
# route ("flaky: up/behaviour=fail") can make one channel fail while others on the same stand-in work.
MODEL_BEHAVIOUR_PREFIX = "behaviour="
CREATED = 1_700_000_000

ERROR_BODIES: dict[int, dict[str, Any]] = {
    400: {
        "message": "Invalid value for 'messages': expected an array.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "invalid_value",
    },
    401: {
        "message": "Incorrect API key provided: sk-upst****cret.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    },
    403: {
        "message": "You are not allowed to sample from this model.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_allowed",
    },
    404: {
        "message": "The model does not exist.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    },
    429: {
        "message": "Rate limit reached for requests. Please try again in 2s.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    },
    500: {
        "message": "The server had an error while processing your request.",
        "type": "server_error",
        "param": None,
        "code": None,
    },
    503: {
        "message": "The engine is currently overloaded, please try again later.",
        "type": "server_error",
        "param": None,
        "code": None,
    },
}


@dataclass(frozen=True)
class Behaviour:
    """How the upstream answers one request."""

    kind: str = "ok"
    delay: float = 0.5
    status: int = 500
    after: int = 2
    chunks: int = DEFAULT_CHUNKS
    no_request_id: bool = False
    retry_after: str = "2"
    stall_at: int = -1
    stall: float = 0.0
    coalesce: bool = False
    gzip: bool = False
    html: bool = False
    fragment: bool = False
    comments: bool = False
    reject_key: str | None = None

    KINDS = (
        "ok",
        "slow",
        "slow_stream",
        "fail",
        "status",
        "refuse",
        "hang",
        "cut_stream",
        "no_usage",
        "no_done",
        "endless",
        "short_body",
    )

    @classmethod
    def parse(cls, text: str | Behaviour) -> Behaviour:
        """Parse `"kind [N] key=value ..."`; a Behaviour passes through unchanged."""
        if isinstance(text, Behaviour):
            return text
        words = text.split()
        if not words:
            return cls()
        kind, options = words[0], words[1:]
        if kind not in cls.KINDS:
            raise ValueError(f"unknown upstream behaviour {kind!r}; known: {cls.KINDS}")
        values: dict[str, Any] = {"kind": kind}
        for word in options:
            if "=" not in word:
                if kind == "status":
                    values["status"] = int(word)
                    continue
                raise ValueError(f"behaviour option {word!r} is not key=value")
            key, value = word.split("=", 1)
            if key in ("delay", "stall"):
                values[key] = float(value)
            elif key in ("status", "after", "chunks", "stall_at"):
                values[key] = int(value)
            elif key in ("no_request_id", "coalesce", "gzip", "html", "fragment", "comments"):
                values[key] = value not in ("0", "false", "")
            elif key in ("retry_after", "reject_key"):
                values[key] = value
            else:
                raise ValueError(f"unknown behaviour option {key!r}")
        if kind == "fail":
            values["status"] = 500
        if kind == "endless" and "delay" not in values:
            values["delay"] = 0.0
        return cls(**values)


@dataclass
class RecordedRequest:
    """One request as the upstream received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    json: Any = None  # parsed JSON body, or None
    form: dict[str, Any] = field(default_factory=dict)  # multipart fields; files as {filename, size, sha256}
    behaviour: str = "ok"
    received_at: float = 0.0
    completed: bool = False
    cancelled: bool = False
    cancelled_at: float | None = None  # time.monotonic() when the client's going away was seen
    response_status: int | None = None  # what the upstream answered (None if it never did)
    response_headers: dict[str, str] = field(default_factory=dict)
    sent_events: list[bytes] = field(default_factory=list)  # SSE events written, in order

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    @property
    def model(self) -> Any:
        if isinstance(self.json, dict):
            return self.json.get("model")
        return self.form.get("model")


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the last user message (string content or text parts)."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def reply_pieces(body: dict[str, Any], chunks: int = DEFAULT_CHUNKS) -> list[str]:
    """The content pieces the upstream streams for a chat request; joined they are the
    non-stream reply when `chunks` is the default."""
    pieces = [f"Echo: {last_user_text(body)}"]
    pieces += [f" #{i}" for i in range(1, max(chunks, 1))]
    return pieces


def reply_text(body: dict[str, Any]) -> str:
    return "".join(reply_pieces(body))


def count_prompt_tokens(body: dict[str, Any]) -> int:
    words = 0
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            words += len(content.split())
        elif isinstance(content, list):
            words += sum(len(p.get("text", "").split()) for p in content if isinstance(p, dict))
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        words += len(prompt.split())
    elif isinstance(prompt, list):
        words += sum(len(str(p).split()) for p in prompt)
    return words + 3


def embedding_vector(text: str, index: int) -> list[float]:
    digest = hashlib.sha256(f"{index}:{text}".encode()).digest()
    return [round((b - 128) / 128, 6) for b in digest[:EMBEDDING_DIM]]


class Upstream:
    """A stand-in upstream on 127.0.0.1, served from a background thread.

    `.url` is the OpenAI base URL ("http://127.0.0.1:PORT/v1"), `.root` the server root (for the
    Azure preset). `.requests` lists what arrived, `.cancelled` counts requests whose client went
    away before the response was complete.
    """

    def __init__(self, *, models: list[str] | None = None) -> None:
        self.behaviour: str | Behaviour = "ok"
        self.models: list[str] = list(models or ["gpt-4o-mini", "real-model-name"])
        self.requests: list[RecordedRequest] = []
        self._script: list[str | Behaviour] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._cancelled = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._closing: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, name="stand-in-upstream", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("stand-in upstream did not start within 10 s")
        if self._startup_error is not None:
            raise RuntimeError("stand-in upstream failed to start") from self._startup_error

    # -- public API ---------------------------------------------------------------------------

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.root}/v1"

    @property
    def cancelled(self) -> int:
        with self._lock:
            return self._cancelled

    @property
    def authorizations(self) -> list[str | None]:
        """The Authorization header of every request, in arrival order."""
        return [r.authorization for r in list(self.requests)]

    @property
    def last(self) -> RecordedRequest:
        assert self.requests, "the upstream received no request"
        return self.requests[-1]

    def script(self, *behaviours: str | Behaviour) -> None:
        """Answer the next requests with these behaviours, in order, then fall back to `.behaviour`."""
        for b in behaviours:
            Behaviour.parse(b)  # fail early on a typo
        with self._lock:
            self._script = list(behaviours)

    def reset(self) -> None:
        """Forget requests, scripts and counters; back to `ok` (for upstreams shared by tests)."""
        with self._lock:
            self.behaviour = "ok"
            self._script = []
            self._cancelled = 0
            self.requests.clear()

    def wait_for(self, predicate: Any, timeout: float = 5.0, interval: float = 0.02) -> bool:
        """Poll `predicate()` until true or `timeout` seconds pass; returns its last value."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return bool(predicate())
            time.sleep(interval)

    async def wait_for_async(self, predicate: Any, timeout: float = 5.0, interval: float = 0.02) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return bool(predicate())
            await asyncio.sleep(interval)

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            future.result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- server lifecycle ---------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as exc:  # reported to the constructor
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _start(self) -> None:
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_post("/v1/images/generations", self._images)
        app.router.add_post("/v1/moderations", self._moderations)
        # Azure OpenAI: /openai/deployments/{deployment}/...?api-version=...
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._chat)
        app.router.add_post("/openai/deployments/{deployment}/completions", self._completions)
        app.router.add_post("/openai/deployments/{deployment}/embeddings", self._embeddings)
        app.router.add_route("*", "/{tail:.*}", self._catch_all)
        # handler_cancellation: a client that goes away cancels the handler, which is how we see it.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        assert self._closing is not None
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- request bookkeeping -----------------------------------------------------------------

    def _choose(self, request: web.Request, model: Any = None) -> Behaviour:
        header = request.headers.get("x-test-behaviour")
        if header:
            return Behaviour.parse(header)
        if isinstance(model, str) and model.startswith(MODEL_BEHAVIOUR_PREFIX):
            return Behaviour.parse(model[len(MODEL_BEHAVIOUR_PREFIX) :].replace(",", " "))
        with self._lock:
            chosen = self._script.pop(0) if self._script else self.behaviour
        return Behaviour.parse(chosen)

    async def _record(self, request: web.Request) -> tuple[RecordedRequest, Behaviour]:
        body = await request.read()
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            received_at=time.monotonic(),
        )
        if body and request.content_type == "application/json":
            try:
                record.json = orjson.loads(body)
            except orjson.JSONDecodeError:
                record.json = None
        model = record.json.get("model") if isinstance(record.json, dict) else None
        behaviour = self._choose(request, model or request.match_info.get("deployment"))
        record.behaviour = behaviour.kind
        self.requests.append(record)
        return record, behaviour

    @staticmethod
    def _finish(record: RecordedRequest, response: web.StreamResponse) -> None:
        record.response_status = response.status
        record.response_headers = {k.lower(): v for k, v in response.headers.items()}
        record.completed = True

    def _mark_cancelled(self, record: RecordedRequest) -> None:
        if record.completed or record.cancelled:
            return
        record.cancelled = True
        record.cancelled_at = time.monotonic()
        with self._lock:
            # A request from before the last reset (an earlier test's, which a client may abandon
            # late: pyreqwest closes such a connection only at its read timeout) is not this test's.
            if any(r is record for r in self.requests):
                self._cancelled += 1

    def _headers(self, behaviour: Behaviour, content_type: str = "application/json") -> dict[str, str]:
        headers = {
            "content-type": content_type,
            "openai-processing-ms": "42",
            "openai-version": "2020-10-01",
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-limit-tokens": "2000000",
            "x-ratelimit-remaining-tokens": "1999000",
            "x-ratelimit-reset-requests": "6ms",
        }
        if not behaviour.no_request_id:
            headers["x-request-id"] = f"req_upstream_{next(self._ids):06d}"
        return headers

    async def _serve(self, request: web.Request, answer: Any) -> web.StreamResponse:
        """Run one endpoint: record it, apply the behaviour, and call `answer(request, record, b)`
        for the normal response. Detects the client going away (handler cancelled or write failed)."""
        record, behaviour = await self._record(request)
        try:
            response = await self._apply(request, record, behaviour, answer)
            self._finish(record, response)
            return response
        except _Dropped:
            raise
        except (asyncio.CancelledError, ConnectionResetError):
            self._mark_cancelled(record)
            raise

    async def _apply(
        self, request: web.Request, record: RecordedRequest, behaviour: Behaviour, answer: Any
    ) -> web.StreamResponse:
        assert self._closing is not None
        kind = behaviour.kind
        if behaviour.reject_key is not None and behaviour.reject_key in _presented_keys(request):
            return self._error_response(Behaviour(kind="status", status=401))
        if kind == "refuse":
            transport = request.transport
            if transport is not None:
                transport.abort()
            # Nothing can be sent any more; ending the handler this way makes aiohttp write nothing.
            raise _Dropped()
        if kind == "hang":
            await self._closing.wait()  # cancelled if the client goes away first
            raise _Dropped()
        if kind in ("fail", "status"):
            return self._error_response(behaviour)
        if kind == "slow" or (kind == "slow_stream" and not _wants_stream(record)):
            await asyncio.sleep(behaviour.delay)
        if kind == "short_body":
            return await self._short_body(request, record, await answer(request, record, behaviour))
        return await answer(request, record, behaviour)

    async def _short_body(
        self, request: web.Request, record: RecordedRequest, full: web.StreamResponse
    ) -> web.StreamResponse:
        """Send the head of `full` with a Content-Length 100 bytes beyond its body, the body, then close."""
        transport = request.transport
        assert transport is not None and isinstance(full, web.Response) and isinstance(full.body, bytes)
        body = full.body
        headers = {k.lower(): v for k, v in full.headers.items() if k.lower() != "content-length"}
        headers["content-length"] = str(len(body) + 100)
        record.response_status = full.status
        record.response_headers = dict(headers)
        head = (
            f"HTTP/1.1 {full.status} OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        )
        transport.write(head.encode("latin-1") + body)
        record.completed = True
        transport.close()
        raise _Dropped()

    def _json(self, payload: Any, behaviour: Behaviour) -> web.Response:
        headers = self._headers(behaviour)
        body = orjson.dumps(payload)
        if behaviour.gzip:
            body = gzip.compress(body)
            headers["content-encoding"] = "gzip"
        return web.Response(body=body, headers=headers)

    def _error_response(self, behaviour: Behaviour) -> web.Response:
        status = behaviour.status
        if behaviour.html:
            headers = self._headers(behaviour, "text/html")
            page = (
                f"<html><head><title>{status}</title></head><body><h1>{status} Bad Gateway</h1></body></html>"
            )
            return web.Response(status=status, body=page.encode(), headers=headers)
        error = ERROR_BODIES.get(status) or {
            "message": f"Upstream error {status}.",
            "type": "server_error" if status >= 500 else "invalid_request_error",
            "param": None,
            "code": None,
        }
        headers = self._headers(behaviour)
        if status == 429:
            headers["retry-after"] = behaviour.retry_after
            headers["x-ratelimit-remaining-requests"] = "0"
        return web.Response(status=status, body=orjson.dumps({"error": error}), headers=headers)

    # -- endpoints -------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._chat_answer)

    async def _chat_answer(
        self, request: web.Request, record: RecordedRequest, behaviour: Behaviour
    ) -> web.StreamResponse:
        body = record.json if isinstance(record.json, dict) else {}
        model = body.get("model") or request.match_info.get("deployment") or "unknown"
        completion_id = f"chatcmpl-{next(self._ids):08d}"
        usage = _usage(count_prompt_tokens(body), behaviour.chunks)
        if not _wants_stream(record):
            message = {
                "role": "assistant",
                "content": "".join(reply_pieces(body, behaviour.chunks)),
                "refusal": None,
            }
            payload: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion",
                "created": CREATED,
                "model": model,
                "system_fingerprint": "fp_standin",
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
            }
            if behaviour.kind != "no_usage":
                payload["usage"] = usage
            return self._json(payload, behaviour)

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        send_usage = include_usage and behaviour.kind != "no_usage"

        def chunk(delta: dict[str, Any] | None, finish: str | None, *, usage_chunk: bool = False) -> bytes:
            event: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "system_fingerprint": "fp_standin",
            }
            if usage_chunk:
                event["choices"] = []
                event["usage"] = usage
            else:
                event["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
                if send_usage:
                    event["usage"] = None
            return b"data: " + orjson.dumps(event) + b"\n\n"

        if behaviour.kind == "endless":
            first = chunk({"role": "assistant", "content": "", "refusal": None}, None)
            more = (chunk({"content": f" #{i}"}, None) for i in itertools.count(1))
            return await self._endless(request, record, itertools.chain([first], more), behaviour)
        events = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
        events += [chunk({"content": piece}, None) for piece in reply_pieces(body, behaviour.chunks)]
        events.append(chunk({}, "stop"))
        if send_usage:
            events.append(chunk(None, None, usage_chunk=True))
        events.append(b"data: [DONE]\n\n")
        return await self._stream(request, record, events, behaviour)

    async def _stream(
        self, request: web.Request, record: RecordedRequest, events: list[bytes], behaviour: Behaviour
    ) -> web.StreamResponse:
        if behaviour.coalesce:
            return await self._stream_coalesced(request, record, events, behaviour)
        response = web.StreamResponse(headers=self._headers(behaviour, "text/event-stream; charset=utf-8"))
        response.headers["cache-control"] = "no-cache"
        record.response_status = response.status
        record.response_headers = {k.lower(): v for k, v in response.headers.items()}
        await response.prepare(request)
        if behaviour.kind == "no_done":
            events = [e for e in events if e != b"data: [DONE]\n\n"]
        for i, event in enumerate(events):
            if behaviour.kind == "cut_stream" and i >= behaviour.after:
                transport = request.transport
                if transport is not None:
                    transport.abort()
                # The upstream chose to drop it: this is not a client cancellation.
                raise _Dropped()
            if behaviour.kind == "slow_stream" and i > 0:
                await asyncio.sleep(behaviour.delay)
            if i == behaviour.stall_at:
                await asyncio.sleep(behaviour.stall)
            if behaviour.comments:
                await response.write(b": keep-alive\n\n")
            if behaviour.fragment:
                half = len(event) // 2
                await response.write(event[:half])
                await asyncio.sleep(0.02)
                await response.write(event[half:])
            else:
                await response.write(event)
            record.sent_events.append(event)
            if request.transport is None or request.transport.is_closing():
                raise ConnectionResetError("client went away mid-stream")
        await response.write_eof()
        return response

    async def _endless(
        self, request: web.Request, record: RecordedRequest, events: Any, behaviour: Behaviour
    ) -> web.StreamResponse:
        """Write events until the client goes away (counted in `sent_events` as they go)."""
        response = web.StreamResponse(headers=self._headers(behaviour, "text/event-stream; charset=utf-8"))
        record.response_status = response.status
        await response.prepare(request)
        for event in events:
            await response.write(event)
            record.sent_events.append(event)
            await asyncio.sleep(behaviour.delay)
            if request.transport is None or request.transport.is_closing():
                raise ConnectionResetError("client went away mid-stream")
        return response  # pragma: no cover (the events never end)

    async def _stream_coalesced(
        self, request: web.Request, record: RecordedRequest, events: list[bytes], behaviour: Behaviour
    ) -> web.StreamResponse:
        """Write the HTTP response by hand so that the head and the first event share one write;
        the body is delimited by closing the connection (HTTP/1.1 without length or chunking)."""
        transport = request.transport
        assert transport is not None
        headers = {
            **self._headers(behaviour, "text/event-stream; charset=utf-8"),
            "cache-control": "no-cache",
            "connection": "close",
        }
        record.response_status = 200
        record.response_headers = dict(headers)
        head = "HTTP/1.1 200 OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        transport.write(head.encode("latin-1") + events[0])
        record.sent_events.append(events[0])
        for i, event in enumerate(events[1:], 1):
            if behaviour.kind == "slow_stream":
                await asyncio.sleep(behaviour.delay)
            if i == behaviour.stall_at:
                await asyncio.sleep(behaviour.stall)
            if transport.is_closing():
                raise ConnectionResetError("client went away mid-stream")
            transport.write(event)
            record.sent_events.append(event)
        record.completed = True
        transport.close()  # flushes, then FIN: the end of the body
        raise _Dropped()  # aiohttp must write nothing more on this connection

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._completions_answer)

    async def _completions_answer(
        self, request: web.Request, record: RecordedRequest, behaviour: Behaviour
    ) -> web.StreamResponse:
        body = record.json if isinstance(record.json, dict) else {}
        model = body.get("model") or request.match_info.get("deployment") or "unknown"
        prompt = body.get("prompt")
        prompt_text = prompt if isinstance(prompt, str) else " ".join(map(str, prompt or []))
        completion_id = f"cmpl-{next(self._ids):08d}"
        pieces = [f"Echo: {prompt_text}"] + [f" #{i}" for i in range(1, max(behaviour.chunks, 1))]
        usage = _usage(count_prompt_tokens(body), behaviour.chunks, details=False)
        if not _wants_stream(record):
            payload: dict[str, Any] = {
                "id": completion_id,
                "object": "text_completion",
                "created": CREATED,
                "model": model,
                "system_fingerprint": "fp_standin",
                "choices": [{"index": 0, "text": "".join(pieces), "logprobs": None, "finish_reason": "stop"}],
            }
            if behaviour.kind != "no_usage":
                payload["usage"] = usage
            return self._json(payload, behaviour)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(text: str, finish: str | None) -> bytes:
            event = {
                "id": completion_id,
                "object": "text_completion",
                "created": CREATED,
                "model": model,
                "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
            }
            return b"data: " + orjson.dumps(event) + b"\n\n"

        events = [chunk(p, None) for p in pieces] + [chunk("", "stop")]
        if include_usage and behaviour.kind != "no_usage":
            events.append(
                b"data: "
                + orjson.dumps(
                    {
                        "id": completion_id,
                        "object": "text_completion",
                        "created": CREATED,
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                )
                + b"\n\n"
            )
        events.append(b"data: [DONE]\n\n")
        return await self._stream(request, record, events, behaviour)

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._embeddings_answer)

    async def _embeddings_answer(
        self, request: web.Request, record: RecordedRequest, behaviour: Behaviour
    ) -> web.StreamResponse:
        body = record.json if isinstance(record.json, dict) else {}
        model = body.get("model") or request.match_info.get("deployment") or "unknown"
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else [str(x) for x in (inputs or [])]
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            vector = embedding_vector(text, i)
            encoded: Any = vector
            if as_base64:
                encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        tokens = sum(len(t.split()) for t in texts) + len(texts)
        payload: dict[str, Any] = {"object": "list", "data": data, "model": model}
        if behaviour.kind != "no_usage":
            payload["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
        return self._json(payload, behaviour)

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        async def answer(request: web.Request, record: RecordedRequest, behaviour: Behaviour) -> web.Response:
            payload = {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": CREATED, "owned_by": "stand-in"}
                    for m in self.models
                ],
            }
            return self._json(payload, behaviour)

        return await self._serve(request, answer)

    async def _transcriptions(self, request: web.Request) -> web.StreamResponse:
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=b"",
            received_at=time.monotonic(),
        )
        try:
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                data = await part.read()  # type: ignore[union-attr]
                name = part.name or ""
                if part.filename:  # type: ignore[union-attr]
                    record.form[name] = {
                        "filename": part.filename,
                        "size": len(data),  # type: ignore[union-attr]
                        "sha256": hashlib.sha256(data).hexdigest(),
                    }
                else:
                    record.form[name] = data.decode("utf-8", "replace")
            record.body = b""  # the parts are in .form; the raw body was consumed by the parser
            behaviour = self._choose(request, record.form.get("model"))
            record.behaviour = behaviour.kind
            self.requests.append(record)

            async def answer(
                request: web.Request, record: RecordedRequest, behaviour: Behaviour
            ) -> web.Response:
                upload = record.form.get("file") or {}
                payload = {
                    "text": f"{upload.get('filename')}:{upload.get('size')}",
                    "filename": upload.get("filename"),
                    "bytes": upload.get("size"),
                    "sha256": upload.get("sha256"),
                    "model": record.form.get("model"),
                    "usage": {"type": "duration", "seconds": 1},
                }
                return self._json(payload, behaviour)

            response = await self._apply(request, record, behaviour, answer)
            self._finish(record, response)
            return response
        except _Dropped:
            raise
        except (asyncio.CancelledError, ConnectionResetError):
            self._mark_cancelled(record)
            raise

    async def _images(self, request: web.Request) -> web.StreamResponse:
        async def answer(request: web.Request, record: RecordedRequest, behaviour: Behaviour) -> web.Response:
            body = record.json if isinstance(record.json, dict) else {}
            n = int(body.get("n") or 1)
            payload = {
                "created": CREATED,
                "data": [
                    {"url": f"https://images.example.invalid/{i}.png", "revised_prompt": body.get("prompt")}
                    for i in range(n)
                ],
            }
            return self._json(payload, behaviour)

        return await self._serve(request, answer)

    async def _moderations(self, request: web.Request) -> web.StreamResponse:
        async def answer(request: web.Request, record: RecordedRequest, behaviour: Behaviour) -> web.Response:
            body = record.json if isinstance(record.json, dict) else {}
            categories = [
                "hate",
                "hate/threatening",
                "harassment",
                "harassment/threatening",
                "illicit",
                "illicit/violent",
                "self-harm",
                "self-harm/intent",
                "self-harm/instructions",
                "sexual",
                "sexual/minors",
                "violence",
                "violence/graphic",
            ]
            inputs = body.get("input")
            count = len(inputs) if isinstance(inputs, list) else 1
            result = {
                "flagged": False,
                "categories": {c: False for c in categories},
                "category_scores": {c: 0.001 for c in categories},
                "category_applied_input_types": {c: ["text"] for c in categories},
            }
            payload = {
                "id": f"modr-{next(self._ids):06d}",
                "model": body.get("model") or "omni-moderation-latest",
                "results": [result] * count,
            }
            return self._json(payload, behaviour)

        return await self._serve(request, answer)

    async def _catch_all(self, request: web.Request) -> web.StreamResponse:
        async def answer(request: web.Request, record: RecordedRequest, behaviour: Behaviour) -> web.Response:
            payload = {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "body_bytes": len(record.body),
            }
            return self._json(payload, behaviour)

        return await self._serve(request, answer)


class _Dropped(asyncio.CancelledError):
    """The upstream itself dropped the connection (cut_stream); not counted as a cancellation."""


def _presented_keys(request: web.Request) -> set[str]:
    """Every provider key the request carries, whatever the auth style."""
    keys = {request.headers.get("api-key", ""), request.headers.get("x-api-key", "")}
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        keys.add(token.strip())
    keys.discard("")
    return keys


def _wants_stream(record: RecordedRequest) -> bool:
    return isinstance(record.json, dict) and bool(record.json.get("stream"))


def _usage(prompt: int, completion: int, *, details: bool = True) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if details:
        usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
        usage["completion_tokens_details"] = {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
    return usage
