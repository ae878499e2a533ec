"""Single sign-on with an OpenID Connect provider: the authorization code flow with PKCE (S256), `state`
and `nonce`, ending in the same session cookie as a password sign-in (docs/portal.md, docs/security.md).

`GET oidc/start` keeps the login in the database (store/sso.py: state hashed, nonce, verifier, expiry),
sets a short cookie binding it to this browser, and sends the browser to the provider. `GET oidc/callback`
takes the login by its state (once), exchanges the code at the token endpoint with the verifier, checks
the ID token against the provider's keys (signature, iss, aud, azp, exp, iat, nonce: authlib's OIDC
claims over joserfc), and signs in the user linked to (issuer, subject), creating them only when the
operator said so. Every answer is a redirect to /portal/, with `?sso_error=<code>` when refused.

authlib (and joserfc under it) is imported here only, and this module only when SSO is configured, so a
gateway without SSO never pays its memory. No code, token or secret is ever logged or echoed.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlencode

from sluicegate.config.model import OidcConfig
from sluicegate.portal.call import Call, forwarded, read_cookie, secure
from sluicegate.portal.signin import start_session

log = logging.getLogger("sluicegate.portal")

BINDING_COOKIE = "sg_oidc"
CALLBACK = "/portal/api/oidc/callback"
LOGIN_TTL_S = 600.0  # a login must come back from the provider within this
METADATA_TTL_S = 3600.0
JWKS_MIN_REFRESH_S = 30.0  # an unknown key id refetches the keys, at most this often
LEEWAY_S = 60  # clock difference tolerated on exp / iat
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
HTTP_TIMEOUT_S = 10.0


class SsoRefused(Exception):
    """A sign-in that ends at /portal/?sso_error=<code>; the message is for the log, never the browser."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


@dataclass
class Provider:
    """One provider's discovery document and keys, cached per worker."""

    config: OidcConfig
    _metadata: dict[str, Any] | None = None
    _metadata_at: float = 0.0
    _jwks: dict[str, Any] | None = None
    _jwks_at: float = field(default=-JWKS_MIN_REFRESH_S)

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None or time.monotonic() - self._metadata_at > METADATA_TTL_S:
            url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
            found = await _get_json(url)
            # OpenID Connect Discovery 1.0 §4.3: the document must name exactly the configured issuer.
            if found.get("issuer") != self.config.issuer:
                raise SsoRefused("sso_unavailable", "the discovery document names another issuer")
            for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(found.get(name), str):
                    raise SsoRefused("sso_unavailable", f"the discovery document has no {name}")
            self._metadata, self._metadata_at = found, time.monotonic()
        return self._metadata

    async def keys(self, refresh: bool = False) -> dict[str, Any]:
        stale = refresh and time.monotonic() - self._jwks_at >= JWKS_MIN_REFRESH_S
        if self._jwks is None or stale:
            self._jwks = await _get_json((await self.metadata())["jwks_uri"])
            self._jwks_at = time.monotonic()
        return self._jwks


