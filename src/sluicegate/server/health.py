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

from sluicegate.routing import Probe, Router, classify
from sluicegate.routing.healthstore import record_identity
from sluicegate.routing.retry import CLIENT_ERROR, CONNECT_FAILED, FIRST_BYTE_TIMED_OUT

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

    async def _probe(self, probe: Probe) -> None:
        """A one-token chat completion on the channel's own model tells whether it works again.

        GET /models would be cheaper but proves little: an upstream can list models while its completions
        fail. A 4xx that is the request's fault (say, an embeddings-only model) still shows the upstream
        answers and accepts the key, so it counts as a success.
        """
        upstream = self._upstreams.get(probe.channel.upstream)
        if upstream is None or upstream.kind == "mock":
            self._router.record_probe(probe, None, 0.0)
            return
        key_index = int(probe.key) if probe.key is not None else None
        model = probe.channel.model or None
        path = "/v1/chat/completions" if model else "/v1/models"
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
            outcome = FIRST_BYTE_TIMED_OUT if "timeout" in type(exc).__name__.lower() else CONNECT_FAILED
            self._router.record_probe(probe, outcome)
            return
        try:
            answer = await resp.read()
            latency = time.perf_counter() - started
            judged = classify(resp.status, answer, resp.headers, time.time()) if resp.status >= 400 else None
            if judged is None or judged.kind == CLIENT_ERROR:
                self._router.record_probe(probe, None, latency)
            else:
                self._router.record_probe(probe, judged)
        finally:
            resp.release()
        log.info("probe of channel %s (%s): %s", probe.channel.name, probe.reason, resp.status)

    async def stop(self) -> None:
        for task in (self._task, *self._probes):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
