"""Failures through the real gateway: every error in OpenAI's shape with the right status, no
secret in any error, upstream errors passed through as they are, broken streams reported rather
than silently truncated, and a client's disconnect reaching the upstream."""

from __future__ import annotations

import time

import aiohttp
import httpx
import openai
import orjson
import pytest
from support.gateway import CLIENT_KEY, OTHER_CLIENT_KEY, PROVIDER_KEY, Core
from support.schema import SpecValidator, parse_sse
from support.upstream import ERROR_BODIES

MESSAGES = [{"role": "user", "content": "hello"}]
CHAT = {"model": "gpt-4o-mini", "messages": MESSAGES}


def assert_openai_error(response: httpx.Response, status: int, spec: SpecValidator) -> dict:
    """The response is `status` with an OpenAI error body (message, type, param, code) and no secret."""
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code}: {response.text[:500]}"
    )
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = spec.validate("ErrorResponse", response.json())
    error = body["error"]
    assert set(error) >= {"message", "type", "param", "code"}, f"error lacks OpenAI's fields: {error}"
    assert error["message"], "the error message is empty"
    for secret in (PROVIDER_KEY, CLIENT_KEY, OTHER_CLIENT_KEY):
        assert secret not in response.text, "an error body contains a secret key"
        assert all(secret not in v for v in response.headers.values()), (
            "an error header contains a secret key"
        )
    # Upstream addresses are the operator's business (every stand-in and dead port is on 127.0.0.1).
    assert "127.0.0.1" not in response.text, f"an error body names an internal address: {response.text}"
    return error


def post(core: Core, path: str, *, headers: dict[str, str] | None = None, **kwargs) -> httpx.Response:
    return httpx.post(
        f"{core.gateway.base_url}{path}",
        headers=core.auth if headers is None else headers,
        timeout=15,
        **kwargs,
    )


def test_unknown_model_is_404_model_not_found(core: Core, spec: SpecValidator) -> None:
    response = post(core, "/chat/completions", json={"model": "gpt-nonexistent", "messages": MESSAGES})
    error = assert_openai_error(response, 404, spec)
    assert error["code"] == "model_not_found"
    assert core.upstream.requests == []


def test_unknown_model_raises_not_found_in_the_sdk(core: Core) -> None:
    with core.client() as client, pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-nonexistent", messages=MESSAGES)
    assert caught.value.code == "model_not_found"


def test_missing_key_is_401(core: Core, spec: SpecValidator) -> None:
    response = post(core, "/chat/completions", json=CHAT, headers={})
    assert_openai_error(response, 401, spec)
    assert core.upstream.requests == []


def test_wrong_key_is_401_and_not_echoed(core: Core, spec: SpecValidator) -> None:
    wrong = "sk-wrong-key-that-must-not-be-echoed-123"
    response = post(core, "/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {wrong}"})
    assert_openai_error(response, 401, spec)
    assert wrong not in response.text
    assert core.upstream.requests == []


def test_wrong_key_raises_authentication_error_in_the_sdk(core: Core) -> None:
    with core.client("sk-wrong-key-0000000") as client, pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(**CHAT)


def test_malformed_json_is_400(core: Core, spec: SpecValidator) -> None:
    response = post(
        core,
        "/chat/completions",
        content=b'{"model": "gpt-4o-mini", "messages": [',
        headers={**core.auth, "Content-Type": "application/json"},
    )
    error = assert_openai_error(response, 400, spec)
    assert error["type"] == "invalid_request_error"
    assert core.upstream.requests == []


def test_body_over_the_size_limit_is_413(core: Core, spec: SpecValidator) -> None:
    big = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 1_200_000}]}
    response = post(core, "/chat/completions", json=big)
    assert_openai_error(response, 413, spec)
    assert core.upstream.requests == []


def test_upstream_refusing_connections_is_502(core: Core, spec: SpecValidator) -> None:
    response = post(core, "/chat/completions", json={"model": "dead-model", "messages": MESSAGES})
    assert_openai_error(response, 502, spec)


