"""The edge guards against a real gateway and a stand-in upstream, tried the way an attacker would.

Each test sends what a hostile or broken client sends (raw sockets where an HTTP library would tidy
the request up) and asserts both what the client is told and that the upstream, which holds the
provider key, never received the forbidden request. See docs/security.md for the threat model.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from metering_kit import LogTable, wait_until
from support.gateway import PROVIDER_KEY, Gateway, child_env, free_port, http_get, start_gateway
from support.upstream import Upstream

EMB_KEY = "sk-sec-embeddings-only-0001"
NARROW_KEY = "sk-sec-narrow-model-0002"
CONC_KEY = "sk-sec-concurrency-two-0003"
NET_KEY = "sk-sec-network-rule-0004"
STORE_KEY = "sk-sec-store-bodies-0005"
OPEN_KEY = "sk-sec-anything-goes-0006"
ADMIN_KEY = "sec-admin-key-0123456789abcdef"
BODY_IDLE_S = 1.0
BODY_TOTAL_S = 4.0


def security_config(upstream_url: str, database: str, **sections: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "database": database,
        "admin_key": ADMIN_KEY,
        "keys": [
            {
                "key": EMB_KEY,
                "name": "emb",
                "endpoints": ["embeddings"],
                "models": ["text-embedding-3-small"],
            },
            {"key": NARROW_KEY, "name": "narrow", "models": ["gpt-4o-mini", "whisper-1"]},
            {"key": CONC_KEY, "name": "conc", "concurrency": 2},
            {"key": NET_KEY, "name": "net", "networks": ["198.51.100.0/24"]},
            {"key": STORE_KEY, "name": "store", "store_bodies": True},
            {"key": OPEN_KEY, "name": "open"},
        ],
        "upstreams": {"up": {"base_url": upstream_url, "api_key": PROVIDER_KEY}},
        "models": {
            "gpt-4o-mini": "up",
            "gpt-4o": "up",
            "text-embedding-3-small": "up",
            "whisper-1": "up",
        },
        "server": {
            "trusted_proxies": ["127.0.0.1/32"],
            "body_timeout_s": BODY_TOTAL_S,
            "body_idle_timeout_s": BODY_IDLE_S,
        },
        "passthrough": {"enabled": True, "upstream": "up"},
        "metering": {"flush_interval_s": 0.2},
    }
    config.update(sections)
    return config


class Edge:
    def __init__(self, gateway: Gateway, upstream: Upstream, table: LogTable) -> None:
        self.gateway = gateway
        self.upstream = upstream
        self.table = table

    @property
    def port(self) -> int:
        return self.gateway.port


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    database = f"sqlite:///{tmp_path_factory.mktemp('security') / 'sec.db'}"
    with Upstream() as upstream:
        gateway = start_gateway(security_config(upstream.url, database))
        try:
            yield Edge(gateway, upstream, LogTable(database))
        finally:
            gateway.stop()


@pytest.fixture
def sec(edge: Edge) -> Edge:
    edge.upstream.reset()
    return edge


# -- raw HTTP ---------------------------------------------------------------------------------------------


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return orjson.loads(self.body)

    def __repr__(self) -> str:
        return f"<Answer {self.status} {self.body[:300]!r}>"


def read_answer(sock: socket.socket) -> Answer:
    """One HTTP/1.1 response with a Content-Length (every gateway answer here has one)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a response: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Answer(status, headers, rest[:length])


def raw(
    port: int,
    method: str,
    target: str,
    *,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: bytes = b"",
    timeout: float = 20.0,
) -> Answer:
    """Send the request line exactly as given (no client-side normalisation) and read the answer."""
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in pairs]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        return read_answer(sock)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


CHAT = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})


def assert_openai_error(answer: Answer, status: int, code: str) -> dict[str, Any]:
    assert answer.status == status, answer
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code, answer
    return error


# -- 1. paths ----------------------------------------------------------------------------------------------

