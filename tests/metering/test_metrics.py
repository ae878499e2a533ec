"""GET /metrics renders what the gateway observed, in Prometheus' text format, from its own registry."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import replace

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from sluicegate.metering.metrics import Metrics, MultiprocessError
from sluicegate.store.records import RequestRecord

BASE = RequestRecord(
    request_id="r1",
    ts=0.0,
    key_id="k1",
    key_name="team-a",
    endpoint="/v1/chat/completions",
    model_requested="fast",
    model_served="gpt-4o-mini",
    upstream="openai",
    channel="openai/gpt-4o-mini",
    status=200,
    prompt_tokens=19,
    completion_tokens=9,
    cached_tokens=4,
    reasoning_tokens=2,
    cost=0.0000082,
    currency="USD",
    latency_ms=420.0,
    ttft_ms=180.0,
    stream=True,
)


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def test_requests_are_counted_by_model_upstream_and_status() -> None:
    metrics = Metrics()
    metrics.observe(BASE)
    metrics.observe(BASE)
    metrics.observe(replace(BASE, status=429))
    found = samples(metrics)
    assert (
        value(found, "sluicegate_requests_total", model="gpt-4o-mini", upstream="openai", status="200") == 2
    )
    assert (
        value(found, "sluicegate_requests_total", model="gpt-4o-mini", upstream="openai", status="429") == 1
    )


def test_tokens_are_counted_by_kind() -> None:
    metrics = Metrics()
    metrics.observe(BASE)
    metrics.observe(BASE)
    found = samples(metrics)
    for kind, expected in (("prompt", 38), ("completion", 18), ("cached", 8), ("reasoning", 4)):
        assert value(found, "sluicegate_tokens_total", model="gpt-4o-mini", kind=kind) == expected


def test_cost_is_summed_per_currency() -> None:
    metrics = Metrics()
    metrics.observe(BASE)
    metrics.observe(replace(BASE, model_served="qwen-plus", cost=0.5, currency="CNY"))
    found = samples(metrics)
    assert value(found, "sluicegate_cost_total", model="gpt-4o-mini", currency="USD") == pytest.approx(
        0.0000082
    )
    assert value(found, "sluicegate_cost_total", model="qwen-plus", currency="CNY") == 0.5


def test_unpriced_requests_are_counted_apart() -> None:
    metrics = Metrics()
    metrics.observe(replace(BASE, model_served="local-llama", cost=0.0, currency=""))
    found = samples(metrics)
    assert value(found, "sluicegate_unpriced_requests_total", model="local-llama") == 1


def test_latency_and_ttft_land_in_their_histogram_buckets() -> None:
    metrics = Metrics()
    metrics.observe(BASE)  # 0.42 s total, 0.18 s to first token
    found = samples(metrics)
    assert value(found, "sluicegate_request_duration_seconds_bucket", model="gpt-4o-mini", le="0.25") == 0
    assert value(found, "sluicegate_request_duration_seconds_bucket", model="gpt-4o-mini", le="0.5") == 1
    assert value(found, "sluicegate_request_duration_seconds_sum", model="gpt-4o-mini") == pytest.approx(0.42)
    assert value(found, "sluicegate_ttft_seconds_bucket", model="gpt-4o-mini", le="0.25") == 1
    assert value(found, "sluicegate_ttft_seconds_count", model="gpt-4o-mini") == 1


def test_a_request_without_streaming_has_no_ttft_observation() -> None:
    metrics = Metrics()
    metrics.observe(replace(BASE, ttft_ms=None, stream=False))
    found = samples(metrics)
    assert found.get(("sluicegate_ttft_seconds_count", (("model", "gpt-4o-mini"),)), 0) == 0


def test_limiter_refusals_backend_errors_and_upstream_errors_are_counted() -> None:
    metrics = Metrics()
    metrics.limiter_refused("rpm")
    metrics.limiter_refused("rpm")
    metrics.limiter_refused("budget")
    metrics.limiter_backend_failed()
    metrics.upstream_failed("groq", "timeout")
    found = samples(metrics)
    assert value(found, "sluicegate_limiter_refusals_total", reason="rpm") == 2
    assert value(found, "sluicegate_limiter_refusals_total", reason="budget") == 1
    assert value(found, "sluicegate_limiter_backend_errors_total") == 1
    assert value(found, "sluicegate_upstream_errors_total", upstream="groq", kind="timeout") == 1


def test_log_queue_depth_and_drops_come_from_the_sink_hooks() -> None:
    metrics = Metrics()
    metrics.set_log_queue_depth(42)
    metrics.log_records_dropped(3)
    found = samples(metrics)
    assert value(found, "sluicegate_log_queue_depth") == 42
    assert value(found, "sluicegate_log_dropped_total") == 3


def test_channel_state_is_read_at_scrape_time() -> None:
    metrics = Metrics()
    states = {"openai/gpt-4o": "healthy", "groq/llama": "open"}
    metrics.watch_channels(lambda: states.items())
    found = samples(metrics)
    assert value(found, "sluicegate_channel_state", channel="groq/llama", state="open") == 1
    assert value(found, "sluicegate_channel_state", channel="groq/llama", state="healthy") == 0
    states["groq/llama"] = "half_open"
    found = samples(metrics)
    assert value(found, "sluicegate_channel_state", channel="groq/llama", state="half_open") == 1


def test_client_chosen_model_names_are_capped() -> None:
    metrics = Metrics(max_models=3)
    for n in range(10):
        metrics.observe(replace(BASE, model_served=f"random-{n}"))
    found = samples(metrics)
    models = {dict(labels)["model"] for (name, labels) in found if name == "sluicegate_requests_total"}
    assert models == {"random-0", "random-1", "random-2", "other"}
    assert value(found, "sluicegate_requests_total", model="other", upstream="openai", status="200") == 7


def test_the_global_default_registry_is_left_alone() -> None:
    Metrics().observe(BASE)
    assert "sluicegate_requests_total" not in {m.name for m in REGISTRY.collect()}
    assert "sluicegate_requests" not in {m.name for m in REGISTRY.collect()}


def test_two_apps_in_one_process_do_not_collide() -> None:
    first, second = Metrics(), Metrics()
    first.observe(BASE)
    assert (
        value(
            samples(first), "sluicegate_requests_total", model="gpt-4o-mini", upstream="openai", status="200"
        )
        == 1
    )
    assert (
        "sluicegate_requests_total",
        (("model", "gpt-4o-mini"), ("status", "200"), ("upstream", "openai")),
    ) not in samples(second)


def test_multiprocess_mode_refuses_an_unprepared_environment(tmp_path) -> None:
    with pytest.raises(MultiprocessError):
        Metrics(multiprocess_dir=tmp_path)


def test_multiprocess_mode_adds_up_every_worker(tmp_path) -> None:
    """Two worker processes observe; a third renders the sum (what a scrape of any worker sees)."""
    worker = textwrap.dedent(f"""
        import sys
        from sluicegate.metering.metrics import Metrics
        from sluicegate.store.records import RequestRecord
        m = Metrics(multiprocess_dir={str(tmp_path)!r})
        r = RequestRecord(request_id="r", ts=0.0, key_id=None, key_name=None, endpoint="/v1/chat/completions",
                          model_requested="m", model_served="m", upstream="u", channel="u/m", status=200,
                          prompt_tokens=10, latency_ms=5.0)
        for _ in range(int(sys.argv[1])):
            m.observe(r)
        sys.stdout.write(m.render().decode())
    """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for count in ("2", "3"):
        subprocess.run(
            [sys.executable, "-c", worker, count], env=env, check=True, capture_output=True, timeout=60
        )
    out = subprocess.run(
        [sys.executable, "-c", worker, "0"], env=env, check=True, capture_output=True, text=True, timeout=60
    ).stdout
    found = {}
    for family in text_string_to_metric_families(out):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    assert value(found, "sluicegate_requests_total", model="m", upstream="u", status="200") == 5
    assert value(found, "sluicegate_tokens_total", model="m", kind="prompt") == 50
    assert value(found, "sluicegate_request_duration_seconds_count", model="m") == 5
    assert value(found, "sluicegate_request_duration_seconds_bucket", model="m", le="0.005") == 5
    assert value(found, "sluicegate_request_duration_seconds_sum", model="m") == pytest.approx(0.025)


def test_multiprocess_sync_pushes_only_what_changed(tmp_path) -> None:
    """A worker pushing twice must not double-count (the sink calls sync every turn)."""
    worker = textwrap.dedent(f"""
        from sluicegate.metering.metrics import Metrics
        from sluicegate.store.records import RequestRecord
        m = Metrics(multiprocess_dir={str(tmp_path)!r})
        r = RequestRecord(request_id="r", ts=0.0, key_id=None, key_name=None, endpoint="/v1/chat/completions",
                          model_requested="m", model_served="m", upstream="u", channel="u/m", status=200,
                          completion_tokens=7, latency_ms=5.0, ttft_ms=30.0, cost=0.5, currency="USD")
        m.observe(r)
        m.set_log_queue_depth(0)
        m.set_log_queue_depth(0)
        m.observe(r)
        m.sync()
        print(m.render().decode())
    """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", worker], env=env, check=True, capture_output=True, text=True, timeout=60
    ).stdout
    found = {}
    for family in text_string_to_metric_families(out):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    assert value(found, "sluicegate_requests_total", model="m", upstream="u", status="200") == 2
    assert value(found, "sluicegate_tokens_total", model="m", kind="completion") == 14
    assert value(found, "sluicegate_ttft_seconds_count", model="m") == 2
    assert value(found, "sluicegate_cost_total", model="m", currency="USD") == 1.0


def test_odd_model_names_are_escaped_in_the_exposition() -> None:
    metrics = Metrics()
    metrics.observe(replace(BASE, model_served='we"ird\\name\nx'))
    found = samples(metrics)
    assert (
        value(found, "sluicegate_requests_total", model='we"ird\\name\nx', upstream="openai", status="200")
        == 1
    )


def test_only_routed_models_become_labels_and_junk_is_other() -> None:
    metrics = Metrics(max_models=3, models={"gpt-4o-mini", "real-model-name"})
    for n in range(10):
        metrics.observe(replace(BASE, model_served=f"junk-{n}"))
    metrics.observe(replace(BASE, model_served="gpt-4o-mini"))
    found = samples(metrics)
    models = {dict(labels)["model"] for (name, labels) in found if name == "sluicegate_requests_total"}
    assert models == {"gpt-4o-mini", "other"}
    assert value(found, "sluicegate_requests_total", model="other", upstream="openai", status="200") == 10


def test_worker_restarts_are_counted() -> None:
    metrics = Metrics()
    metrics.worker_started(2)
    assert value(samples(metrics), "sluicegate_worker_restarts_total") == 2
