"""`sluicegate usage`, `sluicegate logs` and `sluicegate db` over a store the test fills directly."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sluicegate.cli.main import cli
from sluicegate.store import Store
from sluicegate.store.migrate import HEAD
from sluicegate.store.records import RequestRecord

SLUICEGATE = Path(sys.executable).with_name("sluicegate")
DAY = 86400


def request(
    n: int, ts: float, key: str | None = "key_a", model: str = "gpt-4o", **fields: object
) -> RequestRecord:
    values: dict[str, object] = dict(
        request_id=f"req-{n}", ts=ts, key_id=key, key_name=key and key.removeprefix("key_"),
        endpoint="/v1/chat/completions", model_requested=model, model_served=model, upstream="openai",
        channel="main", status=200, prompt_tokens=1000 * n, completion_tokens=100 * n, cost=0.01 * n,
        latency_ms=42.0,
    )  # fmt: skip
    return RequestRecord(**{**values, **fields})  # type: ignore[arg-type]


def write(url: str, records: Sequence[RequestRecord]) -> None:
    """Log records the way the gateway's log writer does."""

    async def main() -> None:
        async with await Store.open(url) as store:
            await store.usage.write_batch(records)

    asyncio.run(main())


def clean_env() -> dict[str, str]:
    """The environment without any Sluicegate setting the developer may have exported."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SLUICEGATE_")}


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'usage.db'}"


@pytest.fixture
def invoke(database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    for name in [k for k in os.environ if k.startswith("SLUICEGATE_")]:
        monkeypatch.delenv(name)
    runner = CliRunner()

    def call(*args: str) -> Result:
        return runner.invoke(cli, [*args, "--database", database], catch_exceptions=False)

    yield call


def test_usage_json_lists_rows_per_key_and_model(invoke: object, database: str) -> None:
    now = time.time()
    write(
        database,
        [request(1, now), request(2, now), request(3, now, model="qwen-max"), request(4, now, key="key_b")],
    )
    rows = json.loads(invoke("usage", "--json").output)  # type: ignore[operator]
    by_pair = {(r["key_id"], r["model"]): r for r in rows}
    assert set(by_pair) == {("key_a", "gpt-4o"), ("key_a", "qwen-max"), ("key_b", "gpt-4o")}
    row = by_pair[("key_a", "gpt-4o")]
    assert (row["requests"], row["prompt_tokens"], row["completion_tokens"]) == (2, 3000, 300)
    assert (round(row["cost"], 2), row["currency"]) == (0.03, "USD")


def test_usage_by_day_within_a_date_range(invoke: object, database: str) -> None:
    write(
        database,
        [request(1, 1_790_000_000), request(2, 1_790_000_000 + DAY), request(3, 1_790_000_000 + 3 * DAY)],
    )
    rows = json.loads(
        invoke("usage", "--by", "day", "--since", "2026-09-22", "--until", "2026-09-24", "--json").output
    )  # type: ignore[operator]
    assert [(r["day"], r["requests"]) for r in rows] == [("2026-09-22", 1), ("2026-09-24", 1)]


def test_usage_filters_by_key_and_model(invoke: object, database: str) -> None:
    now = time.time()
    write(database, [request(1, now), request(2, now, model="qwen-max"), request(3, now, key="key_b")])
    rows = json.loads(invoke("usage", "--key", "key_a", "--model", "qwen-max", "--json").output)  # type: ignore[operator]
    assert [(r["key_id"], r["model"], r["requests"]) for r in rows] == [("key_a", "qwen-max", 1)]


def test_usage_prints_an_aligned_table(invoke: object, database: str) -> None:
    now = time.time()
    write(database, [request(1, now), request(12, now, key="key_b")])
    lines = invoke("usage", "--by", "key").output.splitlines()  # type: ignore[operator]
    assert lines[0].split() == ["KEY", "NAME", "REQUESTS", "ERRORS", "PROMPT", "COMPLETION", "CACHED", "REASONING",
                                "COST", "CUR"]  # fmt: skip
    assert lines[1].split()[:3] == ["key_b", "b", "1"]
    assert "12,000" in lines[1]
    assert len({len(line) for line in lines}) == 1  # right-aligned numbers end in one column


def test_usage_with_nothing_logged_says_so(invoke: object) -> None:
    assert "No usage" in invoke("usage").output  # type: ignore[operator]


def test_a_bad_date_is_a_usage_error(invoke: object) -> None:
    result = invoke("usage", "--since", "last tuesday")  # type: ignore[operator]
    assert result.exit_code == 2
    assert "is not a date" in result.output


def test_logs_tail_json_gives_the_newest_requests_one_per_line(invoke: object, database: str) -> None:
    now = time.time()
    write(database, [request(n, now + n) for n in range(1, 6)])
    lines = invoke("logs", "--tail", "2", "--json").output.splitlines()  # type: ignore[operator]
    entries = [json.loads(line) for line in lines]
    assert [e["request_id"] for e in entries] == ["req-4", "req-5"]
    assert entries[0]["prompt_tokens"] == 4000 and entries[0]["time"].endswith("Z")


def test_logs_prints_a_table(invoke: object, database: str) -> None:
    write(database, [request(1, time.time(), status=429)])
    lines = invoke("logs").output.splitlines()  # type: ignore[operator]
    assert lines[0].split()[:4] == ["TIME", "(UTC)", "ID", "KEY"]
    assert "/v1/chat/completions" in lines[1] and "429" in lines[1] and "1000/100" in lines[1]


def test_logs_follow_prints_requests_as_they_are_logged(tmp_path: Path, database: str) -> None:
    write(database, [request(1, time.time())])
    follower = subprocess.Popen(
        [str(SLUICEGATE), "logs", "--follow", "--json", "--tail", "1", "--database", database],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        assert json.loads(follower.stdout.readline())["request_id"] == "req-1"
        write(database, [request(2, time.time()), request(3, time.time())])
        assert [json.loads(follower.stdout.readline())["request_id"] for _ in range(2)] == ["req-2", "req-3"]
    finally:
        follower.terminate()
        follower.wait(timeout=10)


def test_db_current_then_upgrade(invoke: object) -> None:
    before = invoke("db", "current")  # type: ignore[operator]
    assert "not migrated" in before.output
    upgraded = invoke("db", "upgrade")  # type: ignore[operator]
    assert upgraded.exit_code == 0
    assert f"at revision {HEAD} (head)" in upgraded.output
    assert f"at revision {HEAD} (head)" in invoke("db", "current").output  # type: ignore[operator]
    assert invoke("db", "upgrade").exit_code == 0


def test_an_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(SLUICEGATE), "usage", "--database", "postgresql://postgres:hunter2@127.0.0.1:1/none"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "cannot reach the database postgresql://postgres:***@127.0.0.1:1/none" in done.stderr
    assert "hunter2" not in done.stderr and "Traceback" not in done.stderr