HOSTILE_PATHS = [
    "/v1/embeddings/x/../../chat/completions",
    "/v1/../x",
    "/v1/./chat/completions",
    "/v1/%2e%2e/x",
    "/v1/%2E%2e/x",
    "/v1/embeddings/%2e%2e/%2E%2E/chat/completions",
    "/v1/%252e%252e/x",
    "/v1/a%5cb",
    "/v1/a\\..\\chat/completions",
    "/v1//chat/completions",
    "/v1/chat/completions%00",
    "/v1/chat%01/completions",
    "/v1/chat%0d%0aX-Injected:%201/completions",
    "/v1/..;/x",
    "/passthrough/v1/../../x",
    "/passthrough/v1/%2e%2e/%2e%2e/x",
    "/admin/../v1/chat/completions",
    "/x/%2e%2e/healthz",
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_hostile_paths_are_refused_with_invalid_path_and_never_forwarded(sec: Edge, path: str) -> None:
    answer = raw(
        sec.port, "POST", path, headers={**bearer(EMB_KEY), "Content-Type": "application/json"}, body=CHAT
    )
    error = assert_openai_error(answer, 400, "invalid_path")
    assert error["type"] == "invalid_request_error"
    assert sec.upstream.requests == []


def test_a_hostile_path_is_refused_before_authentication(sec: Edge) -> None:
    """No key at all: the answer is the path's 400, not a 401 (the path is checked first)."""
    answer = raw(sec.port, "POST", "/v1/embeddings/x/../../chat/completions", body=CHAT)
    assert_openai_error(answer, 400, "invalid_path")
    assert sec.upstream.requests == []


def test_an_encoded_slash_is_a_slash_in_the_one_path_checked_and_forwarded(sec: Edge) -> None:
    """Granian decodes `%2f`; the key's endpoint rule sees the path the upstream would be sent."""
    refused = raw(sec.port, "POST", "/v1/chat%2fcompletions", headers=bearer(EMB_KEY), body=CHAT)
    assert_openai_error(refused, 403, "endpoint_not_allowed")
    assert sec.upstream.requests == []
    answer = raw(sec.port, "POST", "/v1/chat%2fcompletions", headers=bearer(OPEN_KEY), body=CHAT)
    assert answer.status == 200, answer
    assert [r.path for r in sec.upstream.requests] == ["/v1/chat/completions"]


# -- 2. bodies ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("Application/JSON", b'  {"model": "gpt-4o", "input": "hi"}'),
        ("APPLICATION/json; charset=utf-8", b'{"model": "gpt-4o", "input": "hi"}'),
        ("text/plain", b'\n\t {"model": "gpt-4o", "input": "hi"}'),
    ],
)
def test_a_json_body_in_any_disguise_has_its_model_checked(sec: Edge, content_type: str, body: bytes) -> None:
    answer = raw(
        sec.port,
        "POST",
        "/v1/responses",
        headers={**bearer(NARROW_KEY), "Content-Type": content_type},
        body=body,
    )
    assert_openai_error(answer, 403, "model_not_allowed")
    assert sec.upstream.requests == []


def test_a_body_whose_model_cannot_be_read_is_refused_for_a_key_with_a_model_list(sec: Edge) -> None:
    """A path with no codec (relayed as it is) and a body that is not JSON: the model is unknown."""
    answer = raw(
        sec.port,
        "POST",
        "/v1/moderations",
        headers={**bearer(NARROW_KEY), "Content-Type": "application/x-www-form-urlencoded"},
        body=b"model=gpt-4o&input=hi",
    )
    error = assert_openai_error(answer, 403, "model_not_allowed")
    assert "could not read a model" in error["message"]
    assert sec.upstream.requests == []


def test_a_form_body_on_a_json_api_is_refused_before_the_upstream(sec: Edge) -> None:
    """/v1/responses takes only JSON (its codec reads it): a form body is a 400, never forwarded."""
    answer = raw(
        sec.port,
        "POST",
        "/v1/responses",
        headers={**bearer(NARROW_KEY), "Content-Type": "application/x-www-form-urlencoded"},
        body=b"model=gpt-4o&input=hi",
    )
    assert_openai_error(answer, 400, "invalid_json")
    assert sec.upstream.requests == []


