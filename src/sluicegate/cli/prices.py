"""`sluicegate prices` (price overrides kept in the store) and `sluicegate audit` (who changed what).

Prices written in the configuration file are listed (source `file`) but change only there; an override
here prices a model the packaged table prices differently or not at all, from the next request on.
"""

from __future__ import annotations

from typing import Any

import click

from sluicegate.cli._common import database_options, echo_json, echo_json_line, format_table
from sluicegate.cli.catalog import catalog_call
from sluicegate.cli.lang import t


def _price_rows(items: list[dict[str, Any]]) -> str:
    headers = t(
        "MODEL|SOURCE|INPUT /1M|OUTPUT /1M|CACHED /1M|CURRENCY",
        "模型|来源|输入/百万|输出/百万|缓存/百万|币种",
    ).split("|")
    rows = [
        (
            p["model"],
            t("file", "配置文件") if p["source"] == "file" else t("store", "数据库"),
            f"{p['input']:g}",
            f"{p['output']:g}",
            "-" if p["cached_input"] is None else f"{p['cached_input']:g}",
            p["currency"],
        )
        for p in items
    ]
    return format_table(headers, rows, right=(2, 3, 4))


@click.group()
def prices() -> None:
    """Price overrides per model (per million tokens), beside the packaged price table."""


@prices.command(name="list")
@database_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_prices(config: str | None, database: str | None, as_json: bool) -> None:
    """List price overrides from the file and the store."""
    items = catalog_call(config, database, lambda s: s.list_prices(), write=False)
    if as_json:
        echo_json(items)
    elif not items:
        click.echo(t("No price overrides (the packaged table prices).", "没有价格覆盖（使用内置价格表）。"))
    else:
        click.echo(_price_rows(items))


@prices.command(name="set")
@database_options
@click.argument("model")
@click.option("--input", "input_", type=float, required=True, help="Per million prompt tokens.")
@click.option("--output", type=float, required=True, help="Per million completion tokens.")
@click.option("--cached-input", type=float, help="Per million cached prompt tokens.")
@click.option("--currency", type=click.Choice(["USD", "CNY"]), default="USD", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def set_price(
    config: str | None,
    database: str | None,
    model: str,
    input_: float,
    output: float,
    cached_input: float | None,
    currency: str,
    as_json: bool,
) -> None:
    """Create or replace the price of a model."""
    body: dict[str, Any] = {"model": model, "input": input_, "output": output, "currency": currency}
    if cached_input is not None:
        body["cached_input"] = cached_input
    _, price = catalog_call(config, database, lambda s: s.set_price(body), write=True)
    if as_json:
        echo_json(price)
    else:
        click.echo(_price_rows([price]))


@prices.command(name="remove")
@database_options
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def remove_price(config: str | None, database: str | None, model: str, as_json: bool) -> None:
    """Remove a stored price override (the packaged price applies again)."""
    result = catalog_call(config, database, lambda s: s.delete_price(model), write=True)
    if as_json:
        echo_json(result)
    else:
        click.echo(t(f"Removed the price of {model}.", f"已删除 {model} 的价格。"))


@click.command()
@database_options
@click.option("--since", metavar="WHEN", help="7d, 12h, 30m ago, or a date / ISO date-time (UTC).")
@click.option("--until", metavar="WHEN", help="Same forms as --since.")
@click.option(
    "--target", metavar="NAME", help="Only changes to this upstream, model, channel, price or key (id)."
)
@click.option(
    "--kind", type=click.Choice(["upstream", "model", "channel", "price", "key"]), help="Only this kind."
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list).")
@click.option("--jsonl", "as_jsonl", is_flag=True, help="Print one JSON object a line (for export).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (for export).")
def audit(
    config: str | None,
    database: str | None,
    since: str | None,
    until: str | None,
    target: str | None,
    kind: str | None,
    limit: int,
    as_json: bool,
    as_jsonl: bool,
    as_csv: bool,
) -> None:
    """Who changed the catalog, what, when, before and after (secrets masked), newest first."""
    from sluicegate.catalog.audit import parse_since

    try:
        start, end = parse_since(since), parse_since(until)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc

    rows: list[dict[str, Any]] = catalog_call(
        config,
        database,
        lambda s: s.audit(since=start, until=end, target=target, kind=kind, limit=limit),
        write=False,
    )
    if as_json:
        echo_json(rows)
    elif as_jsonl:
        for row in rows:
            echo_json_line(row)
    elif as_csv:
        from sluicegate.admin.catalog import audit_csv

        click.echo(audit_csv(rows), nl=False)
    elif not rows:
        click.echo(t("No changes recorded.", "没有变更记录。"))
    else:
        headers = t("TIME|ACTOR|ACTION|KIND|TARGET|CHANGED", "时间|操作者|操作|类型|对象|变更字段").split("|")
        click.echo(
            format_table(
                headers,
                [
                    (
                        r["ts"],
                        r["actor"],
                        _word(r["action"], _ACTIONS_ZH),
                        _word(r["target_kind"], _KINDS_ZH),
                        r["target"],
                        _changed(r),
                    )
                    for r in rows
                ],
            )
        )


_ACTIONS_ZH = {
    "create": "创建", "update": "修改", "delete": "删除", "enable": "启用", "disable": "停用", "revoke": "吊销", "reset": "重置",
}  # fmt: skip
_KINDS_ZH = {"upstream": "上游", "model": "模型", "channel": "渠道", "price": "价格", "key": "密钥"}


def _word(word: str, chinese_words: dict[str, str]) -> str:
    return t(word, chinese_words.get(word, word))


def _changed(row: dict[str, Any]) -> str:
    before, after = row["before"] or {}, row["after"] or {}
    if not before or not after:
        return "-"
    fields = sorted(
        k for k in set(before) | set(after) if k != "updated_at" and before.get(k) != after.get(k)
    )
    return ", ".join(fields) or "-"
