"""`sluicegate usage` (token and cost reports) and `sluicegate logs` (the request log).

Reports read the daily aggregates the log writer keeps, so a year of usage is a few hundred rows
and answers at once; `logs` reads the raw request log, which retention may have trimmed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import click

from sluicegate.cli._common import (
    database_options,
    echo_json,
    echo_json_line,
    format_table,
    iso_time,
    resolve_database,
    run,
    run_with_store,
)
from sluicegate.cli.lang import chinese, t

_DAYS_AGO = re.compile(r"^(\d+)d$")
FOLLOW_INTERVAL_S = 0.5


class DayType(click.ParamType):
    """A UTC day: YYYY-MM-DD, `today`, `yesterday`, or `Nd` (N days before today)."""

    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        text = str(value).strip().lower()
        today = datetime.now(UTC).date()
        if text in ("today", "yesterday"):
            return today - timedelta(days=text == "yesterday")
        match = _DAYS_AGO.match(text)
        if match:
            return today - timedelta(days=int(match.group(1)))
        try:
            return date.fromisoformat(text)
        except ValueError:
            self.fail(f"{value!r} is not a date: use YYYY-MM-DD, today, yesterday or 7d", param, ctx)


_COLUMNS = {
    "key_id": "KEY", "key_name": "NAME", "model": "MODEL", "day": "DAY", "requests": "REQUESTS",
    "errors": "ERRORS", "prompt_tokens": "PROMPT", "completion_tokens": "COMPLETION",
    "cached_tokens": "CACHED", "reasoning_tokens": "REASONING", "cost": "COST", "currency": "CUR",
}  # fmt: skip
_COLUMNS_ZH = {
    "key_id": "密钥 ID",
    "key_name": "密钥名称",
    "model": "模型",
    "day": "日期",
    "requests": "请求数",
    "errors": "错误数",
    "prompt_tokens": "输入",
    "completion_tokens": "输出",
    "cached_tokens": "缓存",
    "reasoning_tokens": "推理",
    "cost": "费用",
    "currency": "币种",
}
_LEADING = {
    None: ("key_id", "key_name", "model"),
    "key": ("key_id", "key_name"),
    "model": ("model",),
    "day": ("day",),
}
_NUMBERS = (
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost",
)


def usage_table(rows: list[dict[str, Any]], by: str | None) -> str:
    """Usage rows as an aligned table whose leading columns follow the grouping."""
    names = [*_LEADING[by], *_NUMBERS, "currency"]
    lead = len(_LEADING[by])
    body = [
        [
            ("-" if row.get(n) is None else row[n]) if i < lead else _number(n, row[n])
            for i, n in enumerate(names)
        ]
        for row in rows
    ]
    right = range(lead, lead + len(_NUMBERS))
    columns = _COLUMNS_ZH if chinese() else _COLUMNS
    return format_table([columns[n] for n in names], body, right=right)


def _number(name: str, value: Any) -> str:
    if name == "cost":
        return f"{value:,.4f}"
    if name == "currency":
        return str(value)
    return f"{value:,}"


@click.command()
@database_options
@click.option("--since", type=DayType(), help="First UTC day to include (YYYY-MM-DD, today, 7d).")
@click.option("--until", type=DayType(), help="Last UTC day to include.")
@click.option("--key", "key_id", metavar="ID", help="Only this key.")
@click.option("--model", help="Only this model (the name clients requested).")
@click.option(
    "--by",
    type=click.Choice(["key", "model", "day"]),
    help="Group by key, model or day (default: key and model).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of rows.")
def usage(
    config: str | None,
    database: str | None,
    since: date | None,
    until: date | None,
    key_id: str | None,
    model: str | None,
    by: str | None,
    as_json: bool,
) -> None:
    """Requests, tokens and cost per key, model or day (UTC days, both ends inclusive)."""
    url = resolve_database(config, database)
    rows = run_with_store(
        url, lambda store: store.usage.query(since=since, until=until, key_id=key_id, model=model, by=by)
    )
    if as_json:
        echo_json(rows)
    elif rows:
        click.echo(usage_table(rows, by))
    else:
        click.echo(t("No usage in this period.", "该时间段内没有用量。"))


def log_json(entry_id: int, record: Any) -> dict[str, Any]:
    """One logged request as JSON: its row id, every record field, and the time in ISO form."""
    return {"id": entry_id, "time": iso_time(record.ts), **dataclasses.asdict(record)}


def _log_row(entry_id: int, r: Any) -> list[Any]:
    return [
        datetime.fromtimestamp(r.ts, UTC).strftime("%Y-%m-%d %H:%M:%S"), entry_id, r.key_name or r.key_id or "-",
        r.endpoint, r.model_requested or "-", r.status, f"{r.prompt_tokens}/{r.completion_tokens}",
        f"{r.cost:.6f}", f"{r.latency_ms:.0f}ms",
    ]  # fmt: skip


_LOG_HEADERS = ("TIME (UTC)", "ID", "KEY", "ENDPOINT", "MODEL", "STATUS", "TOKENS P/C", "COST", "LATENCY")
_LOG_HEADERS_ZH = ("时间 (UTC)", "ID", "密钥", "接口", "模型", "状态", "TOKEN 输入/输出", "费用", "延迟")


def _echo_logs(entries: list[Any], as_json: bool, header: bool) -> None:
    if as_json:
        for entry in entries:
            echo_json_line(log_json(entry.id, entry.record))
        return
    table = format_table(
        _LOG_HEADERS_ZH if chinese() else _LOG_HEADERS,
        [_log_row(e.id, e.record) for e in entries],
        right=(1, 5, 7, 8),
    )
    lines = table.splitlines()
    click.echo("\n".join(lines if header else lines[1:]))


@click.command()
@database_options
@click.option(
    "--tail",
    "count",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="How many recent requests.",
)
@click.option(
    "--follow", "-f", is_flag=True, help="Keep printing new requests as they are logged (Ctrl-C stops)."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
def logs(config: str | None, database: str | None, count: int, follow: bool, as_json: bool) -> None:
    """The most recent requests from the request log."""
    from sluicegate.store import Store

    url = resolve_database(config, database)

    async def main() -> None:
        store = await Store.open(url)
        try:
            entries = await store.usage.tail(count)
            if entries:
                _echo_logs(entries, as_json, header=True)
            elif not follow and not as_json:
                click.echo(t("No requests logged.", "没有请求日志。"))
            last_id = entries[-1].id if entries else await _last_id(store)
            while follow:
                await asyncio.sleep(FOLLOW_INTERVAL_S)
                entries = await store.usage.after(last_id)
                if entries:
                    _echo_logs(entries, as_json, header=False)
                    last_id = entries[-1].id
        finally:
            await store.close()

    try:
        run(main(), url)
    except KeyboardInterrupt:
        pass


async def _last_id(store: Any) -> int:
    newest = await store.usage.tail(1)
    return newest[-1].id if newest else 0
