"""Bad input, from the client or the upstream, gets a clear OpenAI-shaped error: never a 500, never a
success that is not one. Through the real gateway and the stand-in upstream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.deployment import CHAT_MESSAGES, Deployment, deploy, wait_until

HTML_OK = "up/behaviour=status,200,html=1"


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = deploy(
        "sqlite",
        tmp_path_factory.mktemp("bad-input"),
        extra_models={
            "html-model": HTML_OK,
            "short-model": "up/behaviour=short_body",
            "html-then-good": [HTML_OK, "up/gpt-4o-mini"],
        },
    )
    yield deployment
    deployment.close()


def post(dep: Deployment, body: dict[str, Any], path: str = "/chat/completions") -> httpx.Response:
    return httpx.post(f"{dep.gateway.base_url}{path}", json=body, timeout=15)


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    if code is not None:
        assert error["code"] == code, error
    assert "Traceback" not in response.text
    return error


def logged_status(dep: Deployment, request_id: str) -> int | None:
    found: list[int] = []

    def look() -> bool:
        rows = dep.admin("GET", "/admin/logs?tail=200").json()["data"]
        found.extend(r["status"] for r in rows if r["request_id"] == request_id)
        return bool(found)

    wait_until(look, timeout=10)
    return found[0] if found else None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stream_options", "x"),
        ("stream", "yes"),
        ("max_tokens", "100"),
        ("max_tokens", 0),
        ("max_completion_tokens", 2.5),
        ("n", True),
        ("n", -1),
    ],
)
def test_a_wrong_type_in_a_field_the_gateway_reads_is_a_400_naming_it(
    dep: Deployment, field: str, value: Any
) -> None:
    body = {"model": "gpt-4o-mini", "messages": CHAT_MESSAGES, "stream": True, field: value}
    error = assert_openai_error(post(dep, body), 400)
    assert error["param"] == field


def test_a_stream_with_string_stream_options_is_a_400_not_a_500(dep: Deployment) -> None:
    body = {"model": "gpt-4o-mini", "messages": CHAT_MESSAGES, "stream": True, "stream_options": "x"}
    error = assert_openai_error(post(dep, body), 400)
    assert error["param"] == "stream_options"


@pytest.mark.parametrize("prompt", [{"a": 1}, ["a", 1], [[1, "x"]], 5])
def test_a_malformed_prompt_is_a_400_naming_it(dep: Deployment, prompt: Any) -> None:
    error = assert_openai_error(post(dep, {"model": "gpt-4o-mini", "prompt": prompt}, "/completions"), 400)
    assert error["param"] == "prompt"


def test_an_upstream_body_shorter_than_its_content_length_is_a_502_logged_as_502(dep: Deployment) -> None:
    response = post(dep, {"model": "short-model", "messages": CHAT_MESSAGES})
    assert_openai_error(response, 502, "upstream_incomplete")
    assert logged_status(dep, response.headers["x-request-id"]) == 502


def test_a_200_html_page_on_a_json_endpoint_is_a_502_in_openai_format(dep: Deployment) -> None:
    response = post(dep, {"model": "html-model", "messages": CHAT_MESSAGES})
    error = assert_openai_error(response, 502, "upstream_bad_response")
    assert "text/html" in error["message"]
    assert response.headers["content-type"].startswith("application/json")
    assert logged_status(dep, response.headers["x-request-id"]) == 502


def test_a_200_html_page_counts_as_a_channel_failure_and_fails_over(dep: Deployment) -> None:
    answers = [post(dep, {"model": "html-then-good", "messages": CHAT_MESSAGES}) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 6
    assert all(a.json()["object"] == "chat.completion" for a in answers)
    channels = {c["name"]: c for c in dep.admin("GET", "/admin/channels").json()["channels"]}
    html = channels[f"up/{HTML_OK.removeprefix('up/')}"]
    assert html["failures"] >= 1, html
    assert html["last_error"], html
