"""What operators see of metering: `/metrics` in Prometheus' format with counters that match the
requests made, structured JSON logs without a secret in them, and request/response bodies stored
only for keys that opted in, with secrets masked.

One gateway (SQLite, JSON logs, flush every 0.2 s) serves the module. Counters are compared
before and after each test's own requests, so the order of tests does not matter.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from metering_kit import (
    BODIES_KEY,
    KEY_NAMES,
    LIMITED_KEY,
    LIMITED_RPM,
    PROVIDER_KEY,
    USD_PRICE,
    LogTable,
    auth,
    chat,
    client_key,
    metering_config,
    wait_for_request,
    wait_until,
)
from prometheus_client.parser import text_string_to_metric_families
from support.gateway import Gateway, http_get, start_gateway
from support.upstream import DEFAULT_CHUNKS, Upstream, count_prompt_tokens

HOUSE_PATTERN = r"ACME-[0-9]{6}"  # an operator's own secret format (`metering.redact_patterns`)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Observed:
    def __init__(self, gateway: Gateway, upstream: Upstream, table: LogTable) -> None:
        self.gateway = gateway
        self.upstream = upstream
        self.table = table

    @property
    def chat_url(self) -> str:
        return f"{self.gateway.base_url}/chat/completions"

    def scrape(self) -> Samples:
        status, body = http_get(self.gateway.host, self.gateway.port, "/metrics", timeout=5)
        assert status == 200, body[:300]
        samples: Samples = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def module_observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    database = f"sqlite:///{tmp_path_factory.mktemp('observability') / 'gate.db'}"
    with Upstream() as upstream:
        gateway = start_gateway(
            metering_config(
                upstream.url,
                database,
                logging={"json": True, "level": "info"},
                metering={"flush_interval_s": 0.2, "redact_patterns": [HOUSE_PATTERN]},
            )
        )
        try:
            yield Observed(gateway, upstream, LogTable(database))
        finally:
            gateway.stop()


@pytest.fixture
def observed(module_observed: Observed) -> Observed:
    if not module_observed.gateway.running():
        pytest.fail(
            f"the gateway died (exit {module_observed.gateway.process.returncode})\n"
            f"{module_observed.gateway.stderr_text()[-3000:]}",
            pytrace=False,
        )
    module_observed.upstream.reset()
    return module_observed


# -- /metrics ------------------------------------------------------------------------------------------


def test_metrics_count_requests_tokens_and_cost(observed: Observed) -> None:
    before = observed.scrape()
    bodies = [
        chat("count me"),
        chat("count me too please"),
        chat("and me", stream=True),
        chat("me as well", stream=True, stream_options={"include_usage": True}),
    ]
    for body in bodies:
        response = httpx.post(observed.chat_url, json=body, headers=auth("metrics"), timeout=10)
        assert response.status_code == 200
    after = observed.scrape()
    ok = {"model": "gpt-4o-mini", "upstream": "up", "status": "200"}
    assert (
        value(after, "sluicegate_requests_total", **ok) - value(before, "sluicegate_requests_total", **ok)
        == 4
    )
    prompt = sum(count_prompt_tokens(b) for b in bodies)
    completion = DEFAULT_CHUNKS * len(bodies)
    for kind, expected in (("prompt", prompt), ("completion", completion)):
        labels = {"model": "gpt-4o-mini", "kind": kind}
        gained = value(after, "sluicegate_tokens_total", **labels) - value(
            before, "sluicegate_tokens_total", **labels
        )
        assert gained == expected, (
            f"{kind} tokens: /metrics gained {gained}, the upstream reported {expected}"
        )
    cost = {"model": "gpt-4o-mini", "currency": "USD"}
    gained_cost = value(after, "sluicegate_cost_total", **cost) - value(
        before, "sluicegate_cost_total", **cost
    )
    assert gained_cost == pytest.approx(
        (prompt * USD_PRICE["input"] + completion * USD_PRICE["output"]) / 1e6, rel=1e-9
    )
    duration = {"model": "gpt-4o-mini"}
    assert (
        value(after, "sluicegate_request_duration_seconds_count", **duration)
        - value(before, "sluicegate_request_duration_seconds_count", **duration)
    ) == 4


def test_metrics_count_limiter_refusals_and_the_refused_request(observed: Observed) -> None:
    before = observed.scrape()
    responses = [
        httpx.post(observed.chat_url, json=chat(f"limited {i}"), headers=auth(LIMITED_KEY), timeout=10)
        for i in range(LIMITED_RPM + 1)
    ]
    assert [r.status_code for r in responses] == [200] * LIMITED_RPM + [429]
    after = observed.scrape()
    refusals = {
        dict(k[1])["reason"]: v - before.get(k, 0.0)
        for k, v in after.items()
        if k[0] == "sluicegate_limiter_refusals_total"
    }
    # The reason names the kind of limit that refused (rpm, tpm, concurrency, budget_usd, ...).
    assert {reason: n for reason, n in refusals.items() if n} == {"rpm": 1}, refusals
    labels_429 = [
        dict(k[1])
        for k, v in after.items()
        if k[0] == "sluicegate_requests_total"
        and dict(k[1]).get("status") == "429"
        and v - before.get(k, 0.0) == 1
    ]
    assert labels_429 == [{"model": "gpt-4o-mini", "upstream": "none", "status": "429"}]
    row = wait_for_request(observed.table, responses[-1].headers["x-request-id"])
    assert (row["status"], row["error_type"], row["upstream"]) == (429, "rate_limit_exceeded", None), row
    assert (row["prompt_tokens"], row["completion_tokens"], row["cost"]) == (0, 0, 0.0), row


def test_metrics_count_upstream_failures(observed: Observed) -> None:
    before = observed.scrape()
    observed.upstream.behaviour = "fail"
    response = httpx.post(
        observed.chat_url, json=chat("fail me", model="flaky-model"), headers=auth("metrics"), timeout=10
    )
    assert response.status_code == 500
    after = observed.scrape()
    failed = {"model": "gpt-4o-mini", "upstream": "flaky", "status": "500"}
    assert (
        value(after, "sluicegate_requests_total", **failed)
        - value(before, "sluicegate_requests_total", **failed)
    ) == 1
    errors = {
        k: v - before.get(k, 0.0) for k, v in after.items() if k[0] == "sluicegate_upstream_errors_total"
    }
    assert [dict(k[1])["upstream"] for k, gained in errors.items() if gained == 1] == ["flaky"], errors
    row = wait_for_request(observed.table, response.headers["x-request-id"])
    assert (row["status"], row["upstream"], row["completion_tokens"], row["cost"]) == (
        500,
        "flaky",
        0,
        0.0,
    ), row
    assert row["error_type"], row


def test_metrics_count_estimated_and_unpriced_requests(observed: Observed) -> None:
    before = observed.scrape()
    response = httpx.post(
        observed.chat_url,
        json=chat("hello llama", model="local-llama", stream=True),
        headers=auth("metrics"),
        timeout=10,
    )
    assert response.status_code == 200
    after = observed.scrape()
    model = {"model": "llama-3.1-8b"}
    for name in ("sluicegate_usage_estimated_requests_total", "sluicegate_unpriced_requests_total"):
        assert value(after, name, **model) - value(before, name, **model) == 1, name
    row = wait_for_request(observed.table, response.headers["x-request-id"])
    assert (row["cost"], row["currency"]) == (0.0, ""), (
        "an unpriced request is logged with cost 0 and no currency"
    )


def test_metrics_show_the_log_queue_depth(observed: Observed) -> None:
    samples = observed.scrape()
    depth = [v for (name, _), v in samples.items() if name == "sluicegate_log_queue_depth"]
    assert len(depth) == 1, "sluicegate_log_queue_depth is missing from /metrics"
    assert depth[0] >= 0
    assert ("sluicegate_log_dropped_total", frozenset()) in samples


# -- JSON logs and secrets -------------------------------------------------------------------------------


def test_json_logs_are_json_lines_without_any_secret(observed: Observed) -> None:
    wrong_key = "sk-meter-wrong-client-key-9d8c7b6a"
    url = observed.chat_url
    assert (
        httpx.post(
            url, json=chat("who am I"), headers={"Authorization": f"Bearer {wrong_key}"}, timeout=10
        ).status_code
        == 401
    )
    observed.upstream.script("status 401", "fail", "cut_stream after=2")
    assert (
        httpx.post(
            url, json=chat("401 upstream", model="locked-model"), headers=auth("logs"), timeout=10
        ).status_code
        == 502
    )  # the gateway's credentials, not the client's
    assert (
        httpx.post(
            url, json=chat("500 upstream", model="flaky-model"), headers=auth("logs"), timeout=10
        ).status_code
        == 500
    )
    cut = httpx.post(
        url, json=chat("cut upstream", model="flaky-model", stream=True), headers=auth("logs"), timeout=10
    )
    assert cut.status_code == 200 and '"error"' in cut.text
    assert (
        httpx.post(
            url, json=chat("no such model", model="nope"), headers=auth("logs"), timeout=10
        ).status_code
        == 404
    )
    wait_for_request(observed.table, cut.headers["x-request-id"])

    stdout, stderr = observed.gateway.stdout_text(), observed.gateway.stderr_text()
    lines = [line for line in stdout.splitlines() if line.strip()]
    not_json = []
    for line in lines:
        try:
            doc = json.loads(line)
            assert isinstance(doc, dict) and {"ts", "level", "logger", "msg"} <= doc.keys()
        except (ValueError, AssertionError):
            not_json.append(line)
    assert not not_json, (
        f"{len(not_json)} of {len(lines)} stdout lines are not JSON log objects: {not_json[:5]}"
    )
    levels = [json.loads(line)["level"] for line in lines]
    assert "warning" in levels or "error" in levels, (
        f"the upstream failures left no warning in the log, so the secret check proves little: {lines[-5:]}"
    )
    secrets = [PROVIDER_KEY, wrong_key, *(client_key(n) for n in (*KEY_NAMES, BODIES_KEY, LIMITED_KEY))]
    for name, text in (("stdout", stdout), ("stderr", stderr)):
        leaked = [s for s in secrets if s in text or s[8:] in text]
        assert not leaked, f"{name} carries secrets: {leaked}"


# -- stored bodies ----------------------------------------------------------------------------------------

SECRET_IN_PROMPT = "sk-proj-Zq81vLw0PaSsW0rdInAPr0mpt77"


def _row_for(observed: Observed, key: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(observed.chat_url, json=body, headers=auth(key), timeout=10)
    assert response.status_code == 200
    return wait_for_request(observed.table, response.headers["x-request-id"])


def test_key_with_store_bodies_gets_its_bodies_stored_with_secrets_masked(observed: Observed) -> None:
    row = _row_for(observed, BODIES_KEY, chat(f"my key is {SECRET_IN_PROMPT}, keep it safe"))
    assert row["request_body"] is not None, "a key with store_bodies stored no request body"
    assert row["response_body"] is not None, "a key with store_bodies stored no response body"
    stored = json.loads(row["request_body"])
    assert stored["messages"][0]["content"] == "my key is [REDACTED], keep it safe"
    answer = json.loads(row["response_body"])
    assert answer["choices"][0]["message"]["content"].startswith("Echo: my key is [REDACTED], keep it safe")
    assert SECRET_IN_PROMPT not in row["request_body"] + row["response_body"]


def test_key_with_store_bodies_gets_its_streamed_answer_stored(observed: Observed) -> None:
    row = _row_for(observed, BODIES_KEY, chat(f"stream with {SECRET_IN_PROMPT}", stream=True))
    assert row["request_body"] is not None and SECRET_IN_PROMPT not in row["request_body"]
    assert "[REDACTED]" in row["request_body"]
    assert row["response_body"], "a streamed answer of a key with store_bodies was not stored"
    assert SECRET_IN_PROMPT not in row["response_body"]
    assert row["response_body"].startswith("Echo: stream with [REDACTED]"), row["response_body"]


def test_stored_bodies_mask_the_operators_own_patterns(observed: Observed) -> None:
    row = _row_for(observed, BODIES_KEY, chat("contract ACME-123456 and mail ops@example.com"))
    assert "ACME-123456" not in row["request_body"] + row["response_body"]
    assert "ops@example.com" not in row["request_body"], "e-mail addresses are masked in stored bodies"
    assert (
        json.loads(row["request_body"])["messages"][0]["content"] == "contract [REDACTED] and mail [REDACTED]"
    )


def test_key_without_store_bodies_stores_none(observed: Observed) -> None:
    for stream in (False, True):
        row = _row_for(observed, "nobodies", chat(f"my key is {SECRET_IN_PROMPT}", stream=stream))
        assert row["request_body"] is None and row["response_body"] is None, row


# -- several workers ------------------------------------------------------------------------------------


def test_metrics_of_two_workers_add_up_to_every_request(tmp_path: Any) -> None:
    """Each scrape reaches one worker; multiprocess mode must add up both workers' figures."""
    database = f"sqlite:///{tmp_path / 'gate.db'}"
    with Upstream() as upstream:
        gateway = start_gateway(
            metering_config(upstream.url, database, server={"workers": 2}, redis="redis://127.0.0.1:6379/0")
        )
        try:
            observed = Observed(gateway, upstream, LogTable(database))
            bodies = [chat(f"worker load {i}", stream=i % 2 == 0) for i in range(60)]

            async def fire() -> list[httpx.Response]:
                async with httpx.AsyncClient(timeout=20) as client:
                    return await asyncio.gather(
                        *(client.post(observed.chat_url, json=b, headers=auth("metrics")) for b in bodies)
                    )

            responses = asyncio.run(fire())
            assert [r.status_code for r in responses] == [200] * len(bodies)
            rows = wait_until(lambda: len(observed.table.for_key("metrics")) == len(bodies), timeout=10)
            assert rows, "not every request was logged"
            # Every worker pushes its figures once per sink turn (0.2 s): give them a few turns.
            ok = {"model": "gpt-4o-mini", "upstream": "up", "status": "200"}
            wait_until(lambda: value(observed.scrape(), "sluicegate_requests_total", **ok) == 60, timeout=10)
            time.sleep(0.5)
            scrapes = [observed.scrape() for _ in range(6)]
        finally:
            gateway.stop()
    prompt = sum(count_prompt_tokens(b) for b in bodies)
    for samples in scrapes:
        assert (
            value(samples, "sluicegate_requests_total", model="gpt-4o-mini", upstream="up", status="200")
            == 60
        )
        assert value(samples, "sluicegate_tokens_total", model="gpt-4o-mini", kind="prompt") == prompt
        assert (
            value(samples, "sluicegate_tokens_total", model="gpt-4o-mini", kind="completion")
            == 60 * DEFAULT_CHUNKS
        )