def test_upstream_closing_without_answer_is_502(core: Core, spec: SpecValidator) -> None:
    core.upstream.behaviour = "refuse"
    response = post(core, "/chat/completions", json={"model": "refused-model", "messages": MESSAGES})
    assert_openai_error(response, 502, spec)
    assert core.upstream.requests, "the request never reached the upstream"


def test_upstream_hanging_past_first_byte_timeout_is_504(core: Core, spec: SpecValidator) -> None:
    core.upstream.behaviour = "hang"
    started = time.monotonic()
    response = post(core, "/chat/completions", json={"model": "slow-model", "messages": MESSAGES})
    elapsed = time.monotonic() - started
    assert_openai_error(response, 504, spec)
    # slowpoke's first_byte is 0.5 s (the gateway tries it up to 3 times); the global 5 s would make
    # it 5 s at least, and 15 s with the retries.
    assert elapsed < 5.0, f"the 504 took {elapsed:.1f} s"


def test_upstream_400_status_and_body_pass_through(core: Core, spec: SpecValidator) -> None:
    core.upstream.behaviour = "status 400"
    response = post(core, "/chat/completions", json={"model": "badreq-model", "messages": MESSAGES})
    error = assert_openai_error(response, 400, spec)
    assert error == ERROR_BODIES[400]
    assert len(core.upstream.requests) == 1, "a 400 is the client's fault: the gateway must not retry it"


def test_upstream_429_status_and_body_pass_through(core: Core, spec: SpecValidator) -> None:
    core.upstream.behaviour = "status 429"
    response = post(core, "/chat/completions", json={"model": "limited-model", "messages": MESSAGES})
    error = assert_openai_error(response, 429, spec)
    assert error == ERROR_BODIES[429]


def test_upstream_429_keeps_its_retry_after_header(core: Core) -> None:
    core.upstream.behaviour = "status 429"
    response = post(core, "/chat/completions", json={"model": "limited2-model", "messages": MESSAGES})
    assert response.status_code == 429
    assert response.headers.get("retry-after") == "2"


def test_upstream_401_does_not_leak_the_provider_key_or_blame_the_client_key(
    core: Core, spec: SpecValidator
) -> None:
    core.upstream.behaviour = "status 401"
    response = post(core, "/chat/completions", json={"model": "locked-model", "messages": MESSAGES})
    assert response.status_code >= 400
    assert_openai_error(response, response.status_code, spec)


def test_upstream_500_is_reported_in_openai_shape(core: Core, spec: SpecValidator) -> None:
    core.upstream.behaviour = "fail"
    response = post(core, "/chat/completions", json={"model": "broken-model", "messages": MESSAGES})
    assert response.status_code >= 500
    assert_openai_error(response, response.status_code, spec)


def read_events_until_done(core: Core, body: dict, *, timeout: float = 5.0) -> list[str]:
    """Read a stream's events up to `[DONE]` (not waiting for the response to end)."""
    events: list[str] = []
    with httpx.stream(
        "POST", f"{core.gateway.base_url}/chat/completions", json=body, headers=core.auth, timeout=timeout
    ) as response:
        assert response.status_code == 200
        buffer = ""
        for text in response.iter_text():
            buffer += text
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                events += parse_sse(block + "\n\n")
            if "[DONE]" in events:
                break
    return events


def test_stream_cut_by_the_upstream_ends_with_an_error_event(core: Core) -> None:
    core.upstream.behaviour = "cut_stream after=3"
    events = read_events_until_done(core, {"model": "cut-model", "messages": MESSAGES, "stream": True})
    assert len(core.upstream.last.sent_events) == 3
    chunks = [orjson.loads(e) for e in events if e != "[DONE]"]
    errors = [c for c in chunks if "error" in c]
    assert errors, f"the client got a silently truncated stream: {events}"
    assert errors[0]["error"].get("message"), errors[0]
    assert chunks.index(errors[0]) == 3, (
        "the error event must come right after the 3 chunks the upstream sent"
    )
    assert PROVIDER_KEY not in "".join(events)


