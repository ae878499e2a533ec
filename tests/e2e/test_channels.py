"""Several upstreams behind one public model, through the real gateway: failover before the first
byte and never after it, weights and priorities, breakers that open and recover, Retry-After
honoured, refused provider keys skipped, a client's departure cancelling the retry, and errors that
name no upstream and no key (while the logs do name the failed channel).

One gateway serves every test (it takes seconds to start); each test has its own public model and
its own stand-in upstreams, one per channel, so breakers and rests cannot leak between tests and
each upstream's request log says exactly which channel was used.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

import httpx
import orjson
import pytest
import yaml
from support.gateway import CLIENT_KEY, Gateway, free_port, run_cli, start_gateway
from support.schema import parse_sse
from support.upstream import ERROR_BODIES, Behaviour, Upstream, reply_text

MESSAGES = [{"role": "user", "content": "which way is the water?"}]
BREAKER = {"failures": 3, "cooldown_s": 1.5, "max_cooldown_s": 3}
FIRST_BYTE_S = 0.5  # for the channels that hang: a short first-byte timeout keeps the tests fast

# Provider keys: distinctive so that a leak is unmistakable.
BAD_KEY = "sk-provider-revoked-9d1e77aa"
GOOD_KEY = "sk-provider-working-4c2b18ff"
ACME_KEY = "sk-acme-provider-secret-51f0c3"

# upstream name -> (stand-in behaviour, or None for a port nobody listens on; extra upstream settings)
UPSTREAMS: dict[str, tuple[str | None, dict[str, Any]]] = {
    # every request succeeds while one healthy channel remains
    "m-fail": ("fail", {}),
    "m-drop": ("refuse", {}),
    "m-dead": (None, {}),
    "m-hang": ("hang", {"timeouts": {"first_byte": FIRST_BYTE_S}}),
    "m-limited": ("status 429 retry_after=60", {}),
    "m-ok": ("ok", {}),
    # nothing retried after the first byte
    "cut": ("cut_stream after=2", {}),
    "cut-spare": ("ok", {}),
    # weights 1:3
    "w1": ("ok", {}),
    "w3": ("ok", {}),
    # priority fallback
    "p0a": ("ok", {}),
    "p0b": ("ok", {}),
    "p1": ("ok", {}),
    # a client's error is not retried
    "bad400": ("status 400", {}),
    "bad400-spare": ("ok", {}),
    # Retry-After
    "rest": ("ok", {}),
    "rest-spare": ("ok", {}),
    "dated": ("ok", {}),
    "dated-spare": ("ok", {}),
    # breaker opens, then recovers
    "flaky": ("ok", {}),
    "flaky-spare": ("ok", {}),
    # a refused provider key
    "keyed": (f"ok reject_key={BAD_KEY}", {"api_keys": [BAD_KEY, GOOD_KEY]}),
    "revoked": (f"ok reject_key={BAD_KEY}", {"api_keys": [BAD_KEY]}),
    # two good keys, used in turn
    "pair": ("ok", {"api_keys": ["sk-provider-pair-one-0a1b", "sk-provider-pair-two-2c3d"]}),
    # weight 0: a drained channel
    "d-main": ("ok", {}),
    "d-zero": ("ok", {}),
    # 403: this model is refused on this account
    "forbidden": ("status 403", {}),
    "forbidden-spare": ("ok", {}),
    # a client leaving during a retry
    "leave-hang": ("hang", {"timeouts": {"first_byte": FIRST_BYTE_S}}),
    "leave-slow": ("slow delay=5", {}),
    "leave-last": ("ok", {}),
    # streams fail over before the first byte too
    "s-fail": ("fail", {}),
    "s-hang": ("hang", {"timeouts": {"first_byte": FIRST_BYTE_S}}),
    "s-ok": ("ok", {}),
    # a half-open breaker lets exactly one trial through
    "trial": ("fail", {}),
    "trial-spare": ("ok", {}),
    # recovery trials are probes, not users' requests
    "hp": ("hang", {"timeouts": {"first_byte": FIRST_BYTE_S}}),
    "hp-spare": ("ok", {}),
    # every channel resting
    "r429": ("status 429 retry_after=5", {}),
    # errors name no upstream, no key
    "acme-internal-east": ("fail", {"api_key": ACME_KEY}),
    "acme-dead": (None, {"api_key": ACME_KEY}),
}

MODELS: dict[str, list[dict[str, Any]]] = {
    "mixed": [{"upstream": u} for u in ("m-fail", "m-drop", "m-dead", "m-hang", "m-limited", "m-ok")],
    "cutting": [{"upstream": "cut"}, {"upstream": "cut-spare", "priority": 1}],
    "weighted": [{"upstream": "w1", "weight": 1}, {"upstream": "w3", "weight": 3}],
    "prio": [{"upstream": "p0a"}, {"upstream": "p0b"}, {"upstream": "p1", "priority": 1}],
    "badreq": [{"upstream": "bad400"}, {"upstream": "bad400-spare", "priority": 1}],
    "rested": [{"upstream": "rest"}, {"upstream": "rest-spare", "priority": 1}],
    "dated": [{"upstream": "dated"}, {"upstream": "dated-spare", "priority": 1}],
    "flaky": [{"upstream": "flaky"}, {"upstream": "flaky-spare", "priority": 1}],
    "keyed": [{"upstream": "keyed"}],
    "revoked": [{"upstream": "revoked"}],
    "pair": [{"upstream": "pair"}],
    "drain": [{"upstream": "d-main", "weight": 1}, {"upstream": "d-zero", "weight": 0}],
    "forbidden": [{"upstream": "forbidden"}, {"upstream": "forbidden-spare", "priority": 1}],
    "leaving": [
        {"upstream": "leave-hang"},
        {"upstream": "leave-slow", "priority": 1},
        {"upstream": "leave-last", "priority": 2},
    ],
    "streamed": [{"upstream": u, "priority": i} for i, u in enumerate(("s-fail", "s-hang", "s-ok"))],
    "trial": [{"upstream": "trial"}, {"upstream": "trial-spare", "priority": 1}],
    "resting": [{"upstream": "r429"}],
    "probed": [{"upstream": "hp"}, {"upstream": "hp-spare", "priority": 1}],
    "doomed": [{"upstream": "acme-internal-east"}, {"upstream": "acme-dead"}],
}


@dataclass
class Rig:
    gateway: Gateway
    stand_ins: dict[str, Upstream]  # upstream name -> its stand-in
    http: httpx.Client

    def chat(self, model: str, **extra: Any) -> httpx.Response:
        return self.http.post("/v1/chat/completions", json={"model": model, "messages": MESSAGES, **extra})

    def count(self, name: str) -> int:
        return len(self.stand_ins[name].requests)

    def channels(self) -> dict[str, dict[str, Any]]:
        """/readyz `channels`, by upstream name (each test's upstreams serve one channel each)."""
        response = self.http.get("/readyz")
        # "<first upstream>/*" is the route of requests that name no model; not a channel of any test
        return {c["upstream"]: c for c in response.json()["channels"] if not c["name"].endswith("/*")}


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    stand_ins: dict[str, Upstream] = {}
    upstreams: dict[str, Any] = {}
    try:
        for name, (behaviour, extra) in UPSTREAMS.items():
            if behaviour is None:
                base_url = f"http://127.0.0.1:{free_port()}/v1"
            else:
                stand_ins[name] = Upstream()
                stand_ins[name].behaviour = behaviour
                base_url = stand_ins[name].url
            upstreams[name] = {"base_url": base_url, **({"api_key": "sk-provider-default"} | extra)}
            if "api_keys" in extra:
                upstreams[name].pop("api_key")
        config = {
            "keys": [{"key": CLIENT_KEY, "name": "team-a"}],
            "upstreams": upstreams,
            "models": MODELS,
            "timeouts": {"connect": 1, "first_byte": 5, "idle": 5, "total": 30},
            "routing": {"max_attempts": 6, "deadline_s": 20, "breaker": BREAKER},
        }
        gateway = start_gateway(config)
        with httpx.Client(
            base_url=gateway.url, headers={"Authorization": f"Bearer {CLIENT_KEY}"}, timeout=15
        ) as http:
            yield Rig(gateway, stand_ins, http)
        gateway.stop()
    finally:
        for stand_in in stand_ins.values():
            stand_in.close()


def assert_answered(response: httpx.Response) -> None:
    assert response.status_code == 200, f"{response.status_code}: {response.text[:300]}"
    assert response.json()["choices"][0]["message"]["content"] == reply_text({"messages": MESSAGES})


# -- failover before the first byte -----------------------------------------------------------------


def test_every_request_succeeds_while_one_healthy_channel_remains(rig: Rig) -> None:
    # m-fail answers 500, m-drop closes the connection, m-dead refuses it, m-hang never answers,
    # m-limited answers 429; only m-ok works. Each request tries channels in a random order.
    for _ in range(30):
        assert_answered(rig.chat("mixed"))
    assert rig.count("m-ok") == 30
    for bad in ("m-fail", "m-drop", "m-hang", "m-limited"):
        assert rig.count(bad) >= 1, f"{bad} was never tried: the failover was not exercised"
    channels = rig.channels()
    assert channels["m-dead"]["failures"] >= 1
    assert channels["m-dead"]["last_error"], channels["m-dead"]


def test_failing_channels_stop_costing_requests_once_their_breakers_open(rig: Rig) -> None:
    # Continues the previous test: by now each failing channel has been tried, and after
    # breaker.failures consecutive failures it is skipped (no request reaches it while open).
    for _ in range(20):
        assert_answered(rig.chat("mixed"))
    for bad in ("m-fail", "m-drop", "m-hang"):
        assert rig.count(bad) <= BREAKER["failures"] + 2, (
            f"{bad} received {rig.count(bad)} requests; its breaker should have opened after "
            f"{BREAKER['failures']} (plus at most a half-open trial)"
        )
    assert rig.count("m-limited") == 1, "a channel resting after Retry-After: 60 was used again"


def test_streams_fail_over_before_the_first_byte_too(rig: Rig) -> None:
    # Priorities make the order certain: s-fail (500), then s-hang (first-byte timeout), then s-ok.
    for _ in range(8):
        body = {"model": "streamed", "messages": MESSAGES, "stream": True}
        response = rig.http.post("/v1/chat/completions", json=body)
        assert response.status_code == 200, response.text[:300]
        events = parse_sse(response.content)
        assert events[-1] == "[DONE]"
        chunks = [orjson.loads(e) for e in events[:-1]]
        assert not [c for c in chunks if "error" in c], events
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        assert text == reply_text({"messages": MESSAGES})
    assert rig.count("s-ok") == 8
    assert rig.stand_ins["s-fail"].requests[0].json["stream"] is True
    assert rig.stand_ins["s-hang"].requests[0].json["stream"] is True


def test_a_stream_cut_after_the_first_byte_is_reported_not_retried(rig: Rig) -> None:
    body = {"model": "cutting", "messages": MESSAGES, "stream": True}
    response = rig.http.post("/v1/chat/completions", json=body, timeout=10)
    assert response.status_code == 200
    events = parse_sse(response.content)
    chunks = [orjson.loads(e) for e in events if e != "[DONE]"]
    errors = [c for c in chunks if "error" in c]
    assert errors, f"the client got a silently truncated stream: {events}"
    assert chunks.index(errors[0]) == 2, "the error event must follow the 2 chunks the upstream sent"
    assert events[-1] == "[DONE]"
    assert rig.count("cut") == 1
    assert rig.count("cut-spare") == 0, "the stream was restarted on another channel after bytes were sent"
    cut = rig.channels()["cut"]
    assert cut["failures"] == 1 and cut["consecutive_failures"] == 1, (
        f"a cut stream must count as a failure: {cut}"
    )


def test_a_client_error_400_is_relayed_as_is_and_not_retried(rig: Rig) -> None:
    response = rig.chat("badreq")
    assert response.status_code == 400
    assert response.json() == {"error": ERROR_BODIES[400]}
    assert rig.count("bad400") == 1
    assert rig.count("bad400-spare") == 0, "a 400 (the request's own fault) was retried on another channel"
    assert rig.channels()["bad400"]["consecutive_failures"] == 0, "a client's 400 counted against the channel"


# -- weights and priorities ----------------------------------------------------------------------


async def test_weights_1_to_3_split_traffic_1_to_3_within_noise(rig: Rig) -> None:
    total, share = 400, 0.25
    async with httpx.AsyncClient(
        base_url=rig.gateway.url, headers={"Authorization": f"Bearer {CLIENT_KEY}"}, timeout=15
    ) as client:
        queue = iter(range(total))

        async def worker() -> list[int]:
            statuses = []
            for _ in queue:
                r = await client.post(
                    "/v1/chat/completions", json={"model": "weighted", "messages": MESSAGES}
                )
                statuses.append(r.status_code)
            return statuses

        results = await asyncio.gather(*(worker() for _ in range(8)))
    assert sorted({s for statuses in results for s in statuses}) == [200]
    assert rig.count("w1") + rig.count("w3") == total
    sigma = math.sqrt(total * share * (1 - share))
    assert abs(rig.count("w1") - total * share) <= 4 * sigma, (
        f"weight 1 of 4 got {rig.count('w1')} of {total} requests; expected {total * share:.0f} ± {4 * sigma:.0f}"
    )


def test_priority_1_is_used_only_when_every_priority_0_channel_is_down(rig: Rig) -> None:
    for _ in range(40):
        assert_answered(rig.chat("prio"))
    assert rig.count("p1") == 0, "the priority-1 channel took traffic while priority 0 was healthy"
    assert rig.count("p0a") > 0 and rig.count("p0b") > 0

    rig.stand_ins["p0a"].behaviour = "fail"
    rig.stand_ins["p0b"].behaviour = "fail"
    for i in range(10):
        assert_answered(rig.chat("prio"))
        assert rig.count("p1") == i + 1
    channels = rig.channels()
    assert channels["p0a"]["state"] == "open" and channels["p0b"]["state"] == "open", channels


def test_a_weight_0_channel_takes_traffic_only_when_the_weighted_ones_are_down(rig: Rig) -> None:
    for _ in range(20):
        assert_answered(rig.chat("drain"))
    assert rig.count("d-zero") == 0, "a drained (weight 0) channel took traffic while the weighted one was up"
    rig.stand_ins["d-main"].behaviour = "fail"
    for _ in range(5):
        assert_answered(rig.chat("drain"))
    assert rig.count("d-zero") == 5


# -- Retry-After, breakers, recovery ---------------------------------------------------------------


def test_a_channel_answering_429_is_not_used_before_its_retry_after(rig: Rig) -> None:
    rest = rig.stand_ins["rest"]
    rest.script("status 429 retry_after=2")
    assert_answered(rig.chat("rested"))  # 429 on `rest`, then answered by `rest-spare`
    assert rig.count("rest") == 1 and rig.count("rest-spare") == 1
    limited_at = rest.requests[0].received_at
    assert rig.channels()["rest"]["retry_after_until"], "the rest is not visible in /readyz"
    while time.monotonic() < limited_at + 1.8:
        assert_answered(rig.chat("rested"))
        time.sleep(0.05)
    assert rig.count("rest") == 1, "the channel was used again before its Retry-After (2 s) was over"
    time.sleep(max(0.0, limited_at + 2.3 - time.monotonic()))
    assert_answered(rig.chat("rested"))
    assert rig.count("rest") == 2, "the preferred channel was not used again once its Retry-After passed"
    assert rig.channels()["rest"]["consecutive_failures"] == 0, "a 429 counted towards the breaker"


def test_a_retry_after_given_as_an_http_date_is_honoured_too(rig: Rig) -> None:
    back_at = int(time.time()) + 3  # an HTTP date has whole seconds
    rig.stand_ins["dated"].script(
        Behaviour(kind="status", status=429, retry_after=formatdate(back_at, usegmt=True))
    )
    assert_answered(rig.chat("dated"))
    assert rig.count("dated") == 1 and rig.count("dated-spare") == 1
    while time.time() < back_at - 0.3:
        assert_answered(rig.chat("dated"))
        time.sleep(0.05)
    assert rig.count("dated") == 1, "the channel was used again before the date its Retry-After gave"
    time.sleep(max(0.0, back_at + 0.3 - time.time()))
    assert_answered(rig.chat("dated"))
    assert rig.count("dated") == 2, (
        "the channel was not used again once the date its Retry-After gave had passed"
    )


def test_a_failing_channel_opens_its_breaker_and_recovers_after_the_cooldown(rig: Rig) -> None:
    flaky = rig.stand_ins["flaky"]
    flaky.behaviour = "fail"
    for _ in range(BREAKER["failures"]):
        assert_answered(rig.chat("flaky"))
    assert rig.count("flaky") == BREAKER["failures"]
    opened = rig.channels()["flaky"]
    assert opened["state"] == "open", opened
    assert opened["consecutive_failures"] == BREAKER["failures"]
    assert opened["last_error"] == "server_error:500"
    assert opened["cooldown_until"] > time.time()

    # While open, requests go to the spare without touching the broken channel.
    for _ in range(5):
        assert_answered(rig.chat("flaky"))
    assert time.time() < opened["cooldown_until"], "too slow to check the open state (machine overloaded?)"
    assert rig.count("flaky") == BREAKER["failures"], "a request reached a channel whose breaker is open"

    # The CLI shows the same (by now a half-open probe may have failed once more and re-opened it).
    status = run_cli("channels", "status", "--json", "--url", rig.gateway.url)
    assert status.returncode == 0, status.stderr
    listed = {c["upstream"]: c for c in orjson.loads(status.stdout)}
    assert listed["flaky"]["state"] in ("open", "half_open")
    assert listed["flaky"]["consecutive_failures"] >= BREAKER["failures"]
    assert listed["flaky"]["last_error"] == "server_error:500"

    # The upstream heals; after the cooldown one trial (a probe or a request) closes the breaker.
    flaky.behaviour = "ok"
    deadline = time.monotonic() + BREAKER["cooldown_s"] + 5
    while rig.channels()["flaky"]["state"] != "closed" and time.monotonic() < deadline:
        assert_answered(rig.chat("flaky"))
        time.sleep(0.1)
    assert rig.channels()["flaky"]["state"] == "closed", rig.channels()["flaky"]
    before = rig.count("flaky")
    assert_answered(rig.chat("flaky"))
    assert rig.count("flaky") == before + 1, "the recovered channel (priority 0) did not take traffic again"


async def test_a_half_open_breaker_lets_exactly_one_trial_through(rig: Rig) -> None:
    for _ in range(BREAKER["failures"]):
        assert_answered(rig.chat("trial"))
    opened = rig.channels()["trial"]
    assert opened["state"] == "open", opened
    await asyncio.sleep(max(0.0, opened["cooldown_until"] - time.time()) + 0.1)
    async with httpx.AsyncClient(
        base_url=rig.gateway.url, headers={"Authorization": f"Bearer {CLIENT_KEY}"}, timeout=15
    ) as client:
        burst = await asyncio.gather(
            *(
                client.post("/v1/chat/completions", json={"model": "trial", "messages": MESSAGES})
                for _ in range(20)
            )
        )
    assert [r.status_code for r in burst] == [200] * 20
    # The trial is the health keeper's probe (it ticks once a second), never the users' burst: wait for it.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(rig.stand_ins["trial"].requests) <= BREAKER["failures"]:
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # room for a second trial to show up, if the breaker wrongly let one through
    trials = rig.stand_ins["trial"].requests[BREAKER["failures"] :]
    assert len(trials) == 1, (
        f"{len(trials)} requests reached the half-open channel "
        f"({[t.path for t in trials]}); exactly one trial may"
    )
    assert is_probe(trials[0]), "a user's request was the half-open trial"
    reopened = rig.channels()["trial"]
    assert reopened["state"] == "open", reopened
    # The trial may be the health keeper's probe (up to a second after the cooldown), so measure the
    # new cooldown from when the breaker reopened, not from now.
    assert reopened["cooldown_until"] - reopened["changed_at"] > BREAKER["cooldown_s"], (
        "the cooldown did not grow after a failed trial"
    )


def is_probe(request: Any) -> bool:
    body = request.json if isinstance(request.json, dict) else {}
    return body.get("max_tokens") == 1 and body.get("messages") == [{"role": "user", "content": "ping"}]


def test_a_users_request_never_waits_for_the_trial_of_a_hanging_channel(rig: Rig) -> None:
    # health.py: "the same task runs the probes the router asks for (half-open trials ...) so that
    # recovery does not cost a user's request". hp hangs; once its breaker is open, users keep
    # sending requests across the end of the cooldown: the trial should be the keeper's probe.
    for _ in range(BREAKER["failures"]):
        assert_answered(rig.chat("probed"))
    opened = rig.channels()["hp"]
    assert opened["state"] == "open", opened
    slowest = 0.0
    until = opened["cooldown_until"] + 1.5  # the keeper probes once a second
    while time.time() < until:
        started = time.monotonic()
        assert_answered(rig.chat("probed"))
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.02)
    # The keeper's probe is a one-token chat completion saying "ping"; anything else is a user's request.
    users = [
        r
        for r in rig.stand_ins["hp"].requests[BREAKER["failures"] :]
        if r.path == "/v1/chat/completions" and not is_probe(r)
    ]
    assert users == [], (
        f"{len(users)} user request(s) were the half-open trial of a hanging channel and "
        f"waited its first-byte timeout (slowest request {slowest:.2f} s)"
    )


