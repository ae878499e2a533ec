"""Per-request metric series kept as plain numbers, because prometheus_client is too slow per request.

Updating eight prometheus_client metrics for one request (counters and histograms, each taking a
lock) costs ~15 µs; at 5,000 requests a second that is 7% of a core spent on bookkeeping. Here one
request adds to the slots of one `Series` object (~2 µs), and the Prometheus families are built
only when someone scrapes. Everything runs on the event loop thread, so there are no locks.

Two ways out: `exposition` writes the series as Prometheus text (one process), and `PrometheusMirror`
pushes what changed since its last push into prometheus_client metrics (multiprocess mode, where
only prometheus_client's memory-mapped values are shared between workers).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.utils import floatToGoString

TOKEN_KINDS = ("prompt", "completion", "cached", "reasoning")


class Series:
    """Cumulative figures of one (model, upstream, status, currency) label tuple."""

    __slots__ = (
        "cached",
        "completion",
        "cost",
        "currency",
        "duration",
        "duration_sum",
        "estimated",
        "model",
        "prompt",
        "reasoning",
        "requests",
        "status",
        "ttft",
        "ttft_sum",
        "unpriced",
        "upstream",
    )

    def __init__(
        self, model: str, upstream: str, status: str, currency: str, n_duration: int, n_ttft: int
    ) -> None:
        self.model = model
        self.upstream = upstream
        self.status = status
        self.currency = currency
        self.requests = 0
        self.duration = [0] * n_duration  # per bucket, not cumulative; last is +Inf
        self.duration_sum = 0.0
        self.ttft = [0] * n_ttft
        self.ttft_sum = 0.0
        self.prompt = 0
        self.completion = 0
        self.cached = 0
        self.reasoning = 0
        self.cost = 0.0
        self.unpriced = 0
        self.estimated = 0

    def snapshot(self) -> tuple[Any, ...]:
        return (
            self.requests,
            tuple(self.duration),
            self.duration_sum,
            tuple(self.ttft),
            self.ttft_sum,
            self.prompt,
            self.completion,
            self.cached,
            self.reasoning,
            self.cost,
            self.unpriced,
            self.estimated,
        )


class SeriesBook:
    """All series, and the one hot-path call that updates them."""

    def __init__(self, duration_buckets: Sequence[float], ttft_buckets: Sequence[float]) -> None:
        self.duration_bounds = tuple(float(b) for b in duration_buckets)
        self.ttft_bounds = tuple(float(b) for b in ttft_buckets)
        self.series: dict[tuple[str, str, str, str], Series] = {}

    def get(self, model: str, upstream: str, status: str, currency: str) -> Series:
        key = (model, upstream, status, currency)
        found = self.series.get(key)
        if found is None:
            found = Series(
                model, upstream, status, currency, len(self.duration_bounds) + 1, len(self.ttft_bounds) + 1
            )
            self.series[key] = found
        return found

    def add(
        self,
        series: Series,
        duration_s: float,
        ttft_s: float | None,
        prompt: int,
        completion: int,
        cached: int,
        reasoning: int,
        cost: float,
        estimated: bool,
    ) -> None:
        series.requests += 1
        series.duration[bisect_left(self.duration_bounds, duration_s)] += 1
        series.duration_sum += duration_s
        if ttft_s is not None:
            series.ttft[bisect_left(self.ttft_bounds, ttft_s)] += 1
            series.ttft_sum += ttft_s
        series.prompt += prompt
        series.completion += completion
        series.cached += cached
        series.reasoning += reasoning
        if series.currency:
            series.cost += cost
        elif prompt or completion:
            series.unpriced += 1
        if estimated:
            series.estimated += 1


def _label(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")
    return value


def _number(value: float) -> str:
    if isinstance(value, int) or value.is_integer():
        return f"{int(value)}.0" if abs(value) < 1e16 else repr(float(value))
    return repr(value)


class _Model:
    """The per-model sums a scrape reports (histograms and tokens are labelled by model only)."""

    __slots__ = ("cost", "duration", "duration_sum", "estimated", "tokens", "ttft", "ttft_sum", "unpriced")

    def __init__(self, n_duration: int, n_ttft: int) -> None:
        self.duration = [0] * n_duration
        self.duration_sum = 0.0
        self.ttft = [0] * n_ttft
        self.ttft_sum = 0.0
        self.tokens = [0, 0, 0, 0]
        self.unpriced = 0
        self.estimated = 0
        self.cost: dict[str, float] = {}


def exposition(book: SeriesBook) -> bytes:
    """The per-request families in Prometheus' text format, written directly.

    prometheus_client's generic writer validates and formats each sample through several calls
    (~10 µs a line); a scrape of a few dozen models is a few thousand lines, long enough to stall
    the event loop. These families have a fixed shape, so they are written in one pass.
    """
    out: list[str] = [
        "# HELP sluicegate_requests_total Requests answered, by model, upstream and HTTP status\n",
        "# TYPE sluicegate_requests_total counter\n",
    ]
    models: dict[str, _Model] = {}
    for s in book.series.values():
        model = _label(s.model)
        out.append(
            f'sluicegate_requests_total{{model="{model}",upstream="{_label(s.upstream)}",status="{s.status}"}} '
            f"{s.requests}.0\n"
        )
        agg = models.get(model)
        if agg is None:
            agg = models[model] = _Model(len(s.duration), len(s.ttft))
        for i, n in enumerate(s.duration):
            agg.duration[i] += n
        agg.duration_sum += s.duration_sum
        for i, n in enumerate(s.ttft):
            agg.ttft[i] += n
        agg.ttft_sum += s.ttft_sum
        tokens = agg.tokens
        tokens[0] += s.prompt
        tokens[1] += s.completion
        tokens[2] += s.cached
        tokens[3] += s.reasoning
        agg.unpriced += s.unpriced
        agg.estimated += s.estimated
        if s.currency:
            agg.cost[s.currency] = agg.cost.get(s.currency, 0.0) + s.cost
    for name, help_text, bounds, attr in (
        (
            "sluicegate_request_duration_seconds",
            "Time from request to the last byte of the answer",
            book.duration_bounds,
            "duration",
        ),
        ("sluicegate_ttft_seconds", "Time to the first streamed token", book.ttft_bounds, "ttft"),
    ):
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} histogram\n")
        les = [floatToGoString(b) for b in bounds]
        for model, agg in models.items():
            counts = getattr(agg, attr)
            total = sum(counts)
            if attr == "ttft" and not total:
                continue
            running = 0
            for le, n in zip(les, counts):
                running += n
                out.append(f'{name}_bucket{{model="{model}",le="{le}"}} {running}.0\n')
            out.append(f'{name}_bucket{{model="{model}",le="+Inf"}} {total}.0\n')
            out.append(f'{name}_count{{model="{model}"}} {total}.0\n')
            out.append(f'{name}_sum{{model="{model}"}} {_number(getattr(agg, attr + "_sum"))}\n')
    out.append("# HELP sluicegate_tokens_total Tokens metered\n# TYPE sluicegate_tokens_total counter\n")
    for model, agg in models.items():
        for kind, n in zip(TOKEN_KINDS, agg.tokens):
            out.append(f'sluicegate_tokens_total{{model="{model}",kind="{kind}"}} {n}.0\n')
    out.append(
        "# HELP sluicegate_cost_total Money metered, in each currency\n# TYPE sluicegate_cost_total counter\n"
    )
    for model, agg in models.items():
        for currency, amount in agg.cost.items():
            out.append(f'sluicegate_cost_total{{model="{model}",currency="{currency}"}} {_number(amount)}\n')
    for name, help_text, attr in (
        ("sluicegate_unpriced_requests_total", "Requests no price applied to", "unpriced"),
        (
            "sluicegate_usage_estimated_requests_total",
            "Requests whose usage the gateway counted itself",
            "estimated",
        ),
    ):
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} counter\n")
        for model, agg in models.items():
            n = getattr(agg, attr)
            if n:
                out.append(f'{name}{{model="{model}"}} {n}.0\n')
    return "".join(out).encode("utf-8")


class PrometheusMirror:
    """Pushes series changes into prometheus_client metrics (multiprocess mode).

    Histogram buckets are added through the child's `_buckets` and `_sum` values: prometheus_client
    has no public call to add a count to a bucket, and replaying observations would lose the sums.
    These attributes have been stable since 2015; the pin `<1` and the multiprocess test guard them.
    """

    def __init__(
        self,
        book: SeriesBook,
        requests: Counter,
        duration: Histogram,
        ttft: Histogram,
        tokens: Counter,
        cost: Counter,
        unpriced: Counter,
        estimated: Counter,
    ) -> None:
        self._book = book
        self._metrics = (requests, duration, ttft, tokens, cost, unpriced, estimated)
        self._pushed: dict[tuple[str, str, str, str], tuple[Any, ...]] = {}

    def push(self) -> None:
        """Add to the shared metrics what every series gained since the last push."""
        requests, duration, ttft, tokens, cost, unpriced, estimated = self._metrics
        for key, s in self._book.series.items():
            now = s.snapshot()
            before = self._pushed.get(key)
            if before == now:
                continue
            if before is None:
                before = (0, (0,) * len(s.duration), 0.0, (0,) * len(s.ttft), 0.0, 0, 0, 0, 0, 0.0, 0, 0)
            self._pushed[key] = now
            if now[0] != before[0]:
                requests.labels(s.model, s.upstream, s.status).inc(now[0] - before[0])
            self._push_histogram(duration.labels(s.model), now[1], before[1], now[2] - before[2])
            if now[3] != before[3]:
                self._push_histogram(ttft.labels(s.model), now[3], before[3], now[4] - before[4])
            for kind, new, old in zip(TOKEN_KINDS, now[5:9], before[5:9]):
                if new != old:
                    tokens.labels(s.model, kind).inc(new - old)
            if s.currency and now[9] != before[9]:
                cost.labels(s.model, s.currency).inc(now[9] - before[9])
            if now[10] != before[10]:
                unpriced.labels(s.model).inc(now[10] - before[10])
            if now[11] != before[11]:
                estimated.labels(s.model).inc(now[11] - before[11])

    @staticmethod
    def _push_histogram(child: Any, now: tuple[int, ...], before: tuple[int, ...], added_sum: float) -> None:
        # prometheus_client keeps per-bucket (non-cumulative) values, as we do.
        for i, (new, old) in enumerate(zip(now, before)):
            if new != old:
                child._buckets[i].inc(new - old)
        if added_sum:
            child._sum.inc(added_sum)
