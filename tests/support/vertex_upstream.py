"""A stand-in Vertex AI with its own OAuth token endpoint, on a real loopback port.

The token endpoint is what a service-account file's `token_uri` names: it takes the JWT-bearer grant,
checks the assertion's RS256 signature with the service account's public key (google-auth's verifier),
its issuer, audience and scope, and issues short-lived tokens (`expires_in` chosen by the test). The
model endpoints accept only a token it issued and not yet expired, and answer as Vertex does: Gemini
models in Gemini's shapes (`publishers/google/...:generateContent`, `:streamGenerateContent?alt=sse`),
Claude models in Anthropic's (`publishers/anthropic/...:rawPredict`, `:streamRawPredict`), where the
body must carry `anthropic_version: vertex-2023-10-16` and no `model`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

from support import anthropic_upstream as claude
from support import gemini_upstream as gemini
from support.anthropic_spec import anthropic_spec
from support.gemini_spec import gemini_errors
from support.standin import StandIn

PROJECT, REGION = "acme-ai", "us-east5"
CLIENT_EMAIL = "gateway@acme-ai.iam.gserviceaccount.com"
# The audience google-auth signs into every assertion, whatever token_uri it posts it to.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


@dataclass
class Received:
    path: str
    query: str
    authorization: str
    body: dict[str, Any]


def service_account(path: Path, token_uri: str) -> rsa.RSAPrivateKey:
    """A throwaway RSA key and a service-account JSON naming it, written to `path`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": "k1",
                "private_key": pem.decode(),
                "client_email": CLIENT_EMAIL,
                "client_id": "1",
                "token_uri": token_uri,
            }
        )
    )
    return key


class VertexUpstream(StandIn):
    name = "vertex-stand-in"

    def __init__(self, public_key: rsa.RSAPublicKey | None = None, expires_in: int = 3600) -> None:
        self.public_pem = b""
        if public_key is not None:
            self.trust(public_key)
        self.expires_in = expires_in
        self.tokens: dict[str, float] = {}  # issued token → expiry (epoch)
        self.refused_assertions = 0
        self.token_requests = 0
        # While set, the token endpoint holds every request (a slow OAuth server); clear it to answer.
        self.hold_tokens = threading.Event()
        self._ids = itertools.count(1)
        super().__init__()

    def trust(self, public_key: rsa.RSAPublicKey) -> None:
        self.public_pem = public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_uri(self) -> str:
        return f"{self.root}/token"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/token", self._token)
        base = f"/v1/projects/{PROJECT}/locations/{REGION}/publishers/{{publisher}}/models/{{call}}"
        app.router.add_post(base, self._predict)

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        while self.hold_tokens.is_set():
            await asyncio.sleep(0.02)
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:
            claims = jwt.decode(
                str(form.get("assertion")),
                certs={"k1": self.public_pem.decode()},
                audience=GOOGLE_TOKEN_AUDIENCE,
            )
        except Exception:  # any bad assertion is refused, as Google does
            self.refused_assertions += 1
            return web.json_response(
                {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, status=400
            )
        if claims.get("iss") != CLIENT_EMAIL or "cloud-platform" not in str(claims.get("scope")):
            return web.json_response({"error": "invalid_scope"}, status=400)
        token = f"ya29.standin-{next(self._ids)}"
        self.tokens[token] = time.time() + self.expires_in
        return web.json_response(
            {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        )

    async def _predict(self, request: web.Request) -> web.StreamResponse:
        publisher = request.match_info["publisher"]
        model, _, method = request.match_info["call"].partition(":")
        body = orjson.loads(await request.read())
        auth = request.headers.get("Authorization", "")
        self.received.append(Received(request.path, request.query_string, auth, body))
        token = auth.removeprefix("Bearer ")
        if self.tokens.get(token, 0) < time.time():
            status = {
                "code": 401,
                "message": "Request had invalid authentication credentials.",
                "status": "UNAUTHENTICATED",
            }
            return web.json_response({"error": status}, status=401)
        if publisher == "anthropic":
            return await self._claude(request, model, method, body)
        errors = gemini_errors("GenerateContentRequest", body)
        if errors:
            return web.json_response(
                {"error": {"code": 400, "message": errors[0], "status": "INVALID_ARGUMENT"}}, status=400
            )
        parts, finish = gemini.answer_parts(body)
        answer = {
            "candidates": [
                {"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}
            ],
            "usageMetadata": gemini.usage(body),
            "modelVersion": model,
            "responseId": "vertex-standin",
        }
        if method == "streamGenerateContent":
            resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(b"data: " + orjson.dumps(answer) + b"\r\n\r\n")
            await resp.write_eof()
            return resp
        return web.json_response(answer)

    async def _claude(
        self, request: web.Request, model: str, method: str, body: dict[str, Any]
    ) -> web.StreamResponse:
        if body.get("anthropic_version") != "vertex-2023-10-16" or "model" in body:
            return web.json_response(
                {
                    "type": "error",
                    "error": {
                        "type": "invalid_request_error",
                        "message": "anthropic_version vertex-2023-10-16 required, model not allowed",
                    },
                },
                status=400,
            )
        params = {k: v for k, v in body.items() if k != "anthropic_version"}
        errors = anthropic_spec().errors("CreateMessageParams", {**params, "model": model})
        if errors:
            return web.json_response(
                {"type": "error", "error": {"type": "invalid_request_error", "message": errors[0].message}},
                status=400,
            )
        full = {**params, "model": model}
        if method == "streamRawPredict":
            resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await resp.prepare(request)
            for event in claude.stream_events(full):
                await resp.write(event)
            await resp.write_eof()
            return resp
        blocks, stop = claude.answer_blocks(full)
        return web.json_response(
            {
                "id": "msg_vertex",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": blocks,
                "stop_reason": stop,
                "stop_sequence": None,
                "stop_details": None,
                "container": None,
                "usage": claude.usage(full),
            }
        )


def trusted_vertex_config(upstream: VertexUpstream, prefix: str = "sg-vertex-") -> dict[str, Any]:
    """A `preset: vertex` upstream config on the stand-in, with a fresh service account it trusts."""
    sa = Path(tempfile.mkdtemp(prefix=prefix)) / "sa.json"
    upstream.trust(service_account(sa, upstream.token_uri).public_key())
    return {
        "preset": "vertex",
        "base_url": upstream.root,
        "project": PROJECT,
        "region": REGION,
        "credentials_file": str(sa),
    }