def test_a_model_whose_every_channel_is_resting_answers_429_with_retry_after(rig: Rig) -> None:
    first = rig.chat("resting")
    second = rig.chat("resting")
    for response in (first, second):
        assert response.status_code == 429, f"{response.status_code}: {response.text}"
        assert 1 <= int(response.headers["retry-after"]) <= 5, response.headers
    assert rig.count("r429") == 1, "the upstream was asked again before its Retry-After"
    assert second.json()["error"]["code"] == "upstream_rate_limited"


# -- provider keys ----------------------------------------------------------------------------------


def test_a_refused_provider_key_is_skipped_and_requests_keep_succeeding(rig: Rig) -> None:
    for _ in range(10):
        assert_answered(rig.chat("keyed"))
    authorizations = rig.stand_ins["keyed"].authorizations
    assert authorizations.count(f"Bearer {GOOD_KEY}") == 10
    assert authorizations.count(f"Bearer {BAD_KEY}") == 1, (
        f"the refused key was used {authorizations.count(f'Bearer {BAD_KEY}')} times; once should disable it"
    )
    assert rig.channels()["keyed"]["state"] == "closed"


def test_several_provider_keys_of_an_upstream_are_used_in_turn(rig: Rig) -> None:
    for _ in range(10):
        assert_answered(rig.chat("pair"))
    used = rig.stand_ins["pair"].authorizations
    assert (
        used.count("Bearer sk-provider-pair-one-0a1b") == 5
        and used.count("Bearer sk-provider-pair-two-2c3d") == 5
    )
    assert all(a != b for a, b in itertools.pairwise(used)), f"keys not used in turn: {used}"


