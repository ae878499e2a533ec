"""Metering end to end: what the real gateway records for each request is what the upstream
reported, to the token; streams are metered without the client seeing what it did not ask for;
usage nobody reported is counted; abandoned streams are still recorded; costs come from the price
table; and `sluicegate usage` / `sluicegate logs` read it back.

One gateway (SQLite, flush every 0.2 s) serves the module; each test drives its own client key, so
its rows are its own. The exactness test also runs on a gateway logging into PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from metering_kit import (
    CNY_PRICE,
    USD_PRICE,
    LogTable,
    auth,
    chat,
    fresh_postgres_database,
    key_id,
    metering_config,
    wait_for_request,
    wait_for_rows,
    wait_until,
)
from support.gateway import Gateway, run_cli, start_gateway
from support.schema import SpecValidator, assert_stream, parse_sse
from support.upstream import DEFAULT_CHUNKS, Upstream, count_prompt_tokens


class Metered:
    """A running gateway, the stand-in behind it and its request log."""

    def __init__(self, gateway: Gateway, upstream: Upstream, table: LogTable) -> None:
        self.gateway = gateway
        self.upstream = upstream
        self.table = table

    @property
    def chat_url(self) -> str:
        return f"{self.gateway.base_url}/chat/completions"


@pytest.fixture(scope="module")
def module_upstream() -> Iterator[Upstream]:
    with Upstream(models=["gpt-4o-mini", "house-v2", "llama-3.1-8b"]) as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def module_gateway(module_upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Metered]:
    database = f"sqlite:///{tmp_path_factory.mktemp('metering') / 'gate.db'}"
    gateway = start_gateway(metering_config(module_upstream.url, database))
    yield Metered(gateway, module_upstream, LogTable(database))
    gateway.stop()


@pytest.fixture
def metered(module_gateway: Metered) -> Metered:
    if not module_gateway.gateway.running():
        pytest.fail(
            f"the metering gateway died (exit {module_gateway.gateway.process.returncode})\n"
            f"{module_gateway.gateway.stderr_text()[-3000:]}",
            pytrace=False,
        )
    module_gateway.upstream.reset()
    return module_gateway


@pytest.fixture
def postgres_metered(module_upstream: Upstream) -> Iterator[Metered]:
    with fresh_postgres_database() as database:
        gateway = start_gateway(metering_config(module_upstream.url, database))
        try:
            module_upstream.reset()
            yield Metered(gateway, module_upstream, LogTable(database))
        finally:
            gateway.stop()


async def _drive(url: str, headers: dict[str, str], bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=20) as client:
        return await asyncio.gather(*(client.post(url, json=b, headers=headers) for b in bodies))


def _reported_usage(upstream: Upstream) -> tuple[int, int]:
    """What the stand-in reported over all its requests: (prompt, completion) token totals.

    Streams: read from the usage chunk it actually sent. Whole answers: its deterministic rule
    (prompt = words + 3, completion = one token per content piece), the same numbers it put in the body.
    """
    prompt = completion = 0
    for req in upstream.requests:
        if req.json.get("stream"):
            events = [orjson.loads(e) for e in parse_sse(b"".join(req.sent_events)) if e != "[DONE]"]
            usages = [e["usage"] for e in events if e.get("usage")]
            assert len(usages) == 1, f"the stand-in sent {len(usages)} usage chunks on a stream"
            prompt += usages[0]["prompt_tokens"]
            completion += usages[0]["completion_tokens"]
        else:
            prompt += count_prompt_tokens(req.json)
            completion += DEFAULT_CHUNKS
    return prompt, completion


# -- usage is exact ----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_recorded_usage_equals_what_the_upstream_reported(
    backend: str, request: pytest.FixtureRequest
) -> None:
    metered: Metered = request.getfixturevalue("metered" if backend == "sqlite" else "postgres_metered")
    words = [
        "the",
        "sluice",
        "gate",
        "opens",
        "at",
        "dawn",
        "and",
        "closes",
        "at",
        "dusk",
        "every",
        "single",
        "day",
    ]
    bodies: list[dict[str, Any]] = []
    for i in range(30):
        body = chat(" ".join(words[: 1 + i % len(words)]) + f" #{i}")
        if i % 3 == 1:
            body["stream"] = True
        elif i % 3 == 2:
            body.update(stream=True, stream_options={"include_usage": True})
        bodies.append(body)
    responses = asyncio.run(_drive(metered.chat_url, auth("exact"), bodies))
    assert [r.status_code for r in responses] == [200] * len(bodies)
    prompt, completion = _reported_usage(metered.upstream)
    assert len(metered.upstream.requests) == len(bodies)

    rows = wait_for_rows(metered.table, "exact", len(bodies))
    assert len(rows) == len(bodies), f"{len(rows)} rows logged for {len(bodies)} requests"
    assert sum(r["prompt_tokens"] for r in rows) == prompt
    assert sum(r["completion_tokens"] for r in rows) == completion
    assert sum(1 for r in rows if r["stream"]) == 20
    assert not any(r["usage_estimated"] for r in rows), "the upstream reported usage for every request"
    assert {r["status"] for r in rows} == {200}
    assert {r["request_id"] for r in rows} == {r.headers["x-request-id"] for r in responses}

    done = run_cli("usage", "--config", str(metered.gateway.config_path), "--key", key_id("exact"), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert len(report) == 1, report
    assert report[0]["requests"] == len(bodies)
    assert report[0]["errors"] == 0
    assert report[0]["prompt_tokens"] == prompt
    assert report[0]["completion_tokens"] == completion
    assert report[0]["model"] == "gpt-4o-mini"


# -- streams: usage asked for on the client's behalf, and hidden -------------------------------------


def test_stream_asks_the_upstream_for_usage_the_client_did_not_ask_for(metered: Metered) -> None:
    body = chat("meter this stream", stream=True)
    response = httpx.post(metered.chat_url, json=body, headers=auth("streams"), timeout=10)
    assert response.status_code == 200
    sent = metered.upstream.last.json
    assert sent.get("stream_options", {}).get("include_usage") is True, f"the upstream received {sent}"


def test_client_that_did_not_ask_sees_no_usage_chunk(metered: Metered, spec: SpecValidator) -> None:
    body = chat("meter this stream quietly", stream=True)
    response = httpx.post(metered.chat_url, json=body, headers=auth("streams"), timeout=10)
    assert response.status_code == 200
    chunks = assert_stream(parse_sse(response.content), include_usage=False, spec=spec)
    assert all(c["choices"] for c in chunks), (
        "a `choices: []` chunk reached a client that did not ask for usage"
    )
    assert "usage" not in response.text.replace('"usage":null', "")
    row = wait_for_request(metered.table, response.headers["x-request-id"])
    assert (row["prompt_tokens"], row["completion_tokens"]) == (count_prompt_tokens(body), DEFAULT_CHUNKS)
    assert not row["usage_estimated"]


def test_stream_record_carries_time_to_first_token_and_latency(metered: Metered) -> None:
    metered.upstream.behaviour = "slow_stream delay=0.1"
    response = httpx.post(
        metered.chat_url, json=chat("time me", stream=True), headers=auth("streams"), timeout=10
    )
    assert response.status_code == 200
    row = wait_for_request(metered.table, response.headers["x-request-id"])
    # The role chunk comes at once, then four more chunks 0.1 s apart.
    assert row["ttft_ms"] is not None and 0 < row["ttft_ms"] < row["latency_ms"], row
    assert row["latency_ms"] >= 400, row


def test_client_that_asked_sees_the_usage_chunk(metered: Metered, spec: SpecValidator) -> None:
    body = chat("meter this stream aloud", stream=True, stream_options={"include_usage": True})
    response = httpx.post(metered.chat_url, json=body, headers=auth("streams"), timeout=10)
    assert response.status_code == 200
    chunks = assert_stream(parse_sse(response.content), include_usage=True, spec=spec)
    assert chunks[-1]["usage"]["prompt_tokens"] == count_prompt_tokens(body)
    assert chunks[-1]["usage"]["completion_tokens"] == DEFAULT_CHUNKS


# -- usage nobody reported is counted ------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_answer_without_usage_is_recorded_as_estimated(metered: Metered, stream: bool) -> None:
    metered.upstream.behaviour = "no_usage"
    body = chat("how many tokens did I use", stream=stream)
    response = httpx.post(metered.chat_url, json=body, headers=auth("estimate"), timeout=10)
    assert response.status_code == 200
    row = wait_for_request(metered.table, response.headers["x-request-id"])
    assert row["usage_estimated"], row
    assert row["completion_tokens"] > 0, row
    assert row["prompt_tokens"] > 0, row
    assert row["cost"] > 0, "an estimated request is still priced"


def test_llamacpp_stream_is_not_asked_for_usage_and_is_estimated(metered: Metered) -> None:
    body = chat("hello llama", model="local-llama", stream=True)
    response = httpx.post(metered.chat_url, json=body, headers=auth("llama"), timeout=10)
    assert response.status_code == 200
    assert "stream_options" not in metered.upstream.last.json, (
        "llama.cpp rejects stream_options it does not know"
    )
    assert metered.upstream.last.json["model"] == "llama-3.1-8b"
    row = wait_for_request(metered.table, response.headers["x-request-id"])
    assert row["usage_estimated"], row
    assert row["completion_tokens"] > 0, row
    assert row["model_served"] == "llama-3.1-8b"
    assert row["upstream"] == "llama"


# -- a client that leaves mid-stream -------------------------------------------------------------------


def test_abandoned_stream_is_recorded_with_what_was_sent(metered: Metered) -> None:
    metered.upstream.behaviour = "slow_stream delay=0.3 chunks=12"
    body = chat("a long story please", stream=True)
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", metered.chat_url, json=body, headers=auth("abandon")) as response,
    ):
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        received = b""
        for piece in response.iter_bytes():
            received += piece
            if received.count(b"\n\n") >= 3:  # role chunk and two content chunks
                break
    assert metered.upstream.wait_for(lambda: metered.upstream.cancelled == 1, timeout=5), (
        "the gateway did not drop the upstream call when the client left"
    )
    row = wait_for_request(metered.table, request_id)
    assert row["status"] == 499, row
    assert row["error_type"] == "client_disconnected", row
    assert row["stream"]
    assert row["usage_estimated"], "no final usage was seen: the recorded usage is an estimate"
    sent = [orjson.loads(e) for e in parse_sse(b"".join(metered.upstream.last.sent_events)) if e != "[DONE]"]
    sent_text = "".join(c["choices"][0]["delta"].get("content") or "" for c in sent if c.get("choices"))
    assert len(sent) < 1 + 12 + 1, "the upstream finished the stream: the client did not abandon it"
    # Counted from the text relayed: at least a token, at most one per character the upstream sent.
    assert 0 < row["completion_tokens"] <= len(sent_text), (row, sent_text)
    assert row["prompt_tokens"] > 0, row


def test_request_abandoned_before_the_answer_is_recorded_as_client_disconnected(metered: Metered) -> None:
    metered.upstream.behaviour = "slow delay=3"
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(metered.chat_url, json=chat("never mind"), headers=auth("abandon"), timeout=0.5)
    # Whether the upstream saw it go depends on the upstream client: tests/e2e/test_upstream_cancel.py.
    rows = wait_until(lambda: [r for r in metered.table.for_key("abandon") if not r["stream"]], timeout=10)
    assert len(rows) == 1, rows
    assert (rows[0]["status"], rows[0]["error_type"]) == (499, "client_disconnected"), rows[0]
    assert rows[0]["upstream"] == "up"


# -- money --------------------------------------------------------------------------------------------


def test_cost_follows_the_configured_prices_in_each_currency(metered: Metered) -> None:
    long_text = " ".join(f"word{i}" for i in range(5000))
    bodies = [
        chat(long_text),
        chat(long_text, stream=True),
        chat(long_text, model="house-model"),
        chat(long_text, model="house-model", stream=True),
    ]
    responses = asyncio.run(_drive(metered.chat_url, auth("costs"), bodies))
    assert [r.status_code for r in responses] == [200] * 4
    rows = wait_for_rows(metered.table, "costs", 4)
    by_model: dict[str, list[dict[str, Any]]] = {"gpt-4o-mini": [], "house-model": []}
    for row in rows:
        by_model[row["model_requested"]].append(row)
    for model, price in (("gpt-4o-mini", USD_PRICE), ("house-model", CNY_PRICE)):
        assert len(by_model[model]) == 2
        for row in by_model[model]:
            assert not row["usage_estimated"]
            expected = (
                row["prompt_tokens"] * price["input"] + row["completion_tokens"] * price["output"]
            ) / 1e6
            assert row["currency"] == price["currency"], row
            assert row["cost"] == pytest.approx(expected, rel=1e-9, abs=1e-12), row
            assert round(row["cost"], 2) == round(expected, 2)
    # 5003 prompt tokens at 4 CNY per million: about 2 fen a request; at 0.15 USD about 0.08 cents.
    assert by_model["house-model"][0]["cost"] > 0.02

    done = run_cli("usage", "--config", str(metered.gateway.config_path), "--key", key_id("costs"), "--json")
    assert done.returncode == 0, done.stderr
    report = {r["currency"]: r for r in json.loads(done.stdout)}
    assert set(report) == {"USD", "CNY"}, "costs in different currencies must never be added"
    for model, currency in (("gpt-4o-mini", "USD"), ("house-model", "CNY")):
        assert report[currency]["model"] == model
        assert report[currency]["cost"] == pytest.approx(sum(r["cost"] for r in by_model[model]), rel=1e-9)


# -- reading the log back -------------------------------------------------------------------------------


def test_logs_tail_returns_the_last_requests_oldest_first(metered: Metered, tmp_path: Path) -> None:
    ids = []
    for i in range(6):
        response = httpx.post(
            metered.chat_url, json=chat(f"request number {i}"), headers=auth("tail"), timeout=10
        )
        assert response.status_code == 200
        ids.append(response.headers["x-request-id"])
    wait_for_rows(metered.table, "tail", 6)
    done = run_cli(
        "logs", "--config", str(metered.gateway.config_path), "--tail", "5", "--json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert [line["request_id"] for line in lines] == ids[1:]
    assert all(line["key_id"] == key_id("tail") and line["status"] == 200 for line in lines)
    assert [line["id"] for line in lines] == sorted(line["id"] for line in lines)
    assert all(line["prompt_tokens"] > 0 and line["completion_tokens"] == DEFAULT_CHUNKS for line in lines)


# -- other metered endpoints and failures -------------------------------------------------------------


def test_legacy_completions_stream_is_metered_exactly_without_a_usage_chunk(metered: Metered) -> None:
    body = {"model": "gpt-4o-mini", "prompt": "complete this sentence for me", "stream": True}
    response = httpx.post(
        f"{metered.gateway.base_url}/completions", json=body, headers=auth("streams"), timeout=10
    )
    assert response.status_code == 200
    assert metered.upstream.last.json.get("stream_options") == {"include_usage": True}
    events = parse_sse(response.content)
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert all(c["choices"] for c in chunks), "a usage-only chunk reached a client that did not ask for it"
    row = wait_for_request(metered.table, response.headers["x-request-id"])
    assert (row["prompt_tokens"], row["completion_tokens"]) == (count_prompt_tokens(body), DEFAULT_CHUNKS)
    assert not row["usage_estimated"]
    assert row["endpoint"] == "/v1/completions"


def test_embeddings_usage_is_recorded_as_reported(metered: Metered) -> None:
    body = {"model": "gpt-4o-mini", "input": ["one two three", "four five"]}
    response = httpx.post(
        f"{metered.gateway.base_url}/embeddings", json=body, headers=auth("streams"), timeout=10
    )
    assert response.status_code == 200
    reported = response.json()["usage"]["prompt_tokens"]
    row = wait_for_request(metered.table, response.headers["x-request-id"])
    assert (row["prompt_tokens"], row["completion_tokens"]) == (reported, 0)
    assert not row["usage_estimated"]


def test_stream_cut_by_the_upstream_is_recorded_as_failed_with_estimated_usage(metered: Metered) -> None:
    metered.upstream.behaviour = "cut_stream after=3"
    body = chat("cut me off", model="flaky-model", stream=True)
    response = httpx.post(metered.chat_url, json=body, headers=auth("streams"), timeout=10)
    assert response.status_code == 200
    assert '"error"' in response.text, "the client was not told in-band that the stream failed"
    row = wait_for_request(metered.table, response.headers["x-request-id"])
    assert row["error_type"], row
    assert row["usage_estimated"], row
    assert row["completion_tokens"] > 0, row
    assert row["status"] >= 400, (
        f"a stream the upstream cut is logged as status {row['status']} "
        f"(error_type {row['error_type']}): usage reports and /metrics count it as a success"
    )
