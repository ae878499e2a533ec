"""An upstream's answer as the client gets it: its headers, its errors, and what the gateway says
when no upstream could answer.

Why apart from the request path (server/proxy.py): these are the small, pure rules of what goes out
(the request id the client sees is the id logged, the gateway's rate headers replace the provider
account's, a non-JSON error page becomes OpenAI's error body), each tested without a socket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluicegate.inbound import SAME_WIRE
from sluicegate.protocol.errors import (
    GatewayError,
    RateLimited,
    ServiceUnavailable,
    UpstreamTimeout,
    UpstreamUnavailable,
    error_body,
)
from sluicegate.routing.attempts import DEADLINE, UNAVAILABLE
from sluicegate.routing.attempts import RATE_LIMITED as RATE_LIMITED_NC

if TYPE_CHECKING:
    from sluicegate.server.app import Gateway
    from sluicegate.server.context import RequestContext


# Endpoints whose answer is JSON (or an SSE stream): anything else from an upstream there is unusable.
JSON_ENDPOINTS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/messages"})
UPSTREAM_INCOMPLETE = "upstream_incomplete"  # UpstreamResponse.read raises it
UPSTREAM_BAD_RESPONSE = "upstream_bad_response"


def unusable_answer(ctx: RequestContext, content_type: str) -> GatewayError | None:
    """A 2xx answer that is not JSON on an endpoint that answers JSON (a proxy's HTML page)."""
    if ctx.upstream_path not in JSON_ENDPOINTS or not content_type or "json" in content_type:
        return None
    media = content_type.split(";", 1)[0].strip()
    return UpstreamUnavailable(
        f"The upstream answered {media} where JSON was expected.", code=UPSTREAM_BAD_RESPONSE
    )


async def read_whole(resp: Any) -> bytes:
    """A whole answer's body; one cut short of its Content-Length is a 502 `upstream_incomplete`
    (UpstreamResponse.read), not a 500."""
    data: bytes = await resp.read()
    return data


def retry_after_of(err: GatewayError) -> float | None:
    value = err.headers.get("retry-after")
    return float(value) if value else None


def no_channel_error(nc: Any, last_error: GatewayError | None) -> GatewayError:
    if nc.reason == RATE_LIMITED_NC:
        retry = nc.retry_after
        return RateLimited(
            "Every upstream for this model is rate limited right now.",
            code="upstream_rate_limited",
            headers={"retry-after": str(max(1, int(retry + 0.999)))} if retry else {},
        )
    if last_error is not None:
        return last_error
    if nc.reason == DEADLINE:
        return UpstreamTimeout(
            "No upstream answered this model within the routing deadline.", code="routing_deadline"
        )
    if nc.reason == UNAVAILABLE:
        if nc.retry_after is None:
            # Every channel is disabled (credentials or access refused): waiting does not cure that, so no
            # Retry-After inviting clients to hammer the gateway (docs/channels.md).
            return ServiceUnavailable(
                "Every upstream for this model is out of service until the operator acts "
                "(the upstream refused the gateway's credentials). Your own API key is fine.",
                code="upstreams_unavailable",
            )
        return ServiceUnavailable(
            "Every upstream for this model is cooling down after failures; retry shortly.",
            code="upstreams_unavailable",
            headers={"retry-after": str(max(1, int(nc.retry_after + 0.999)))},
        )
    return UpstreamUnavailable("Every upstream for this model failed.", code="upstreams_failed")


def openai_shaped(
    status: int, headers: list[tuple[str, str]], body: bytes
) -> tuple[int, list[tuple[str, str]], bytes]:
    """An upstream error that is not JSON (a proxy's HTML page) as OpenAI's error body, same status.

    The SDKs cannot read an HTML page; its text is not passed on (it may name the provider's hosts).
    """
    kept = [h for h in headers if h[0] != "content-type"]
    kept.append(("content-type", "application/json"))
    message = f"The upstream answered {status} with a non-JSON error page."
    code = "upstream_error"
    return status, kept, error_body(message, "api_error" if status >= 500 else "invalid_request_error", code)


def codec_id_headers(ctx: RequestContext) -> list[tuple[str, str]]:
    """The request id under the name the client's SDK reads, besides x-request-id: Anthropic's SDKs
    read `request-id` (`message._request_id`)."""
    return [("request-id", ctx.request_id)] if ctx.codec.name.startswith("anthropic") else []


def answer_headers(gw: Gateway, ctx: RequestContext, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """An upstream answer's headers as the client gets them: the id it sees is the id logged (the
    upstream's x-request-id, else ours), the gateway's own rate headers replace the account's, CORS."""
    upstream_id = next((v for k, v in headers if k == "x-request-id"), None)
    if upstream_id:
        ctx.request_id = upstream_id
    else:
        headers.append(("x-request-id", ctx.request_id))
    ids = codec_id_headers(ctx)
    if ids:
        headers = [h for h in headers if h[0] != "request-id"]
        headers.extend(ids)
    if ctx.extra_headers:
        headers = with_own_headers(headers, ctx.extra_headers)
    headers.extend(gw.cors.response_headers(ctx.origin))
    return headers


def relay_error_answer(
    gw: Gateway, proto: Any, ctx: RequestContext, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    """An upstream's error answer, as it was (status, body, headers the client relies on)."""
    ctx.status = status
    ctx.error_type = ctx.error_type or f"upstream_{status}"
    headers = answer_headers(gw, ctx, headers)
    edge = ctx.edge
    if edge is not SAME_WIRE:
        body = edge.upstream_error(status, body, request_id=ctx.request_id)
    proto.response_bytes(status, headers, body)


def with_own_headers(upstream: list[tuple[str, str]], ours: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The upstream's headers with the gateway's own in place of any of the same name.

    The gateway's limits are the ones this client is held to: when it states any x-ratelimit-*, none
    of the upstream account's go out, since they describe the whole provider account (shared by every
    key), and a client reading `-tokens` from the account beside `-requests` from its key would mix two.
    """
    names = {name for name, _ in ours}
    if any(name.startswith("x-ratelimit-") for name in names):
        kept = [h for h in upstream if h[0] not in names and not h[0].startswith("x-ratelimit-")]
    else:
        kept = [h for h in upstream if h[0] not in names]
    kept.extend(ours)
    return kept