async def _get_json(url: str) -> dict[str, Any]:
    import aiohttp

    try:
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as response:
            if response.status != 200:
                raise SsoRefused("sso_unavailable", f"GET {url} answered {response.status}")
            data = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise SsoRefused("sso_unavailable", f"GET {url} failed: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise SsoRefused("sso_unavailable", f"GET {url} did not answer a JSON object")
    return data


def provider_of(call: Call) -> Provider:
    config = call.gw.settings.portal.oidc
    provider: Provider | None = call.portal.sso
    if provider is None or provider.config is not config:
        provider = call.portal.sso = Provider(config)
    return provider


def _redirect_uri(call: Call, config: OidcConfig) -> str:
    """Where the provider sends the browser back: configured, or this gateway's callback as reached."""
    if config.redirect_uri:
        return config.redirect_uri
    host = forwarded(call.gw, call.scope, "x-forwarded-host") or (call.scope.headers.get("host") or "")
    return f"{'https' if secure(call) else 'http'}://{host}{CALLBACK}"


def _binding_cookie(call: Call, value: str, max_age: int) -> tuple[str, str]:
    # Lax, not Strict: the provider's redirect back is a cross-site navigation, which must carry it.
    parts = [f"{BINDING_COOKIE}={value}", "Path=/portal/api/oidc", "HttpOnly", "SameSite=Lax"]
    parts.append(f"Max-Age={max_age}")
    if secure(call):
        parts.append("Secure")
    return ("set-cookie", "; ".join(parts))


async def start(call: Call) -> tuple[str, list[tuple[str, str]]]:
    """`GET oidc/start`: remember a new login and send the browser to the provider."""
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    config = call.gw.settings.portal.oidc
    try:
        metadata = await provider_of(call).metadata()
    except SsoRefused as refused:
        log.warning("portal: single sign-on unavailable: %s", refused)
        return f"/portal/?sso_error={refused.code}", []
    state, nonce, binding = (secrets.token_urlsafe(32) for _ in range(3))
    verifier = secrets.token_urlsafe(64)  # RFC 7636: 43 to 128 characters
    redirect_uri = _redirect_uri(call, config)
    await call.portal.sso_logins.start(state, binding, nonce, verifier, redirect_uri, LOGIN_TTL_S)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": config.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(config.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    endpoint = metadata["authorization_endpoint"]
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", [
        _binding_cookie(call, binding, int(LOGIN_TTL_S))
    ]


async def callback(call: Call) -> tuple[str, list[tuple[str, str]]]:
    """`GET oidc/callback?code&state`: finish a login; always a redirect to the portal's page."""
    cookies = [_binding_cookie(call, "", 0)]
    try:
        user_id = await _finish(call)
    except SsoRefused as refused:
        log.info("portal: single sign-on refused from %s: %s", call.ctx.client_ip, refused)
        return f"/portal/?sso_error={refused.code}", cookies
    _, session_cookies = await start_session(call, user_id)
    log.info("portal: %s signed in with single sign-on", user_id)
    return "/portal/", [*cookies, *session_cookies]


async def _finish(call: Call) -> str:
    config = call.gw.settings.portal.oidc
    query = call.query
    if query.get("error"):
        raise SsoRefused("sso_refused", f"the provider answered error={query['error'][:100]!r}")
    state, code = query.get("state") or "", query.get("code") or ""
    if not state or not code:
        raise SsoRefused("sso_expired", "the callback has no state or no code")
    pending = await call.portal.sso_logins.take(state)
    if pending is None:
        raise SsoRefused("sso_expired", "unknown, used or expired state")
    if not pending.bound_to(read_cookie(call.scope.headers, BINDING_COOKIE)):
        raise SsoRefused("sso_expired", "the login was started in another browser")
    provider = provider_of(call)
    tokens = await _exchange(provider, config, code, pending.verifier, pending.redirect_uri)
    claims = await _verify(provider, config, tokens, pending.nonce)
    _check_domain(config, claims)
    return await _user_for(call, config, claims)


async def _exchange(
    provider: Provider, config: OidcConfig, code: str, verifier: str, redirect_uri: str
) -> dict[str, Any]:
    """The token endpoint's answer to the code (client authenticated, PKCE verifier sent)."""
    import aiohttp

    metadata = await provider.metadata()
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "client_id": config.client_id,
    }
    auth = None
    if config.client_secret:
        methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if "client_secret_basic" in methods:
            auth = aiohttp.BasicAuth(config.client_id, config.client_secret)
        else:
            form["client_secret"] = config.client_secret
    try:
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(metadata["token_endpoint"], data=form, auth=auth) as response,
        ):
            data = await response.json(content_type=None)
            status = response.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise SsoRefused("sso_failed", f"the token endpoint failed: {type(exc).__name__}") from None
    if status != 200 or not isinstance(data, dict):
        error = data.get("error") if isinstance(data, dict) else None
        raise SsoRefused("sso_failed", f"the token endpoint answered {status} error={str(error)[:60]!r}")
    if not isinstance(data.get("id_token"), str):
        raise SsoRefused("sso_failed", "the token endpoint's answer has no id_token")
    return data


