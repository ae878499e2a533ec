"""`sluicegate plan --from-usage`: the gateway's own request log, priced on the API and on GPUs.

The test writes a request log through the store the gateway uses (SQLite and PostgreSQL), runs
the command, and checks every traffic figure against arithmetic done by hand below.

Traffic (UTC), written as the gateway's log writer would:
  gpt-4o-mini    2026-03-01 10:00:00, :10, :20   prompt 1000, completion 200, 0.50 USD, 30 s each
                 2026-03-02 12:00:00             prompt 1000, completion 200, 0.50 USD, 1 s
  deepseek-chat  2026-03-02 12:30:00             prompt 3000, completion 1000, 7.10 CNY, 20 s
Window 2026-03-01..02 = 2 days. By hand:
  gpt-4o-mini    prompt/day 4000/2 = 2000, completion/day 800/2 = 400,
                 API/month 2.00/2·30 = 30.00 USD, busiest minute 3 requests = 0.05 req/s,
                 3 in flight at 10:00:20 (each lasts 30 s)
  deepseek-chat  prompt/day 1500, completion/day 500, 7.10 CNY = 1.00 USD at 7.10,
                 API/month 1.00/2·30 = 15.00 USD, peak 1/60 req/s, 1 in flight
  total API      45.00 USD/month
  break-even     cheapest month / 30 / (API/month / 30 / tokens per day)
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from sluicegate.cli.main import cli
from sluicegate.store import Store
from sluicegate.store.records import RequestRecord
from tests.support.pg import fresh_postgres_database


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _record(n: int, when: str, model: str, prompt: int, completion: int, cost: float, cur: str, ms: float):
    return RequestRecord(
        request_id=f"req-{n}",
        ts=_ts(when),
        key_id="k1",
        key_name="team",
        endpoint="/v1/chat/completions",
        model_requested=model,
        model_served=model,
        upstream="up",
        channel="c",
        status=200,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost=cost,
        currency=cur,
        latency_ms=ms,
    )


LOG = [
    _record(1, "2026-03-01T10:00:00", "gpt-4o-mini", 1000, 200, 0.5, "USD", 30_000),
    _record(2, "2026-03-01T10:00:10", "gpt-4o-mini", 1000, 200, 0.5, "USD", 30_000),
    _record(3, "2026-03-01T10:00:20", "gpt-4o-mini", 1000, 200, 0.5, "USD", 30_000),
    _record(4, "2026-03-02T12:00:00", "gpt-4o-mini", 1000, 200, 0.5, "USD", 1_000),
    _record(5, "2026-03-02T12:30:00", "deepseek-chat", 3000, 1000, 7.1, "CNY", 20_000),
]


def _write_log(url: str) -> None:
    async def main() -> None:
        store = await Store.open(url)
        try:
            await store.usage.write_batch(LOG)
        finally:
            await store.close()

    asyncio.run(main())


def _plan(url: str, *extra: str) -> dict:
    out = CliRunner().invoke(
        cli,
        ["plan", "--from-usage", "--database", url, "--cny-per-usd", "7.1", "--json", *extra],
        env={"LANG": "C"},
    )
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'log.db'}"
        _write_log(url)
        yield url
        return
    with fresh_postgres_database("sg_plan_usage") as url:
        _write_log(url)
        yield url


def test_from_usage_json_has_the_shape_the_issue_specifies(database):
    a = _plan(database)
    assert {"currency", "since", "until", "models", "total"} <= set(a)
    for m in a["models"]:
        assert {
            "model",
            "open_model",
            "prompt_tokens_per_day",
            "completion_tokens_per_day",
            "peak_requests_per_s",
            "api_cost_per_month",
            "self_host",
            "break_even_tokens_per_day",
        } <= set(m)
        for row in m["self_host"]:
            assert {"gpu", "count", "provider", "cost_per_month", "meets_peak"} <= set(row)
    assert {"api_cost_per_month", "best_self_host_cost_per_month"} <= set(a["total"])


def test_from_usage_traffic_figures_match_hand_arithmetic(database):
    a = _plan(database)
    assert (a["currency"], a["since"], a["until"]) == ("USD", "2026-03-01", "2026-03-02")
    by = {m["model"]: m for m in a["models"]}
    mini, ds = by["gpt-4o-mini"], by["deepseek-chat"]
    assert (mini["prompt_tokens_per_day"], mini["completion_tokens_per_day"]) == (2000, 400)
    assert mini["api_cost_per_month"] == pytest.approx(30.0)
    assert mini["peak_requests_per_s"] == pytest.approx(3 / 60, abs=1e-4)
    assert mini["peak_concurrency"] == 3
    assert (ds["prompt_tokens_per_day"], ds["completion_tokens_per_day"]) == (1500, 500)
    assert ds["api_cost_per_month"] == pytest.approx(15.0)
    assert ds["peak_requests_per_s"] == pytest.approx(1 / 60, abs=1e-4)
    assert a["total"]["api_cost_per_month"] == pytest.approx(45.0)


def test_api_models_map_to_open_models_of_their_class_and_map_overrides(database):
    default = {m["model"]: m["open_model"] for m in _plan(database)["models"]}
    assert default == {"gpt-4o-mini": "llama-3.1-8b", "deepseek-chat": "deepseek-v3"}
    mapped = _plan(database, "--map", "deepseek-chat=qwen3-30b-a3b")
    assert {m["model"]: m["open_model"] for m in mapped["models"]}["deepseek-chat"] == "qwen3-30b-a3b"


def test_break_even_is_the_cheapest_month_over_the_api_price_per_token(database):
    mini = {m["model"]: m for m in _plan(database)["models"]}["gpt-4o-mini"]
    best = mini["best_self_host_cost_per_month"]
    cheapest = min(r["cost_per_month"] for r in mini["self_host"] if r["meets_peak"])
    assert best == pytest.approx(cheapest)
    # API: 30 USD/month for 2400 tokens/day -> 30/30/2400 USD per token
    assert mini["break_even_tokens_per_day"] == pytest.approx(best / 30 / (30 / 30 / 2400), rel=1e-3)
    # at 2400 tokens a day, renting a GPU all month cannot beat 30 USD
    assert not mini["self_host_wins"]


def test_since_narrows_the_window_to_later_days(database):
    a = _plan(database, "--since", "2026-03-02")
    mini = {m["model"]: m for m in a["models"]}["gpt-4o-mini"]
    assert a["since"] == "2026-03-02"
    assert mini["prompt_tokens_per_day"] == 1000
    assert mini["api_cost_per_month"] == pytest.approx(15.0)
    assert mini["peak_requests_per_s"] == pytest.approx(1 / 60, abs=1e-4)


def test_from_usage_table_is_in_chinese_under_a_zh_locale(database):
    out = CliRunner().invoke(
        cli, ["plan", "--from-usage", "--database", database], env={"LANG": "zh_CN.UTF-8"}
    )
    assert out.exit_code == 0, out.output
    assert "盈亏平衡" in out.output and "gpt-4o-mini" in out.output


def test_a_malformed_map_is_a_usage_error(tmp_path):
    out = CliRunner().invoke(
        cli, ["plan", "--from-usage", "--database", f"sqlite:///{tmp_path / 'x.db'}", "--map", "nonsense"]
    )
    assert out.exit_code == 2 and "API_MODEL=OPEN_MODEL" in out.output


def test_china_offerings_without_a_sourced_price_are_named_not_priced(database):
    ds = {m["model"]: m for m in _plan(database)["models"]}["deepseek-chat"]
    unpriced = {(u["gpu"], u["provider"]) for u in ds["unpriced"]}
    assert ("h20", "volcengine") in unpriced and ("h20", "alibaba") in unpriced
    assert all("cost_per_month" not in u and u["source"].startswith("http") for u in ds["unpriced"])
    assert not any(r["gpu"] == "h20" and r["provider"] == "volcengine" for r in ds["self_host"])
