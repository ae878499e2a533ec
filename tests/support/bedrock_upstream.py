"""A stand-in Amazon Bedrock runtime (Converse / ConverseStream) on a real loopback port.

It checks each request's SigV4 signature as AWS does, by recomputing it with botocore from the same
secret over the signed headers, the path and the body it received (403 `InvalidSignatureException`
on a mismatch, or an unknown access key), and the Converse body's required shape (`messages` of
`{role, content: [blocks]}`, roles alternating, known block kinds). It answers a Converse response,
or for `/converse-stream` AWS's binary event-stream (encoded here: prelude, headers, payload, CRCs;
the gateway decodes it with botocore's parser, which checks the CRCs). Tools whose last user turn
says "weather" get a `toolUse`; `additionalModelRequestFields.thinking` gets signed reasoning first.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from support.standin import StandIn

ACCESS_KEY, SECRET_KEY, REGION = (
    "AKIDSTANDIN000000001",
    "standin/secret/key/0123456789abcdefghij",
    "us-west-2",
)
TEXT, REASONING, SIGNATURE = "Hello from Bedrock.", "Short greeting.", "bedrock-sig-01"
INPUT, OUTPUT, CACHE_READ, CACHE_WRITE = 30, 8, 100, 50
BLOCK_KINDS = {"text", "image", "toolUse", "toolResult", "reasoningContent", "document", "cachePoint"}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def frame(event_type: str, payload: dict[str, Any], message_type: str = "event") -> bytes:
    """One AWS event-stream message (string headers only), as Bedrock sends it."""
    headers = b""
    for name, value in (
        (":event-type", event_type),
        (":content-type", "application/json"),
        (":message-type", message_type),
    ):
        raw = value.encode()
        headers += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(raw)) + raw
    body = orjson.dumps(payload)
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + headers + body
    return message + struct.pack(">I", binascii.crc32(message) & 0xFFFFFFFF)


def _shape_error(body: dict[str, Any]) -> str | None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: must not be empty"
    last = None
    for i, msg in enumerate(messages):
        if msg.get("role") not in ("user", "assistant") or msg.get("role") == last:
            return f"messages.{i}.role: roles must alternate user/assistant"
        last = msg["role"]
        for block in msg.get("content") or []:
            if len(block) != 1 or next(iter(block)) not in BLOCK_KINDS:
                return f"messages.{i}.content: unknown block {sorted(block)}"
    return None


def answer_blocks(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    blocks: list[dict[str, Any]] = []
    if (body.get("additionalModelRequestFields") or {}).get("thinking"):
        blocks.append({"reasoningContent": {"reasoningText": {"text": REASONING, "signature": SIGNATURE}}})
    tools = (body.get("toolConfig") or {}).get("tools") or []
    last = body["messages"][-1]
    if tools and any("weather" in (b.get("text") or "") for b in last["content"]):
        blocks.append(
            {
                "toolUse": {
                    "toolUseId": "tooluse_01",
                    "name": tools[0]["toolSpec"]["name"],
                    "input": {"city": "Paris"},
                }
            }
        )
        return blocks, "tool_use"
    blocks.append({"text": TEXT})
    return blocks, "end_turn"


USAGE = {
    "inputTokens": INPUT,
    "outputTokens": OUTPUT,
    "totalTokens": INPUT + OUTPUT + CACHE_READ + CACHE_WRITE,
    "cacheReadInputTokens": CACHE_READ,
    "cacheWriteInputTokens": CACHE_WRITE,
}


class BedrockUpstream(StandIn):
    name = "bedrock-stand-in"

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/model/{model}/{action}", self._converse)

    def _signature_ok(self, request: web.Request, raw: bytes) -> bool:
        auth = request.headers.get("Authorization", "")
        try:
            fields = dict(
                part.strip().split("=", 1) for part in auth.removeprefix("AWS4-HMAC-SHA256 ").split(",")
            )
            access_key, date, region, service, _ = fields["Credential"].split("/")
        except (ValueError, KeyError):
            return False
        if access_key != ACCESS_KEY or service != "bedrock" or region != REGION:
            return False
        signed = fields["SignedHeaders"].split(";")
        headers = {name: request.headers.get(name, "") for name in signed}
        replay = AWSRequest(method="POST", url=f"{self.root}{request.raw_path}", data=raw, headers=headers)
        replay.context["timestamp"] = request.headers.get("X-Amz-Date", "")
        signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "bedrock", REGION)
        expected = signer.signature(signer.string_to_sign(replay, signer.canonical_request(replay)), replay)
        return expected == fields["Signature"]

    async def _converse(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = orjson.loads(raw)
        self.received.append(Received(request.raw_path, dict(request.headers), body))
        if not self._signature_ok(request, raw):
            return web.json_response(
                {"message": "The request signature we calculated does not match the signature you provided."},
                status=403,
                headers={"x-amzn-ErrorType": "InvalidSignatureException"},
            )
        problem = _shape_error(body)
        if problem:
            return web.json_response(
                {"message": problem}, status=400, headers={"x-amzn-ErrorType": "ValidationException"}
            )
        blocks, stop = answer_blocks(body)
        if request.match_info["action"] == "converse":
            return web.json_response(
                {
                    "output": {"message": {"role": "assistant", "content": blocks}},
                    "stopReason": stop,
                    "usage": USAGE,
                    "metrics": {"latencyMs": 12},
                }
            )
        resp = web.StreamResponse(headers={"content-type": "application/vnd.amazon.eventstream"})
        await resp.prepare(request)
        events = [frame("messageStart", {"role": "assistant"})]
        for i, block in enumerate(blocks):
            if "toolUse" in block:
                use = block["toolUse"]
                events.append(
                    frame(
                        "contentBlockStart",
                        {
                            "contentBlockIndex": i,
                            "start": {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}},
                        },
                    )
                )
                events.append(
                    frame(
                        "contentBlockDelta",
                        {"contentBlockIndex": i, "delta": {"toolUse": {"input": '{"city": "Paris"}'}}},
                    )
                )
            elif "reasoningContent" in block:
                events.append(
                    frame(
                        "contentBlockDelta",
                        {"contentBlockIndex": i, "delta": {"reasoningContent": {"text": REASONING}}},
                    )
                )
                events.append(
                    frame(
                        "contentBlockDelta",
                        {"contentBlockIndex": i, "delta": {"reasoningContent": {"signature": SIGNATURE}}},
                    )
                )
            else:
                for part in ("Hello ", "from Bedrock."):
                    events.append(
                        frame("contentBlockDelta", {"contentBlockIndex": i, "delta": {"text": part}})
                    )
            events.append(frame("contentBlockStop", {"contentBlockIndex": i}))
        events.append(frame("messageStop", {"stopReason": stop}))
        events.append(frame("metadata", {"usage": USAGE, "metrics": {"latencyMs": 12}}))
        for event in events:
            await resp.write(event)
        await resp.write_eof()
        return resp