def test_a_disguised_json_body_is_metered_under_its_model(sec: Edge) -> None:
    """A leading space and a capitalised type no longer make a request's model (and price) vanish."""
    answer = raw(
        sec.port,
        "POST",
        "/v1/responses",
        headers={**bearer(OPEN_KEY), "Content-Type": "Application/JSON; charset=utf-8"},
        body=b'   {"model": "gpt-4o-mini", "input": "hi"}',
    )
    assert answer.status == 200, answer
    row = wait_until(lambda: sec.table.by_request_id(answer.headers["x-request-id"]))
    assert row is not None and row["model_requested"] == "gpt-4o-mini"
    # The stand-in is chat-only, so the Responses call reached it translated, under the same model.
    assert sec.upstream.last.json["model"] == "gpt-4o-mini"


# -- 3. multipart ------------------------------------------------------------------------------------------


def multipart(*fields: tuple[str, str], boundary: str = "sec-boundary") -> tuple[str, bytes]:
    """An upload: the file first, then the fields in order."""
    file_part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode() + b"RIFF0000WAVE\r\n"
    parts = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields
    )
    return f"multipart/form-data; boundary={boundary}", file_part + parts + f"--{boundary}--\r\n".encode()


def test_two_different_model_fields_are_refused_for_a_key_with_a_model_list(sec: Edge) -> None:
    # The old reader took the last one (allowed); an upstream reading the first one gets gpt-4o.
    content_type, body = multipart(("model", "gpt-4o"), ("model", "whisper-1"))
    answer = raw(
        sec.port,
        "POST",
        "/v1/audio/transcriptions",
        headers={**bearer(NARROW_KEY), "Content-Type": content_type},
        body=body,
    )
    assert_openai_error(answer, 403, "model_not_allowed")
    assert sec.upstream.requests == []