async def _verify(
    provider: Provider, config: OidcConfig, tokens: dict[str, Any], nonce: str
) -> dict[str, Any]:
    """The ID token's claims once its signature (provider's JWKS), iss, aud, exp, iat and nonce hold."""
    from authlib.oidc.core import CodeIDToken
    from joserfc import jwt
    from joserfc.errors import InvalidKeyIdError, JoseError
    from joserfc.jwk import KeySet
    from joserfc.jws import JWSRegistry

    registry = JWSRegistry(algorithms=ALGORITHMS)
    try:
        try:
            keys = KeySet.import_key_set(cast(Any, await provider.keys()))
            token = jwt.decode(tokens["id_token"], keys, registry=registry)
        except InvalidKeyIdError:  # the provider may have rotated its keys
            keys = KeySet.import_key_set(cast(Any, await provider.keys(refresh=True)))
            token = jwt.decode(tokens["id_token"], keys, registry=registry)
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": config.issuer},
            "aud": {"essential": True, "value": config.client_id},
        }
        params = {"nonce": nonce, "client_id": config.client_id}
        if isinstance(tokens.get("access_token"), str):
            params["access_token"] = tokens["access_token"]
        claims = CodeIDToken(token.claims, token.header, options, params)
        claims.validate(now=int(time.time()), leeway=LEEWAY_S)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise SsoRefused("sso_failed", f"the ID token was refused: {type(exc).__name__}: {exc}") from None
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise SsoRefused("sso_failed", "the ID token has no subject")
    return dict(claims)


def _check_domain(config: OidcConfig, claims: dict[str, Any]) -> None:
    if not config.allowed_domains:
        return
    email = claims.get("email")
    domain = email.rsplit("@", 1)[-1].lower() if isinstance(email, str) and "@" in email else None
    if domain not in config.allowed_domains or claims.get("email_verified") is False:
        raise SsoRefused("sso_domain_not_allowed", f"e-mail domain {domain!r} is not allowed")


_NOT_NAME = re.compile(r"[^\w.@-]+")


def _name_for(config: OidcConfig, claims: dict[str, Any]) -> str:
    """A user name from the configured claim (else preferred_username, email, sub), fit for the portal."""
    for claim in (config.name_claim, "preferred_username", "email"):
        value = claims.get(claim)
        if isinstance(value, str) and value.strip():
            name = _NOT_NAME.sub("-", value.strip()).strip("-_.")[:64]
            if len(name) >= 2:
                return name
    return "sso-" + _tag(config.issuer, claims["sub"])


def _tag(issuer: str, subject: str) -> str:
    return hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()[:8]


async def _user_for(call: Call, config: OidcConfig, claims: dict[str, Any]) -> str:
    """The id of the user linked to (issuer, subject); created when the operator allows it."""
    from sluicegate.store.tenancy_types import NameTaken, TenancyError

    tenancy = call.gw.store.tenancy
    subject = claims["sub"]
    user = await tenancy.user_by_sso(config.issuer, subject)
    if user is None:
        if not config.create_users:
            raise SsoRefused("sso_unknown_user", f"no user is linked to subject {subject!r}")
        name = _name_for(config, claims)
        # A name is never a link: a taken name gets a suffix, it does not sign in as its holder.
        for candidate in (name, f"{name[:55]}-{_tag(config.issuer, subject)}"):
            try:
                user = await tenancy.create_user(
                    candidate, role=config.role, group=config.group, sso=(config.issuer, subject)
                )
                log.info("portal: created %s for subject %r at first sign-in", user.id, subject)
                break
            except NameTaken:
                user = await tenancy.user_by_sso(config.issuer, subject)  # made meanwhile by another node
                if user is not None:
                    break
            except TenancyError as exc:  # the configured group does not exist (any more)
                raise SsoRefused("sso_failed", f"cannot create a user: {exc}") from None
        if user is None:
            raise SsoRefused("sso_failed", f"no free name for subject {subject!r}")
    if user.disabled:
        raise SsoRefused("sso_user_disabled", f"{user.id} is disabled")
    return user.id