def test_an_upstream_403_disables_that_channel_and_the_request_goes_elsewhere(rig: Rig) -> None:
    assert_answered(rig.chat("forbidden"))
    assert rig.count("forbidden") == 1 and rig.count("forbidden-spare") == 1
    assert rig.channels()["forbidden"]["state"] == "disabled"
    for _ in range(5):
        assert_answered(rig.chat("forbidden"))
    assert rig.count("forbidden") == 1, "a disabled channel was sent requests"


def test_an_upstream_refusing_the_gateways_only_key_is_not_reported_as_the_clients_key(rig: Rig) -> None:
    response = rig.chat("revoked")
    assert response.status_code == 502, f"{response.status_code}: {response.text}"
    error = response.json()["error"]
    assert error["code"] == "upstream_auth_error"
    assert error["code"] != "invalid_api_key" and "Incorrect API key" not in error["message"]
    assert BAD_KEY not in response.text and "sk-upst" not in response.text
    assert rig.channels()["revoked"]["state"] == "disabled"


def test_a_model_whose_only_channel_is_disabled_answers_503_without_promising_a_retry_time(rig: Rig) -> None:
    # Continues the previous test: `revoked` lost its only key. Waiting does not cure that (docs/channels.md:
    # "503, with Retry-After when a breaker's cooldown says when"), so no Retry-After may invite retries.
    assert rig.channels()["revoked"]["state"] == "disabled"
    before = rig.count("revoked")
    response = rig.chat("revoked")
    assert response.status_code == 503, f"{response.status_code}: {response.text}"
    error = response.json()["error"]
    assert error["code"] != "invalid_api_key"
    assert "retry-after" not in response.headers, (
        f"Retry-After: {response.headers['retry-after']} on a channel only a person can restore"
    )
    assert "retry shortly" not in error["message"], error["message"]
    assert rig.count("revoked") == before, "a disabled channel was sent a request"


