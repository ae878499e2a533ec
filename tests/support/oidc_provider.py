"""A stand-in OpenID Connect provider on a loopback port, for the portal's single sign-on tests.

It serves discovery, a JWKS holding an RSA key generated at start, an authorize endpoint that approves
at once (as whoever `sign_in_as` names) and redirects back with a code and the state, and a token
endpoint that checks the code (once), the redirect URI, the client's secret (HTTP Basic) and the PKCE
verifier against the S256 challenge, then answers an RS256 ID token. `misbehave` makes the next ID
tokens wrong in one way: another audience or issuer, expired, signed by another key, or another nonce.
Everything it hands out (codes, tokens) is kept in `issued`, so a test can look for them in logs.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import RSAKey

from support.standin import StandIn

CLIENT_ID = "sluicegate-portal"
CLIENT_SECRET = "oidc-client-secret-7f3c9e1a2b"
MISBEHAVIOURS = ("aud", "iss", "expired", "signature", "nonce")


@dataclass
class Person:
    """Who the provider signs in: the subject and the claims that go with it."""

    subject: str
    claims: dict[str, Any] = field(default_factory=dict)


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    person: Person


class OidcProvider(StandIn):
    name = "stand-in-oidc"

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"}, private=True)
        self.other_key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"}, private=True)
        self.person = Person("sub-0001", {"preferred_username": "idp-user"})
        self.misbehave: str | None = None
        self.grants: dict[str, Grant] = {}
        self.issued: list[str] = []
        self.token_requests: list[dict[str, str]] = []
        self.authorize_requests: list[dict[str, str]] = []
        super().__init__()

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sign_in_as(self, subject: str, **claims: Any) -> None:
        self.person = Person(subject, claims)

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/jwks", self.jwks)
        app.router.add_get("/authorize", self.authorize)
        app.router.add_post("/token", self.token)

    async def discovery(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }
        )

    async def jwks(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [self.key.as_dict(private=False)]})

    async def authorize(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.authorize_requests.append(q)
        if (
            q.get("response_type") != "code"
            or q.get("client_id") != CLIENT_ID
            or q.get("code_challenge_method") != "S256"
            or not q.get("code_challenge")
            or "openid" not in q.get("scope", "").split()
        ):
            return web.Response(status=400, text="bad authorization request")
        code = "code-" + secrets.token_urlsafe(24)
        self.issued.append(code)
        self.grants[code] = Grant(
            q["client_id"], q["redirect_uri"], q["code_challenge"], q.get("nonce", ""), self.person
        )
        back = f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}"
        raise web.HTTPFound(back)

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_requests.append({k: str(v) for k, v in form.items()})
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = self.grants.pop(str(form.get("code", "")), None)
        if grant is None or form.get("grant_type") != "authorization_code":
            return web.json_response({"error": "invalid_grant"}, status=400)
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant.challenge or form.get("redirect_uri") != grant.redirect_uri:
            return web.json_response({"error": "invalid_grant"}, status=400)
        access = "at-" + secrets.token_urlsafe(24)
        id_token = self.id_token(grant)
        self.issued += [access, id_token]
        return web.json_response(
            {"access_token": access, "token_type": "Bearer", "expires_in": 300, "id_token": id_token}
        )

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": grant.person.subject,
            "aud": grant.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
            **grant.person.claims,
        }
        key = self.key
        if self.misbehave == "aud":
            claims["aud"] = "another-client"
        elif self.misbehave == "iss":
            claims["iss"] = "http://127.0.0.1:1/evil"
        elif self.misbehave == "expired":
            claims["iat"], claims["exp"] = now - 3600, now - 600
        elif self.misbehave == "signature":
            key = self.other_key
        elif self.misbehave == "nonce":
            claims["nonce"] = "not-the-nonce"
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)
