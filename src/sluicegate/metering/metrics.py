"""Prometheus metrics for `GET /metrics`, owned by the app rather than the process-global registry.

`observe(record)` does every per-request update in one call, into plain-number series
(`metering.series`): prometheus_client's locked counters and histograms cost ~12 µs a request, the
series ~1-2 µs. Rarer events (limiter refusals, upstream errors) use prometheus_client directly.
Model names come from clients: only the models the gateway routes (`models`, public and upstream
names) become labels, any other name is reported as `other`, so junk names cannot fill the label
space and push real models out; distinct labels are also capped (`max_models`).

Several worker processes: each process has its own counters, and a scrape reaches one of them. Set
`multiprocess_dir` (and PROMETHEUS_MULTIPROC_DIR to the same path in the environment of every
worker, before prometheus_client is imported: call `prepare_multiprocess_dir` in the parent before
starting workers) and the counters and histograms live in memory-mapped files that any worker's
`render()` adds up; each worker pushes its series there with `sync()` (the log sink's `on_depth`
hook does it once per turn). Gauges fed by callbacks (channel state) report the scraping worker's view.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sluicegate.metering.series import PrometheusMirror, SeriesBook, exposition
from sluicegate.store.records import RequestRecord

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 60.0)
CHANNEL_STATES = ("healthy", "degraded", "open", "half_open", "disabled")
OTHER = "other"
NONE = "none"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MultiprocessError(RuntimeError):
    """Multiprocess metrics were asked for, but the environment was not prepared for them."""


def prepare_multiprocess_dir(path: str | os.PathLike[str]) -> None:
    """Make `path` an empty metrics directory and export it to this process's children.

    To be called by the parent (`sluicegate serve`) before workers start: files left by a previous
    run would otherwise be added to this run's counters.
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    # Importing this module imported prometheus_client, which chose its value class from the
    # environment then (in-process values). Workers forked from this process inherit that choice, so
    # make it again now that the directory is set.
    from prometheus_client import values

    values.ValueClass = values.get_value_class()


def mark_worker_dead(pid: int, path: str | os.PathLike[str]) -> None:
    """Drop a dead worker's live gauges (call from the parent when a worker exits)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(path))


class _ChannelStates(Collector):
    """`sluicegate_channel_state{channel,state}`: 1 for each channel's current state, 0 otherwise."""

    def __init__(self, source: Callable[[], Iterable[tuple[str, str]]]) -> None:
        self._source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "sluicegate_channel_state",
            "Health state of each channel (1 = current state)",
            labels=["channel", "state"],
        )
        for channel, current in self._source():
            states = CHANNEL_STATES if current in CHANNEL_STATES else (*CHANNEL_STATES, current)
            for state in states:
                family.add_metric([channel, state], 1.0 if state == current else 0.0)
        yield family


