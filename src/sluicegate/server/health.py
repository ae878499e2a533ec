"""Channel health off the request path: sharing it between processes, and active probes.

The router (sans-IO) keeps each channel's breaker state in the process. A background task, once a
second, publishes what changed and merges what other workers and nodes saw, through a HealthStore:
in memory for one process, a Redis hash when `redis:` is configured, so a provider that went down is
avoided by every node after one of them found out. The same task runs the probes the router asks for
(half-open trials, refused keys, idle channels) so that recovery does not cost a user's request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from sluicegate.protocol.errors import UpstreamUnavailable
from sluicegate.routing import Probe, Router, classify
from sluicegate.routing.healthstore import record_identity
from sluicegate.routing.retry import CLIENT_ERROR, CONNECT_FAILED, FIRST_BYTE_TIMED_OUT
from sluicegate.routing.router import PROBE_MANUAL

log = logging.getLogger("sluicegate.health")

# Keep the newest record per identity; a Retry-After hold is a maximum, not last-writer-wins.
_PUBLISH = """
for i = 1, #ARGV, 2 do
  local field, new = ARGV[i], cjson.decode(ARGV[i + 1])
  local raw = redis.call('HGET', KEYS[1], field)
  if not raw then
    redis.call('HSET', KEYS[1], field, ARGV[i + 1])
  else
    local held = cjson.decode(raw)
    local hold = math.max(tonumber(new['retry_after_until']) or 0, tonumber(held['retry_after_until']) or 0)
    if (tonumber(new['changed_at']) or 0) > (tonumber(held['changed_at']) or 0) then held = new end
    if hold > 0 and held['kind'] ~= 'key' then held['retry_after_until'] = hold end
    redis.call('HSET', KEYS[1], field, cjson.encode(held))
  end
