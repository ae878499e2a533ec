"""Browsers (chat UIs calling the gateway from the page) and orchestrators (health probes)."""

from __future__ import annotations

import httpx
from support.gateway import ALLOWED_ORIGIN, Core
from support.schema import SpecValidator, assert_stream, parse_sse

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
DISALLOWED_ORIGIN = "https://evil.example.net"


def preflight(core: Core, origin: str) -> httpx.Response:
    return httpx.options(
        f"{core.gateway.base_url}/chat/completions",
        timeout=10,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_cors_preflight_for_an_allowed_origin_allows_post_with_authorization(core: Core) -> None:
    response = preflight(core, ALLOWED_ORIGIN)
    assert response.status_code in (200, 204)
    assert response.headers.get("access-control-allow-origin") in (ALLOWED_ORIGIN, "*")
    assert "POST" in response.headers.get("access-control-allow-methods", "").upper()
    allowed_headers = response.headers.get("access-control-allow-headers", "").lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers
    assert core.upstream.requests == [], "a preflight must not reach the upstream"


def test_cors_preflight_for_a_disallowed_origin_has_no_allow_origin(core: Core) -> None:
    response = preflight(core, DISALLOWED_ORIGIN)
    assert "access-control-allow-origin" not in response.headers
    assert core.upstream.requests == []


def test_cors_headers_on_a_normal_response_for_an_allowed_origin(core: Core, spec: SpecValidator) -> None:
    response = httpx.post(
        f"{core.gateway.base_url}/chat/completions",
        json=CHAT,
        timeout=10,
        headers={**core.auth, "Origin": ALLOWED_ORIGIN},
    )
    assert response.status_code == 200
    spec.validate("CreateChatCompletionResponse", response.json())
    assert response.headers.get("access-control-allow-origin") in (ALLOWED_ORIGIN, "*")


def test_cors_exposes_the_request_id_to_the_page(core: Core) -> None:
    response = httpx.post(
        f"{core.gateway.base_url}/chat/completions",
        json=CHAT,
        timeout=10,
        headers={**core.auth, "Origin": ALLOWED_ORIGIN},
    )
    exposed = response.headers.get("access-control-expose-headers", "").lower()
    assert "x-request-id" in exposed


def test_cors_headers_on_a_streamed_response_for_an_allowed_origin(core: Core, spec: SpecValidator) -> None:
    with httpx.stream(
        "POST",
        f"{core.gateway.base_url}/chat/completions",
        json={**CHAT, "stream": True},
        timeout=10,
        headers={**core.auth, "Origin": ALLOWED_ORIGIN},
    ) as response:
        raw = response.read()
    assert response.status_code == 200
    assert response.headers.get("access-control-allow-origin") in (ALLOWED_ORIGIN, "*")
    assert_stream(parse_sse(raw), spec=spec)


def test_cors_headers_on_an_error_response_for_an_allowed_origin(core: Core, spec: SpecValidator) -> None:
    response = httpx.post(
        f"{core.gateway.base_url}/chat/completions", json=CHAT, timeout=10, headers={"Origin": ALLOWED_ORIGIN}
    )  # no key: 401
    assert response.status_code == 401
    spec.validate("ErrorResponse", response.json())
    assert response.headers.get("access-control-allow-origin") in (ALLOWED_ORIGIN, "*"), (
        "without CORS headers on errors a browser page sees a network error instead of the 401"
    )


def test_no_cors_headers_for_a_disallowed_origin(core: Core) -> None:
    response = httpx.post(
        f"{core.gateway.base_url}/chat/completions",
        json=CHAT,
        timeout=10,
        headers={**core.auth, "Origin": DISALLOWED_ORIGIN},
    )
    assert "access-control-allow-origin" not in response.headers


def test_no_cors_headers_on_a_stream_for_a_disallowed_origin(core: Core) -> None:
    with httpx.stream(
        "POST",
        f"{core.gateway.base_url}/chat/completions",
        json={**CHAT, "stream": True},
        timeout=10,
        headers={**core.auth, "Origin": DISALLOWED_ORIGIN},
    ) as response:
        response.read()
    assert "access-control-allow-origin" not in response.headers


def test_healthz_answers_200_without_a_key(core: Core) -> None:
    response = httpx.get(f"{core.gateway.url}/healthz", timeout=5)
    assert response.status_code == 200


def test_readyz_answers_json(core: Core) -> None:
    response = httpx.get(f"{core.gateway.url}/readyz", timeout=5)
    assert response.status_code == 200
    assert response.headers.get("content-type", "").startswith("application/json")
    body = response.json()
    assert isinstance(body, dict) and body


# What the official SDKs list in a browser's preflight (from the JS SDKs' own requests): the Anthropic
# SDK with `dangerouslyAllowBrowser`, and the OpenAI SDK with its organization and project.
ANTHROPIC_SDK_HEADERS = (
    "anthropic-beta,anthropic-dangerous-direct-browser-access,anthropic-version,content-type,x-api-key,"
    "x-stainless-arch,x-stainless-lang,x-stainless-os,x-stainless-package-version,x-stainless-retry-count,"
    "x-stainless-runtime,x-stainless-runtime-version,x-stainless-timeout"
)
OPENAI_SDK_HEADERS = (
    "authorization,content-type,openai-organization,openai-project,x-stainless-arch,x-stainless-lang,"
    "x-stainless-os,x-stainless-package-version,x-stainless-retry-count,x-stainless-runtime,"
    "x-stainless-runtime-version,x-stainless-timeout"
)


def sdk_preflight(core: Core, path: str, requested: str) -> httpx.Response:
    return httpx.options(
        f"{core.gateway.url}{path}",
        timeout=10,
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": requested,
        },
    )


def test_the_anthropic_sdks_browser_preflight_is_allowed_every_header(core: Core) -> None:
    response = sdk_preflight(core, "/v1/messages", ANTHROPIC_SDK_HEADERS)
    assert response.status_code == 204
    allowed = {h.strip() for h in response.headers["access-control-allow-headers"].split(",")}
    assert allowed == set(ANTHROPIC_SDK_HEADERS.split(","))
    assert core.upstream.requests == []


def test_the_openai_sdks_browser_preflight_is_allowed_every_header(core: Core) -> None:
    response = sdk_preflight(core, "/v1/chat/completions", OPENAI_SDK_HEADERS)
    assert response.status_code == 204
    allowed = {h.strip() for h in response.headers["access-control-allow-headers"].split(",")}
    assert allowed == set(OPENAI_SDK_HEADERS.split(","))


def test_cors_exposes_anthropics_request_id_header_to_the_page(core: Core) -> None:
    response = httpx.post(
        f"{core.gateway.url}/v1/messages",
        json={"model": "gpt-4o-mini", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
        headers={**core.auth, "Origin": ALLOWED_ORIGIN},
    )
    assert response.status_code == 200 and response.headers["request-id"]
    assert "request-id" in [h.strip() for h in response.headers["access-control-expose-headers"].split(",")]