class Metrics:
    """Every gateway metric, in a registry of its own."""

    def __init__(
        self,
        *,
        multiprocess_dir: str | os.PathLike[str] | None = None,
        max_models: int = 200,
        models: Iterable[str] | None = None,
    ) -> None:
        self.multiprocess_dir = str(multiprocess_dir) if multiprocess_dir else None
        if self.multiprocess_dir:
            self._check_multiprocess(self.multiprocess_dir)
        # In multiprocess mode the metric objects must not live in a registry that is rendered:
        # the values are read back from the files by a MultiProcessCollector at scrape time.
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._book = SeriesBook(DURATION_BUCKETS, TTFT_BUCKETS)
        self._mirror: PrometheusMirror | None = None
        if self.multiprocess_dir:
            # Shared, memory-mapped metrics that the series are pushed into (see `sync`).
            self._mirror = PrometheusMirror(
                self._book,
                Counter(
                    "sluicegate_requests", "Requests answered", ["model", "upstream", "status"], registry=r
                ),
                Histogram(
                    "sluicegate_request_duration_seconds",
                    "Time from request to the last byte",
                    ["model"],
                    buckets=DURATION_BUCKETS,
                    registry=r,
                ),
                Histogram(
                    "sluicegate_ttft_seconds",
                    "Time to the first streamed token",
                    ["model"],
                    buckets=TTFT_BUCKETS,
                    registry=r,
                ),
                Counter("sluicegate_tokens", "Tokens metered", ["model", "kind"], registry=r),
                Counter(
                    "sluicegate_cost", "Money metered, in each currency", ["model", "currency"], registry=r
                ),
                Counter(
                    "sluicegate_unpriced_requests", "Requests no price applied to", ["model"], registry=r
                ),
                Counter(
                    "sluicegate_usage_estimated_requests",
                    "Requests whose usage the gateway counted",
                    ["model"],
                    registry=r,
                ),
            )
        self.limiter_refusals = Counter(
            "sluicegate_limiter_refusals", "Requests refused by a limit, by reason", ["reason"], registry=r
        )
        self.limiter_backend_errors = Counter(
            "sluicegate_limiter_backend_errors", "Limiter backend (Redis) failures", registry=r
        )
        self.upstream_errors = Counter(
            "sluicegate_upstream_errors",
            "Upstream failures by kind (connect, timeout, 5xx, ...)",
            ["upstream", "kind"],
            registry=r,
        )
        self.log_queue_depth = Gauge(
            "sluicegate_log_queue_depth",
            "Request-log records waiting to be written",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.log_dropped = Counter("sluicegate_log_dropped", "Request-log records dropped", registry=r)
        self.log_spilled = Gauge(
            "sluicegate_log_spilled",
            "Request-log records waiting in the local spill for the store to write again",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.log_store_writable = Gauge(
            "sluicegate_log_store_writable",
            "1 while the store takes the request log, 0 while writes fail (records are held or spilled)",
            registry=r,
            multiprocess_mode="livemin",
        )
        self._models: set[str] = set()
        self._max_models = max_models
        self._known_models = frozenset(models) if models is not None else None
        self.worker_restarts = Counter(
            "sluicegate_worker_restarts",
            "Worker processes started after the first ones: a crashed worker respawned (or a reload)",
            registry=r,
        )
        self.cache_lookups = Counter(
            "sluicegate_cache_lookups",
            "Response cache lookups by model and result (hit, miss, bypass)",
            ["model", "result"],
            registry=r,
        )
        self.cache_semantic_hits = Counter(
            "sluicegate_cache_semantic_hits",
            "Response cache hits found by meaning (the semantic stage): part of result=hit",
            ["model"],
            registry=r,
        )
        self.cache_tokens_saved = Counter(
            "sluicegate_cache_tokens_saved",
            "Tokens not sent upstream: answered from the cache",
            ["model"],
            registry=r,
        )
        self.cache_cost_saved = Counter(
            "sluicegate_cache_cost_saved",
            "Money not spent upstream: answered from the cache, by currency",
            ["currency"],
            registry=r,
        )
        self._channel_source: Callable[[], Iterable[tuple[str, str]]] | None = None
        self._status_text: dict[int, str] = {}

    @staticmethod
    def _check_multiprocess(path: str) -> None:
        from prometheus_client import values

        if os.environ.get("PROMETHEUS_MULTIPROC_DIR") != path or values.ValueClass is values.MutexValue:
            raise MultiprocessError(
                f"multiprocess metrics need PROMETHEUS_MULTIPROC_DIR={path} in the environment before "
                "prometheus_client is imported: call prepare_multiprocess_dir() in the parent process"
            )
        if not os.path.isdir(path):
            raise MultiprocessError(f"metrics directory {path} does not exist")

    # -- per request ------------------------------------------------------------------------

    def _model_label(self, model: str | None) -> str:
        if not model:
            return NONE
        if model in self._models:
            return model
        if self._known_models is not None and model not in self._known_models:
            return OTHER
        if len(self._models) >= self._max_models:
            return OTHER
        self._models.add(model)
        return model

    def observe(self, record: RequestRecord) -> None:
        """All per-request updates for one finished request (call when its record is built).

        A request with currency `UNPRICED` ("") and tokens counts as unpriced instead of costing.
        """
        model = record.model_served or record.model_requested
        status = self._status_text.get(record.status)
        if status is None:
            status = self._status_text[record.status] = str(record.status)
        series = self._book.get(self._model_label(model), record.upstream or NONE, status, record.currency)
        ttft = record.ttft_ms
        self._book.add(
            series,
            record.latency_ms / 1000.0,
            None if ttft is None else ttft / 1000.0,
            record.prompt_tokens,
            record.completion_tokens,
            record.cached_tokens,
            record.reasoning_tokens,
            record.cost,
            record.usage_estimated,
        )

    # -- events from other modules --------------------------------------------------------------

    def cache_result(
        self, model: str | None, result: str, tokens: int = 0, cost: float = 0.0, currency: str = ""
    ) -> None:
        """A response-cache lookup (hit, miss, bypass), with what a hit saved."""
        label = self._model_label(model)
        self.cache_lookups.labels(label, result).inc()
        if tokens:
            self.cache_tokens_saved.labels(label).inc(tokens)
        if cost and currency:
            self.cache_cost_saved.labels(currency).inc(cost)

    def cache_semantic_hit(self, model: str | None) -> None:
        """A hit the semantic stage found (counted in `cache_result` as a hit too)."""
        self.cache_semantic_hits.labels(self._model_label(model)).inc()

    def limiter_refused(self, reason: str) -> None:
        """A limit refused a request: reason is e.g. rpm, tpm, concurrency, budget."""
        self.limiter_refusals.labels(reason).inc()

    def limiter_backend_failed(self) -> None:
        self.limiter_backend_errors.inc()

    def upstream_failed(self, upstream: str, kind: str) -> None:
        """kind: connect, timeout, status_5xx, status_429, protocol, ..."""
        self.upstream_errors.labels(upstream, kind).inc()

    def worker_started(self, restarts: int) -> None:
        """This worker replaced `restarts` earlier ones (see server/workers.py)."""
        if restarts:
            self.worker_restarts.inc(restarts)

    def log_records_dropped(self, count: int) -> None:
        """`LogSink(on_drop=...)`."""
        self.log_dropped.inc(count)

    def set_log_queue_depth(self, depth: int) -> None:
        """`LogSink(on_depth=...)`: called once per sink turn (about a second), so in multiprocess
        mode it also pushes this worker's per-request figures to the shared files (`sync`)."""
        self.log_queue_depth.set(depth)
        if self._mirror is not None:
            self._mirror.push()

    def set_log_durability(self, spilled: int, writable: bool) -> None:
        """Read from the sink at scrape time: records in the spill, and whether the store writes."""
        self.log_spilled.set(spilled)
        self.log_store_writable.set(1 if writable else 0)

    def sync(self) -> None:
        """Multiprocess mode: push this worker's per-request figures to the shared files.

        Every worker must do it regularly (the sink's `on_depth` hook does, each turn), or a scrape
        served by another worker misses its latest requests. A no-op in single-process mode.
        """
        if self._mirror is not None:
            self._mirror.push()

    def watch_channels(self, source: Callable[[], Iterable[tuple[str, str]]]) -> None:
        """Report channel health at scrape time from `source() -> [(channel, state), ...]`."""
        if self._channel_source is None:
            self._channel_source = source
            if not self.multiprocess_dir:
                self.registry.register(_ChannelStates(self._source_channels))
        else:
            self._channel_source = source

    def _source_channels(self) -> Iterable[tuple[str, str]]:
        return self._channel_source() if self._channel_source is not None else ()

    # -- scrape -------------------------------------------------------------------------------

    def render(self) -> bytes:
        """The body of `GET /metrics` (Prometheus text format; serve it with `CONTENT_TYPE`)."""
        if not self.multiprocess_dir:
            return exposition(self._book) + generate_latest(self.registry)
        from prometheus_client import multiprocess

        self.sync()
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        if self._channel_source is not None:
            registry.register(_ChannelStates(self._source_channels))
        return generate_latest(registry)
