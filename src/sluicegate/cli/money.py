"""`sluicegate balance|codes`: money from the shell: top-ups, the ledger, redemption codes (docs/tenancy.md).

Like the rest of tenancy's commands (cli/tenancy.py), each writes the store directly and running gateways
pick the change up at their next revision poll; every command takes `--json`.
"""

from __future__ import annotations

import time
from typing import Any

import click

from sluicegate.cli._common import database_options, echo_json, format_table, iso_time
from sluicegate.cli.lang import t
from sluicegate.cli.tenancy import JSON_OPTION, owner_of, user_id_of, with_tenancy


@click.group()
def balance() -> None:
    """Balances of users and teams: top up, and show with the ledger."""


@balance.command(name="topup")
@database_options
@click.argument("owner", metavar="USER_OR_TEAM_ID")
@click.argument("amount")
@click.option("--reason", required=True, help="Why (kept in the ledger).")
@JSON_OPTION
def topup(
    config: str | None, database: str | None, owner: str, amount: str, reason: str, as_json: bool
) -> None:
    """Credit AMOUNT (in the configured currency) to a user's or team's balance."""
    from sluicegate.cli.catalog import cli_actor
    from sluicegate.store.ledger import to_micro

    async def action(tenancy: Any) -> Any:
        who = await owner_of(tenancy, owner)
        entry = await tenancy.topup(who, to_micro(amount), reason, actor=cli_actor())
        return entry, await tenancy.balance(who)

    entry, now = with_tenancy(config, database, action)
    if as_json:
        echo_json({**now.to_json(), "entry": entry.to_json()})
    else:
        click.echo(
            t(
                f"Balance of {now.owner}: {now.to_json()['balance']} {now.currency}",
                f"{now.owner} 的余额：{now.to_json()['balance']} {now.currency}",
            )
        )


@balance.command(name="show")
@database_options
@click.argument("owner", metavar="ID")
@click.option(
    "--limit", type=int, default=50, show_default=True, help="Ledger entries to show, newest first."
)
@JSON_OPTION
def show_balance(config: str | None, database: str | None, owner: str, limit: int, as_json: bool) -> None:
    """Show a user's or team's balance and ledger."""

    async def action(tenancy: Any) -> Any:
        who = await owner_of(tenancy, owner)
        return await tenancy.balance(who), await tenancy.ledger(who, limit=limit)

    now, entries = with_tenancy(config, database, action)
    if as_json:
        echo_json({**now.to_json(), "ledger": [e.to_json() for e in entries]})
        return
    click.echo(
        t(
            f"Balance of {now.owner}: {now.to_json()['balance']} {now.currency}",
            f"{now.owner} 的余额：{now.to_json()['balance']} {now.currency}",
        )
    )
    if entries:
        rows = [
            [
                iso_time(e.created_at) or "",
                e.kind,
                f"{e.to_json()['amount']:+}",
                str(e.to_json()["balance_after"]),
                e.reason,
            ]
            for e in entries
        ]
        click.echo(
            format_table(
                [
                    t("time", "时间"),
                    t("kind", "类型"),
                    t("amount", "金额"),
                    t("after", "余额"),
                    t("reason", "原因"),
                ],
                rows,
            )
        )


# -- redemption codes ----------------------------------------------------------------------------------


@click.group()
def codes() -> None:
    """Redemption codes: create a batch, list them, redeem one for a user."""


@codes.command(name="create")
@database_options
@click.option("--amount", required=True, help="What each code credits, in the configured currency.")
@click.option("--count", type=click.IntRange(1, 10_000), default=1, show_default=True, help="How many codes.")
@click.option("--expires", help="When the codes expire: 30d, 12h, a date, or an ISO date-time.")
@JSON_OPTION
def create_codes(
    config: str | None, database: str | None, amount: str, count: int, expires: str | None, as_json: bool
) -> None:
    """Create a batch of codes and print them (this is the only time they are shown)."""
    from sluicegate.store.expiry import parse_expiry
    from sluicegate.store.ledger import from_micro, to_micro

    async def action(tenancy: Any) -> Any:
        expires_at = parse_expiry(expires, time.time()) if expires else None
        batch, made = await tenancy.create_codes(to_micro(amount), count, expires_at)
        return batch, made, expires_at, tenancy.currency

    batch, made, expires_at, currency = with_tenancy(config, database, action)
    if as_json:
        echo_json(
            {
                "batch_id": batch,
                "amount": from_micro(to_micro(amount)),
                "currency": currency,
                "expires_at": iso_time(expires_at),
                "codes": made,
            }
        )
        return
    click.echo("\n".join(made))
    click.echo(
        t(
            f"{count} code(s) in batch {batch}; they are kept only as hashes: export them now.",
            f"批次 {batch} 共 {count} 个兑换码；数据库只保存其哈希，请立即导出。",
        ),
        err=True,
    )


@codes.command(name="list")
@database_options
@click.option("--batch", help="Only this batch.")
@JSON_OPTION
def list_codes(config: str | None, database: str | None, batch: str | None, as_json: bool) -> None:
    """List codes (their first characters only) and who redeemed them."""
    found = with_tenancy(config, database, lambda tenancy: tenancy.list_codes(batch))
    if as_json:
        echo_json(found)
        return
    rows = [
        [
            c["prefix"] + "…",
            c["batch_id"],
            f"{c['amount']:g}",
            c["redeemed_by"] or "",
            iso_time(c["expires_at"]) or "",
        ]
        for c in found
    ]
    click.echo(
        format_table(
            [
                t("code", "兑换码"),
                t("batch", "批次"),
                t("amount", "金额"),
                t("redeemed by", "兑换人"),
                t("expires", "过期"),
            ],
            rows,
        )
    )


@codes.command(name="redeem")
@database_options
@click.argument("code")
@click.option("--user", "user", required=True, help="The user (id or name) the code is credited to.")
@JSON_OPTION
def redeem(config: str | None, database: str | None, code: str, user: str, as_json: bool) -> None:
    """Redeem a code for a user (each code works once)."""

    async def action(tenancy: Any) -> Any:
        uid = await user_id_of(tenancy, user)
        entry = await tenancy.redeem(code, uid)
        return entry, await tenancy.balance(uid)

    entry, now = with_tenancy(config, database, action)
    if as_json:
        echo_json({**now.to_json(), "entry": entry.to_json()})
    else:
        click.echo(
            t(
                f"Redeemed: balance {now.to_json()['balance']} {now.currency}",
                f"兑换成功：余额 {now.to_json()['balance']} {now.currency}",
            )
        )