# -- a client that leaves ------------------------------------------------------------------------


def test_a_client_leaving_during_a_retry_ends_it(rig: Rig) -> None:
    # leave-hang never answers (first-byte timeout 0.5 s), so the gateway retries on leave-slow
    # (answers after 5 s); the client gives up at 1.5 s, during that retry.
    with pytest.raises(httpx.TimeoutException):
        rig.http.post("/v1/chat/completions", json={"model": "leaving", "messages": MESSAGES}, timeout=1.5)
    slow = rig.stand_ins["leave-slow"]
    assert rig.count("leave-hang") == 1
    assert slow.wait_for(lambda: len(slow.requests) == 1, timeout=2), "the retry never reached leave-slow"
    # Whether leave-slow sees the client go before it answers depends on the upstream client (aiohttp
    # closes the connection at once, pyreqwest cannot before the headers): tests/e2e/test_upstream_cancel.py.
    time.sleep(FIRST_BYTE_S + 0.3)  # long enough for a third attempt to have started, were there one
    assert rig.count("leave-last") == 0, "a further attempt started for a client that had left"
    channels = rig.channels()
    assert channels["leave-slow"]["in_flight"] == 0 and channels["leave-hang"]["in_flight"] == 0, channels
    assert channels["leave-slow"]["consecutive_failures"] == 0, (
        "the client leaving counted against the channel"
    )


