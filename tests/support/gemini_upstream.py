"""A stand-in Gemini API (generativelanguage v1beta) on a real loopback port, from Google's reference.

It checks what it receives as Google does: `x-goog-api-key` (400 `INVALID_ARGUMENT` "API key not
valid" otherwise, as Google answers), the body against the published discovery schema
(`GenerateContentRequest`: unknown fields are refused), `contents` not empty. It answers in the
native shapes: a `GenerateContentResponse`, or with `:streamGenerateContent?alt=sse` a stream of
them (cumulative `usageMetadata` on each). What it answers is a function of the request:
- `thinkingConfig.includeThoughts` → a thought part first (`THOUGHT`);
- tools and a last user turn mentioning "weather" → a `functionCall` of the first tool, signed
  (`THOUGHT_SIGNATURE`);
- an `inlineData` image → the text names its mime type (`saw image/png`);
- model `blocked` → the prompt is blocked (`promptFeedback.blockReason: SAFETY`, no candidates);
  `unsafe` → a candidate that finishes with `SAFETY`; `overloaded` → 503 `UNAVAILABLE`.
A test can also script the next answers: each entry of `.scripted` (a list of parts) answers one
request, first in first out, before the rules above apply (a real client's tool round trip).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from support.gemini_spec import gemini_errors
from support.standin import StandIn

API_KEY = "AIza-provider-secret"
TEXT = "Hello from Gemini."
THOUGHT = "Thinking about the greeting."
THOUGHT_SIGNATURE = "CiQB0e2Kb3hNZXRhU2lnbmF0dXJl"
PROMPT, CANDIDATES, THOUGHTS, CACHED = 12, 6, 9, 4


@dataclass
class Received:
    path: str
    query: str
    headers: dict[str, str]
    body: dict[str, Any]


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": status, "message": message, "status": code}}, status=status)


def _last_user(body: dict[str, Any]) -> list[dict[str, Any]]:
    for content in reversed(body.get("contents") or []):
        if content.get("role") == "user":
            return content.get("parts") or []
    return []


def answer_parts(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    parts: list[dict[str, Any]] = []
    thinking = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
    if thinking.get("includeThoughts"):
        parts.append({"text": THOUGHT, "thought": True})
    user = _last_user(body)
    tools = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
    if tools and any("weather" in (p.get("text") or "") for p in user):
        parts.append(
            {
                "functionCall": {"name": tools[0]["name"], "args": {"city": "Paris"}},
                "thoughtSignature": THOUGHT_SIGNATURE,
            }
        )
        return parts, "STOP"
    images = [p["inlineData"]["mimeType"] for p in user if "inlineData" in p]
    parts.append({"text": f"saw {images[0]}" if images else TEXT})
    return parts, "STOP"


def usage(body: dict[str, Any]) -> dict[str, Any]:
    thinking = ((body.get("generationConfig") or {}).get("thinkingConfig") or {}).get("includeThoughts")
    meta = {"promptTokenCount": PROMPT, "candidatesTokenCount": CANDIDATES, "cachedContentTokenCount": CACHED}
    if thinking:
        meta["thoughtsTokenCount"] = THOUGHTS
    meta["totalTokenCount"] = PROMPT + CANDIDATES + (THOUGHTS if thinking else 0)
    return meta


class GeminiUpstream(StandIn):
    """The stand-in, served from a background thread. `.received` lists requests; `.root` is the
    API version root to configure as `base_url` (…/v1beta)."""

    name = "GeminiUpstream"

    def __init__(self, key: str = API_KEY) -> None:
        self.key = key
        self.scripted: list[list[dict[str, Any]]] = []
        super().__init__()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1beta"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1beta/models/{call}", self._call)
        app.router.add_post("/v1beta/openai/embeddings", self._embeddings)

    async def _embeddings(self, request: web.Request) -> web.Response:
        """Google's OpenAI-compatible embeddings: the same API key, as a Bearer token."""
        body = orjson.loads(await request.read())
        self.received.append(Received(request.path, request.query_string, dict(request.headers), body))
        if request.headers.get("Authorization") != f"Bearer {self.key}":
            return _error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
        data = [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}]
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        return web.json_response({"object": "list", "data": data, "model": body["model"], "usage": usage})

    async def _call(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["call"].partition(":")
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        self.received.append(Received(request.path, request.query_string, dict(request.headers), body))
        if request.headers.get("x-goog-api-key") != self.key:
            return _error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
        if method not in ("generateContent", "streamGenerateContent"):
            return _error(404, "NOT_FOUND", f"Method {method} not found.")
        errors = gemini_errors("GenerateContentRequest", body)
        if errors:
            return _error(400, "INVALID_ARGUMENT", f"Invalid JSON payload received. {errors[0]}")
        if not body.get("contents"):
            return _error(
                400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified"
            )
        if model == "overloaded":
            return _error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
        responses = self._responses(model, body)
        if method == "streamGenerateContent":
            if request.query.get("alt") != "sse":
                return web.json_response(responses)  # without alt=sse Google answers a JSON array
            resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await resp.prepare(request)
            for item in responses:
                await resp.write(b"data: " + orjson.dumps(item) + b"\r\n\r\n")
            await resp.write_eof()
            return resp
        whole = dict(responses[-1])
        if responses[-1].get("candidates"):
            parts = [p for r in responses for p in r["candidates"][0]["content"]["parts"]]
            whole["candidates"] = [
                {**responses[-1]["candidates"][0], "content": {"role": "model", "parts": parts}}
            ]
        return web.json_response(whole)

    def _responses(self, model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        base = {"modelVersion": model, "responseId": "resp-standin"}
        if model == "blocked":
            return [
                {
                    **base,
                    "promptFeedback": {"blockReason": "SAFETY"},
                    "usageMetadata": {"promptTokenCount": PROMPT, "totalTokenCount": PROMPT},
                }
            ]
        parts, finish = self.scripted.pop(0) if self.scripted else answer_parts(body)[0], "STOP"
        if model == "unsafe":
            parts, finish = [{"text": "Partial"}], "SAFETY"
        meta = usage(body)
        out = []
        for i, part in enumerate(parts):
            cand: dict[str, Any] = {"content": {"role": "model", "parts": [part]}, "index": 0}
            if i == len(parts) - 1:
                cand["finishReason"] = finish
            out.append({**base, "candidates": [cand], "usageMetadata": meta})
        return out