end
redis.call('EXPIRE', KEYS[1], 86400)
return 1
"""


class RedisHealthStore:
    """Health records in one Redis hash: field = record identity, value = the record as JSON."""

    def __init__(self, redis: Any, key: str = "sluicegate:health") -> None:
        self._redis = redis
        self._key = key
        self._script = redis.register_script(_PUBLISH)

    async def publish(self, records: Iterable[Mapping[str, Any]]) -> None:
        args: list[bytes] = []
        for record in records:
            args.append(orjson.dumps(record_identity(record)))
            args.append(orjson.dumps(dict(record)))
        if args:
            await self._script(keys=[self._key], args=args)

    async def fetch(self) -> list[dict[str, Any]]:
        raw = await self._redis.hgetall(self._key)
        out = []
        for value in raw.values():
            with contextlib.suppress(orjson.JSONDecodeError):
                out.append(orjson.loads(value))
        return out


class HealthKeeper:
    """The once-a-second task: share health, run due probes."""

    def __init__(
        self, router: Router, store: Any, upstreams: Mapping[str, Any], client: Any, *, interval: float = 1.0
    ) -> None:
        self._router = router
        self._store = store
        self._upstreams = upstreams
        self._client = client
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._probes: set[asyncio.Task[None]] = set()

    def replace(self, router: Router, upstreams: Mapping[str, Any]) -> None:
        """Follow a rebuilt router (catalog change); probes already running report to the old one."""
        self._router = router
        self._upstreams = upstreams

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sluicegate-health")

    async def _run(self) -> None:
        failures = 0
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sync()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if failures in (1, 30):
                    log.warning("could not share channel health: %s", type(exc).__name__)
            for probe in self._router.due_probes():
                task = asyncio.get_running_loop().create_task(self._probe(probe))
                self._probes.add(task)
                task.add_done_callback(self._probes.discard)

    async def sync(self) -> None:
        if self._store is None:
            return
        changes = self._router.take_changes()
        if changes:
            await self._store.publish(changes)
        self._router.merge(await self._store.fetch())

    async def test(self, name: str) -> dict[str, Any] | None:
        """Probe one channel now, for a person (POST /admin/channels/{name}/test); None if unknown.

        The same one-token request as a health probe, and its outcome moves the breaker the same way:
        a passing test closes a half-open or refused channel, a failing one counts as a failure.
        Answers what a person needs: ok or not, latency, status, and the reply or the error.
        """
        router = self._router
        channel = router.channel(name)
        if channel is None:
            return None
        upstream = self._upstreams.get(channel.upstream)
        ring = router.upstream_ring(channel.upstream)
        probe = Probe(channel, ring.next() if ring is not None else None, PROBE_MANUAL)
        result: dict[str, Any] = {"channel": name, "upstream": channel.upstream, "model": channel.model}
        started = time.perf_counter()
        if upstream is None or upstream.kind == "mock":
            from sluicegate.providers import mock

            answer = mock.chat_completion({"messages": [{"role": "user", "content": "ping"}]}, channel.model)
            router.record_probe(probe, None, time.perf_counter() - started, claimed=False)
            return {**result, "ok": True, "status": 200, "latency_ms": _ms(started), "answer": _reply(answer)}
        if upstream.missing_key:
            return {**result, "ok": False, "status": None, "latency_ms": None,
                    "error": "the upstream has no API key configured"}  # fmt: skip
        status, answer, failure, latency = await self._exchange(upstream, channel, probe.key)
        router.record_probe(probe, failure, None if failure else latency, claimed=False)
        log.info("test of channel %s: %s", name, status)
        out = {**result, "ok": status is not None and status < 400, "status": status,
               "latency_ms": round(latency * 1000, 1)}  # fmt: skip
        if out["ok"]:
            out["answer"] = _reply(answer)
        else:
            out["error"] = _error_text(answer)
        return out

    async def _exchange(
        self, upstream: Any, channel: Any, key: str | None
    ) -> tuple[int | None, bytes, Any, float]:
        """The probe request: a one-token chat completion on the channel's own model (or GET /models).

        Returns (status or None when nothing answered, body, the failure Outcome or None, seconds).
        A 4xx that is the request's fault still shows the upstream answers and accepts the key: no failure.
        """
        key_index = int(key) if key is not None else None
        model = channel.model or None
        path = "/v1/chat/completions" if model else "/v1/models"
        pending = upstream.pending()
        if pending is not None:
            try:
                await pending
            except UpstreamUnavailable as exc:  # no token yet (Vertex): the channel is not back
                return None, exc.message.encode(), CONNECT_FAILED, 0.0
        req = upstream.request(path, "", model, {"content-type": "application/json"}, key_index)
        body = (
            orjson.dumps({"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "ping"}]})
            if model
            else None
        )
        started = time.perf_counter()
        try:
            resp = await self._client.send(
                "POST" if model else "GET", req.url, req.headers, body, upstream.timeouts
            )
        except Exception as exc:
            failed = FIRST_BYTE_TIMED_OUT if "timeout" in type(exc).__name__.lower() else CONNECT_FAILED
            message = str(getattr(exc, "message", None) or type(exc).__name__)
            return None, message.encode(), failed, time.perf_counter() - started
        try:
            answer = await resp.read()
        finally:
            await resp.aclose()
        latency = time.perf_counter() - started
        outcome = classify(resp.status, answer, resp.headers, time.time()) if resp.status >= 400 else None
        if outcome is not None and outcome.kind == CLIENT_ERROR:
            outcome = None
        return resp.status, answer, outcome, latency

    async def _probe(self, probe: Probe) -> None:
        """GET /models would be cheaper but proves little: an upstream can list models while its
        completions fail; so a probe is the same one-token request as a person's test."""
        upstream = self._upstreams.get(probe.channel.upstream)
        if upstream is None or upstream.kind == "mock":
            self._router.record_probe(probe, None, 0.0)
            return
        status, _, failure, latency = await self._exchange(upstream, probe.channel, probe.key)
        self._router.record_probe(probe, failure, None if failure else latency)
        log.info("probe of channel %s (%s): %s", probe.channel.name, probe.reason, status)

    async def stop(self) -> None:
        for task in (self._task, *self._probes):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _reply(body: bytes) -> str:
    """The answer's text (chat) or a short summary (model list), for a person reading a test."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(data, dict) and isinstance(data.get("choices"), list) and data["choices"]:
        message = data["choices"][0].get("message") or {}
        return str(message.get("content") or "")[:500]
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        return f"{len(data['data'])} model(s) listed"
    return body[:200].decode("utf-8", "replace")


def _error_text(body: bytes) -> str:
    """The upstream's error message (OpenAI or Anthropic shape), else the start of its body."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode("utf-8", "replace")
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict) and err.get("message"):
        return str(err["message"])[:500]
    return body[:300].decode("utf-8", "replace")