def test_a_hostile_multipart_body_does_not_stall_the_worker(sec: Edge) -> None:
    """The old regex needed ~16 s for 280 KB of this (and hours for 8 MiB); the worker must keep
    answering /healthz while it reads the model (the 32 MiB bound is tested in tests/protocol)."""
    body = (
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
        + b'name="model"\r\n' * (8 * 1024 * 1024 // 14)
    )
    worst_health = 0.0
    result: list[Answer | BaseException] = []

    def send() -> None:
        try:
            result.append(
                raw(
                    sec.port,
                    "POST",
                    "/v1/audio/transcriptions",
                    headers={**bearer(NARROW_KEY), "Content-Type": "multipart/form-data; boundary=x"},
                    body=body,
                    timeout=60,
                )
            )
        except OSError as exc:
            result.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    while sender.is_alive():
        t0 = time.monotonic()
        status, _ = _get(sec.port, "/healthz", timeout=30)
        worst_health = max(worst_health, time.monotonic() - t0)
        assert status == 200
    sender.join()
    assert len(result) == 1 and isinstance(result[0], Answer), f"the hostile upload got no answer: {result}"
    assert_openai_error(result[0], 403, "model_not_allowed")
    assert worst_health < 5.0, f"/healthz took {worst_health:.2f} s while the body was parsed"
    assert sec.upstream.requests == []


def _get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    return http_get("127.0.0.1", port, path, timeout=timeout)


# -- 4. slow bodies ----------------------------------------------------------------------------------------


def open_slow_body(port: int, key: str, declared: int = 1000, first: bytes = b'{"model"') -> socket.socket:
    """A request whose headers and first bytes are sent, and the rest of the body never."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
        ).encode()
        + first
    )
    return sock


def test_a_body_that_stops_arriving_gets_408_after_the_idle_timeout(sec: Edge) -> None:
    sock = open_slow_body(sec.port, OPEN_KEY)
    t0 = time.monotonic()
    with sock:
        answer = read_answer(sock)
    waited = time.monotonic() - t0
    assert_openai_error(answer, 408, "request_timeout")
    assert answer.headers.get("connection") == "close"
    assert waited < BODY_TOTAL_S + 10
    assert sec.upstream.requests == []


def test_a_body_trickling_in_gets_408_after_the_total_timeout(sec: Edge) -> None:
    sock = open_slow_body(sec.port, OPEN_KEY, declared=100_000, first=b"{")
    t0 = time.monotonic()
    answer: Answer | None = None
    with sock:
        sock.settimeout(BODY_IDLE_S / 4)
        while time.monotonic() - t0 < BODY_TOTAL_S + 20:
            try:
                sock.sendall(b" ")  # well inside the idle timeout: only the total deadline can end it
            except OSError:
                break
            try:
                sock.settimeout(BODY_IDLE_S / 4)
                peek = sock.recv(1, socket.MSG_PEEK)
            except TimeoutError:
                continue
            if peek:
                sock.settimeout(10)
                answer = read_answer(sock)
                break
    assert answer is not None, "the trickling body was never cut off"
    assert_openai_error(answer, 408, "request_timeout")
    assert time.monotonic() - t0 >= BODY_TOTAL_S - 0.5
    assert sec.upstream.requests == []


def chat_as(port: int, key: str) -> Answer:
    return raw(port, "POST", "/v1/chat/completions", headers=bearer(key), body=CHAT)


def test_a_key_with_concurrency_2_cannot_hold_more_slow_bodies_than_that(sec: Edge) -> None:
    """Two slow uploads hold the key's two slots from the moment their key is read; a third request
    of the key is refused at once, other keys are served, and the slots come back on the 408s."""
    outcome: tuple[Answer, Answer, list[Answer]] | None = None
    for _ in range(5):
        slow = []
        for _ in range(2):
            slow.append(open_slow_body(sec.port, CONC_KEY))
            # A barrier, not a sleep: a whole request answered after the slow one's headers were sent
            # (the worker reads connections in turn), so the probe below rarely races ahead of it.
            _get(sec.port, "/healthz")
        try:
            probe = chat_as(sec.port, CONC_KEY)
            deadline = time.monotonic() + BODY_IDLE_S / 2
            while probe.status != 429 and time.monotonic() < deadline:
                probe = chat_as(sec.port, CONC_KEY)
            other = chat_as(sec.port, OPEN_KEY)
            for sock in slow:
                sock.settimeout(30)
            answers = [read_answer(sock) for sock in slow]
        finally:
            for sock in slow:
                sock.close()
        # A probe that raced ahead of a slow request made that one the refused one: try again.
        if all(a.status == 408 for a in answers):
            outcome = (probe, other, answers)
            break
    assert outcome is not None, f"the slow requests never both held their slots: {answers}"
    probe, other, answers = outcome
    error = assert_openai_error(probe, 429, "rate_limit_exceeded")
    assert "concurrent" in error["message"]
    assert other.status == 200, "another key was starved by the slow bodies"
    for answer in answers:
        assert_openai_error(answer, 408, "request_timeout")
    again = wait_until(lambda: chat_as(sec.port, CONC_KEY).status == 200, timeout=10)
    assert again, "the timed-out requests kept their concurrency slots"


# -- 5. X-Forwarded-For ------------------------------------------------------------------------------------


def test_a_second_forwarded_for_line_added_by_the_proxy_is_believed(sec: Edge) -> None:
    """The client wrote an allowed address itself; the trusted proxy appended the real one on a new line."""
    refused = raw(
        sec.port,
        "POST",
        "/v1/chat/completions",
        headers=[
            *bearer(NET_KEY).items(),
            ("X-Forwarded-For", "198.51.100.7"),
            ("X-Forwarded-For", "203.0.113.5"),
        ],
        body=CHAT,
    )
    assert_openai_error(refused, 403, "network_not_allowed")
    assert sec.upstream.requests == []
    allowed = raw(
        sec.port,
        "POST",
        "/v1/chat/completions",
        headers=[
            *bearer(NET_KEY).items(),
            ("X-Forwarded-For", "203.0.113.5"),
            ("X-Forwarded-For", "198.51.100.9"),
        ],
        body=CHAT,
    )
    assert allowed.status == 200, allowed


# -- 6. pass-through -----------------------------------------------------------------------------------------


def test_pass_through_is_off_unless_configured(gateway_factory: Any, upstream: Upstream) -> None:
    gateway = gateway_factory(
        {
            "upstreams": {"up": {"base_url": upstream.url, "api_key": PROVIDER_KEY}},
            "models": {"gpt-4o-mini": "up"},
        }
    )
    answer = raw(
        gateway.port,
        "POST",
        "/passthrough/v1/chat/completions",
        headers=bearer("sk-client-own-key-123456"),
        body=CHAT,
    )
    assert answer.status == 404, answer
    assert upstream.requests == []


def serve_briefly(
    args: list[str], config: dict[str, Any] | None, tmp_path: Path, within: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run `sluicegate serve`; a gateway that starts instead of refusing is killed and reported."""
    command = [sys.executable, "-m", "sluicegate", "serve", *args]
    if config is not None:
        path = tmp_path / "sluicegate.yaml"
        path.write_text(orjson.dumps(config).decode())
        command += ["--config", str(path)]
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=within, env=child_env(), cwd=tmp_path
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`sluicegate serve {' '.join(args)}` started serving instead of refusing")


def test_enabled_pass_through_counts_as_open_off_loopback(tmp_path: Path, upstream: Upstream) -> None:
    config = {
        "keys": [{"key": OPEN_KEY, "name": "k"}],
        "upstreams": {"up": {"base_url": upstream.url, "api_key": PROVIDER_KEY}},
        "passthrough": {"enabled": True},
    }
    result = serve_briefly(["--host", "0.0.0.0", "--port", str(free_port())], config, tmp_path, within=30)
    assert result.returncode == 2
    assert "pass-through" in result.stderr
    assert "Traceback" not in result.stderr


# -- 7. --host localhost -------------------------------------------------------------------------------------


def test_host_localhost_serves_on_loopback(tmp_path: Path) -> None:
    gateway = start_gateway({}, host="localhost")
    try:
        status, _ = _get(gateway.port, "/healthz")
        assert status == 200
        assert "Traceback" not in gateway.stderr_text()
    finally:
        gateway.stop()


def test_a_host_name_that_is_no_address_is_refused_in_one_line(tmp_path: Path) -> None:
    result = serve_briefly(
        ["--host", "gateway.example", "--port", str(free_port())], None, tmp_path, within=30
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "gateway.example" in result.stderr and "IP address" in result.stderr


# -- 8. SIGTERM drain ----------------------------------------------------------------------------------------


def test_a_request_on_a_kept_alive_connection_during_the_drain_gets_503_and_connection_close(
    upstream: Upstream, tmp_path: Path
) -> None:
    config = security_config(
        upstream.url, f"sqlite:///{tmp_path / 'drain.db'}", server={"shutdown_grace_s": 20}
    )
    gateway = start_gateway(config)
    try:
        kept = socket.create_connection(("127.0.0.1", gateway.port), timeout=20)
        request = (
            b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + OPEN_KEY.encode() + b"\r\n\r\n"
        )
        kept.sendall(request)
        assert read_answer(kept).status == 200
        # A slow stream keeps the worker draining.
        upstream.behaviour = "slow_stream delay=0.5 chunks=40"
        streaming = threading.Thread(
            target=lambda: httpx.post(
                f"{gateway.base_url}/chat/completions",
                json={"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "x"}]},
                headers=bearer(OPEN_KEY),
                timeout=60,
            ),
            daemon=True,
        )
        streaming.start()
        assert upstream.wait_for(lambda: len(upstream.requests) == 1, timeout=20)
        gateway.process.send_signal(signal.SIGTERM)
        assert wait_until(lambda: "SIGTERM:" in gateway.logs(), timeout=20), gateway.logs()[-2000:]
        kept.sendall(request)
        answer = read_answer(kept)
        assert_openai_error(answer, 503, "gateway_shutdown")
        assert answer.headers.get("connection") == "close"
        kept.close()
        # A new connection meanwhile is told the same, and is never served.
        fresh = raw(gateway.port, "POST", "/v1/chat/completions", headers=bearer(OPEN_KEY), body=CHAT)
        assert_openai_error(fresh, 503, "gateway_shutdown")
        assert len(upstream.requests) == 1
    finally:
        gateway.stop(signal.SIGKILL)


# -- 9. a crashed worker ---------------------------------------------------------------------------------------


def worker_pids(gateway: Gateway) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{gateway.pid}/task/{gateway.pid}/children").read_text().split()]
    except OSError:
        return []


def test_a_killed_worker_is_respawned_and_counted(upstream: Upstream, tmp_path: Path) -> None:
    config = {
        "database": f"sqlite:///{tmp_path / 'respawn.db'}",
        "upstreams": {"up": {"base_url": upstream.url, "api_key": PROVIDER_KEY}},
        "models": {"gpt-4o-mini": "up"},
        "server": {"workers": 2},
    }
    gateway = start_gateway(config)
    try:
        first = wait_until(lambda: (p := worker_pids(gateway)) and len(p) == 2 and p, timeout=30)
        assert first, f"expected 2 workers, found {worker_pids(gateway)}"
        # Both workers must have started (left their markers) before one is killed: a worker killed
        # before its marker is not known to have existed, so its replacement would not count as a restart
        # (CI killed one mid-start on a loaded machine).
        run_dir = Path(
            next(
                v.split("=", 1)[1]
                for v in Path(f"/proc/{first[0]}/environ").read_bytes().decode().split("\0")
                if v.startswith("SLUICEGATE_RUN_DIR=")
            )
        )
        assert wait_until(lambda: len(list(run_dir.glob("worker-*"))) >= 2, timeout=60), (
            "workers never started"
        )
        victim = first[0]
        os.kill(victim, signal.SIGKILL)
        replaced = wait_until(
            lambda: (p := worker_pids(gateway)) and len(p) == 2 and victim not in p and p, timeout=60
        )
        assert replaced, (
            f"no new worker replaced {victim}: {worker_pids(gateway)}; running={gateway.running()}"
        )
        assert gateway.running()
        assert set(replaced) - set(first), "the new worker has a new pid"

        def restarts() -> float | None:
            # While Granian replaces a worker there can be a moment with no acceptor on the port:
            # a refused connection then means "not yet", not a failure.
            try:
                status, body = _get(gateway.port, "/metrics")
            except OSError:
                return None
            for line in body.decode().splitlines():
                if line.startswith("sluicegate_worker_restarts_total"):
                    value = float(line.split()[-1])
                    return value if value >= 1 else None
            return None

        assert wait_until(restarts, timeout=60) == 1.0

        def healthy() -> bool:
            try:
                return _get(gateway.port, "/healthz")[0] == 200
            except OSError:
                return False

        assert wait_until(healthy, timeout=30)
    finally:
        gateway.stop()


# -- 10. metric labels ---------------------------------------------------------------------------------------------


def test_junk_model_names_never_become_metric_labels(sec: Edge) -> None:
    for n in range(5):
        body = orjson.dumps({"model": f"junk-model-{n}", "messages": []})
        answer = raw(sec.port, "POST", "/v1/chat/completions", headers=bearer(OPEN_KEY), body=body)
        assert_openai_error(answer, 404, "model_not_found")

    def scrape() -> str | None:
        text = _get(sec.port, "/metrics")[1].decode()
        return text if 'model="other"' in text else None

    text = wait_until(scrape, timeout=10)
    assert text, "the junk requests were not counted as model other"
    assert "junk-model" not in text


# -- 11. stored bodies -------------------------------------------------------------------------------------------


def test_stored_bodies_mask_the_admin_key_aws_keys_and_jwts(sec: Edge) -> None:
    jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N"
    secrets = [ADMIN_KEY, "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", jwt]
    content = (
        f"admin {ADMIN_KEY}; aws_access_key_id=AKIAIOSFODNN7EXAMPLE "
        f"aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY; token {jwt}"
    )
    body = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]})
    answer = raw(sec.port, "POST", "/v1/chat/completions", headers=bearer(STORE_KEY), body=body)
    assert answer.status == 200, answer
    row = wait_until(lambda: sec.table.by_request_id(answer.headers["x-request-id"]))
    assert row is not None and row["request_body"]
    for secret in secrets:
        assert secret not in row["request_body"]
        assert secret not in (row["response_body"] or "")
    assert "[REDACTED]" in row["request_body"]