def test_stream_cut_by_the_upstream_ends_the_client_response(core: Core) -> None:
    core.upstream.behaviour = "cut_stream after=3"
    body = {"model": "cut2-model", "messages": MESSAGES, "stream": True}
    started = time.monotonic()
    try:
        response = httpx.post(
            f"{core.gateway.base_url}/chat/completions", json=body, headers=core.auth, timeout=4
        )
    except httpx.ReadTimeout:
        pytest.fail(
            "after the upstream cut the stream, the gateway sent its error event but never ended "
            "the response: the client waits until its own timeout (4 s here)"
        )
    assert response.status_code == 200
    assert time.monotonic() - started < 2
    assert parse_sse(response.content)[-1] == "[DONE]"


async def test_client_disconnect_mid_stream_cancels_the_upstream_request(core: Core) -> None:
    core.upstream.behaviour = "slow_stream delay=0.3 chunks=30"
    body = {**CHAT, "stream": True}
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            f"{core.gateway.base_url}/chat/completions", json=body, headers=core.auth
        )
        assert response.status == 200
        first = await response.content.readline()
        assert first.startswith(b"data:")
        left_at = time.monotonic()
        response.close()  # drop the connection mid-stream
    assert await core.upstream.wait_for_async(lambda: core.upstream.cancelled == 1, timeout=5), (
        "the upstream never saw the cancellation"
    )
    cancelled_at = core.upstream.last.cancelled_at
    assert cancelled_at is not None
    waited = cancelled_at - left_at
    # ~0.5 s on a quiet machine with chunks 0.3 s apart. What matters is "long before the end of the
    # 9 s stream", not a figure a loaded 2-core box misses by 5 ms: the events the upstream sent say it.
    assert waited < 4.5, f"the upstream saw the cancellation only {waited:.2f} s after the client left"
    assert len(core.upstream.last.sent_events) < 10


# What the upstream sees when the client or the gateway gives up before the headers depends on the
# upstream client: tests/e2e/test_upstream_cancel.py, with each of them.


def assert_idle_timeout_fires_before_event(core: Core, behaviour: str, stall_at: int) -> None:
    """The stand-in stalls 1.6 s before event `stall_at`; the `sleepy` channel's idle timeout is 1 s."""
    core.upstream.behaviour = f"{behaviour} stall_at={stall_at} stall=1.6"
    started = time.monotonic()
    events = read_events_until_done(core, {"model": "sleepy-model", "messages": MESSAGES, "stream": True})
    elapsed = time.monotonic() - started
    chunks = [orjson.loads(e) for e in events if e != "[DONE]"]
    errors = [c for c in chunks if "error" in c]
    assert errors, f"a stream idle past the 1 s idle timeout was not reported: {events}"
    assert chunks.index(errors[0]) == stall_at, (
        f"the idle timeout (1 s) should fire during the 1.6 s stall before event {stall_at}, but "
        f"{chunks.index(errors[0])} chunks came before the error event: {[list(c) for c in chunks]}"
    )
    assert errors[0]["error"].get("code") in (None, "upstream_idle_timeout") or errors[0]["error"]["message"]
    assert elapsed < 4.0, f"the idle timeout of 1 s fired only after {elapsed:.1f} s"
    assert core.upstream.wait_for(lambda: core.upstream.cancelled == 1, timeout=3), (
        "the gateway kept reading from the idle upstream after giving up on it"
    )


def test_stream_idle_after_several_chunks_ends_with_a_timeout_error_event(core: Core) -> None:
    # chunks 0.2 s apart (well within the idle timeout), then the stall
    assert_idle_timeout_fires_before_event(core, "slow_stream delay=0.2", stall_at=3)


def test_stream_idle_right_after_the_first_chunk_ends_with_a_timeout_error_event(core: Core) -> None:
    # the headers and the role chunk leave in one write, then the stall: the first gap of the stream
    # must be held to the idle timeout too, not to first_byte (the headers have arrived)
    assert_idle_timeout_fires_before_event(core, "ok coalesce=1", stall_at=1)