# -- what clients and operators see --------------------------------------------------------------


def test_errors_name_no_upstream_and_no_key_but_the_logs_name_the_failed_channel(rig: Rig) -> None:
    response = rig.chat("doomed")
    assert response.status_code >= 500, f"{response.status_code}: {response.text}"
    assert set(response.json()["error"]) >= {"message", "type", "param", "code"}
    visible = response.text + "".join(f"{k}: {v}\n" for k, v in response.headers.items())
    for secret in ("acme", ACME_KEY, "127.0.0.1", "internal-east"):
        assert secret not in visible, f"the client-visible error contains {secret!r}: {visible}"
    stderr = rig.gateway.stderr_text()
    failed = [line for line in stderr.splitlines() if "acme-internal-east" in line]
    assert failed, f"no log line names the failed channel:\n{stderr[-2000:]}"
    assert ACME_KEY not in rig.gateway.logs()


def test_no_attempt_stays_in_flight_once_its_request_is_over(rig: Rig) -> None:
    # Probes of open breakers count as in flight while they run (0.5 s against a hanging upstream), so
    # each channel must be seen at 0 at least once within a few seconds; a leaked count never is.
    stuck = {name: c["in_flight"] for name, c in rig.channels().items() if c["in_flight"]}
    deadline = time.monotonic() + 4
    while stuck and time.monotonic() < deadline:
        time.sleep(0.05)
        now = rig.channels()
        stuck = {name: count for name, count in stuck.items() if now[name]["in_flight"]}
    assert stuck == {}, f"channels still count requests in flight after every test request ended: {stuck}"


# -- the CLI ----------------------------------------------------------------------------------------


def test_channels_status_prints_a_table_of_every_channel(rig: Rig, tmp_path: Any) -> None:
    config = tmp_path / "sluicegate.yaml"
    config.write_text(yaml.safe_dump({"server": {"host": "127.0.0.1", "port": rig.gateway.port}}))
    result = run_cli("channels", "status", "--config", str(config))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["CHANNEL", "UPSTREAM", "STATE"]
    rows = {line.split()[1]: line.split() for line in lines[1:]}
    assert set(rows) == {u for routes in MODELS.values() for u in (c["upstream"] for c in routes)}
    assert rows["w1"][2] == "closed"
    for secret in (BAD_KEY, GOOD_KEY, ACME_KEY):
        assert secret not in result.stdout + result.stderr


def test_channels_status_fails_clearly_when_the_gateway_is_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli("channels", "status", "--url", url)
    assert result.returncode != 0
    assert "cannot reach the gateway" in result.stderr and url in result.stderr
    assert "Traceback" not in result.stderr