def test_a_stream_past_the_total_timeout_ends_with_a_timeout_error_event(core: Core) -> None:
    # chunks 0.1 s apart for ever: never idle, but the `hasty` channel's whole answer may take 1.5 s
    core.upstream.behaviour = "endless delay=0.1"
    started = time.monotonic()
    events = read_events_until_done(
        core, {"model": "hasty-model", "messages": MESSAGES, "stream": True}, timeout=10
    )
    elapsed = time.monotonic() - started
    chunks = [orjson.loads(e) for e in events if e != "[DONE]"]
    errors = [c for c in chunks if "error" in c]
    assert len(errors) == 1 and chunks[-1] is errors[0], f"no single final error event: {events[-3:]}"
    assert errors[0]["error"]["code"] == "upstream_total_timeout", errors[0]
    assert len(chunks) > 5, "the stream was ended before it had run for a while"
    assert 1.4 <= elapsed < 4.0, f"the total timeout of 1.5 s ended the stream after {elapsed:.1f} s"
    assert core.upstream.wait_for(lambda: core.upstream.cancelled == 1, timeout=3), (
        "the gateway kept reading from the upstream after its total timeout"
    )


def test_missing_model_is_400(core: Core, spec: SpecValidator) -> None:
    response = post(core, "/chat/completions", json={"messages": MESSAGES})
    error = assert_openai_error(response, 400, spec)
    assert error["param"] == "model" or "model" in error["message"]
    assert core.upstream.requests == []


def test_unknown_path_is_404_in_openai_shape(core: Core, spec: SpecValidator) -> None:
    response = httpx.get(f"{core.gateway.url}/v2/nothing-here", headers=core.auth, timeout=10)
    assert_openai_error(response, 404, spec)


def test_upstream_html_error_page_reaches_the_client_as_an_openai_error(
    core: Core, spec: SpecValidator
) -> None:
    core.upstream.behaviour = "status 502 html=1"
    response = post(core, "/chat/completions", json={"model": "htmlerr-model", "messages": MESSAGES})
    assert response.status_code >= 500
    assert_openai_error(response, response.status_code, spec)


def test_chunked_request_body_over_the_size_limit_is_413(core: Core, spec: SpecValidator) -> None:
    payload = orjson.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 1_200_000}]}
    )

    def pieces():  # no Content-Length: the limit must hold for chunked bodies too
        for i in range(0, len(payload), 64 * 1024):
            yield payload[i : i + 64 * 1024]

    response = post(
        core, "/chat/completions", content=pieces(), headers={**core.auth, "Content-Type": "application/json"}
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert_openai_error(response, 413, spec)
    assert core.upstream.requests == []


def test_chunked_request_body_under_the_limit_is_accepted(core: Core) -> None:
    payload = orjson.dumps(CHAT)

    def pieces():
        yield payload[:10]
        yield payload[10:]

    response = post(
        core, "/chat/completions", content=pieces(), headers={**core.auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 200
    assert core.upstream.last.json == CHAT


def test_stream_request_answered_with_an_upstream_400_is_a_json_error(
    core: Core, spec: SpecValidator
) -> None:
    core.upstream.behaviour = "status 400"
    response = post(
        core, "/chat/completions", json={"model": "badreq-model", "messages": MESSAGES, "stream": True}
    )
    error = assert_openai_error(response, 400, spec)
    assert error == ERROR_BODIES[400]


def test_stream_cut_by_the_upstream_raises_in_the_sdk(core: Core) -> None:
    core.upstream.behaviour = "cut_stream after=3"
    received = []
    with core.client() as client, pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(model="cutsdk-model", messages=MESSAGES, stream=True):
            received.append(chunk)
    assert len(received) == 3, "the chunks before the cut reach the caller, then the error is raised"
    assert PROVIDER_KEY not in str(caught.value)
