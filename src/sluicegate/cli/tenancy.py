"""`sluicegate users|teams|groups|balance|codes`: tenancy from the shell (docs/tenancy.md).

Each command writes the store directly, like `sluicegate keys`; running gateways pick the change up at
their next revision poll (about half a second). Every command takes `--json` for scripts. Passwords
are read from standard input (`--password-stdin`), never from the command line, where `ps` shows them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from sluicegate.cli._common import (
    database_options,
    echo_json,
    format_table,
    iso_time,
    resolve_database,
    run,
    split_list,
)
from sluicegate.cli.lang import t

T = TypeVar("T")


def _with_tenancy(config: str | None, database: str | None, action: Callable[[Any], Awaitable[T]]) -> T:
    """Open the store with the configuration's currency and run `action(store.tenancy)`; the tenancy
    errors become clear messages (exit code 1)."""
    from sluicegate.config import ConfigError, load_settings
    from sluicegate.store import Store
    from sluicegate.store.expiry import InvalidExpiry
    from sluicegate.store.ledger import CodeRefused, InvalidAmount, OwnerNotFound
    from sluicegate.store.passwords import WeakPassword
    from sluicegate.store.tenancy_types import TenancyError

    url = resolve_database(config, database)
    try:
        currency = load_settings(config).tenancy.currency
    except ConfigError:
        currency = "USD"

    async def main() -> T:
        store = await Store.open(url)
        store.tenancy.currency = currency
        try:
            return await action(store.tenancy)
        except OwnerNotFound as exc:
            raise click.ClickException(
                t(f"no user or team {exc.args[0]!r}", f"没有用户或团队 {exc.args[0]!r}")
            ) from None
        except (TenancyError, InvalidAmount, CodeRefused, WeakPassword, InvalidExpiry) as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            await store.close()

    return run(main(), url)


async def _user_id(tenancy: Any, id_or_name: str) -> str:
    from sluicegate.store.ledger import OwnerNotFound

    user = await tenancy.get_user(id_or_name)
    if user is None:
        raise OwnerNotFound(id_or_name)
    return str(user.id)


async def _team_id(tenancy: Any, id_or_name: str | None) -> str | None:
    from sluicegate.store.ledger import OwnerNotFound

    if id_or_name is None:
        return None
    team = await tenancy.get_team(id_or_name)
    if team is None:
        raise OwnerNotFound(id_or_name)
    return str(team.id)


async def _owner(tenancy: Any, id_or_name: str) -> str:
    """A user or team id, or a user's or team's name, as "user:<id>" / "team:<id>"."""
    from sluicegate.store.ledger import OwnerNotFound, parse_owner

    try:
        kind, owner_id = parse_owner(id_or_name)
        return f"{kind}:{owner_id}"
    except OwnerNotFound:
        pass
    user = await tenancy.get_user(id_or_name)
    if user is not None:
        return f"user:{user.id}"
    team = await tenancy.get_team(id_or_name)
    if team is not None:
        return f"team:{team.id}"
    raise OwnerNotFound(id_or_name)


def _read_password() -> str:
    """One line from standard input (a pipe, or typed without echo at a terminal)."""
    if sys.stdin.isatty():
        return str(click.prompt(t("Password", "密码"), hide_input=True, confirmation_prompt=True))
    return sys.stdin.readline().rstrip("\r\n")


_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _limit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """rpm, rpd, tpm and concurrency over all of a user's (or team's) keys together."""
    for name, text in reversed(
        (
            ("rpm", "Requests per minute over all their keys (0: no limit)."),
            ("rpd", "Requests per UTC day over all their keys (0: no limit)."),
            ("tpm", "Tokens per minute over all their keys (0: no limit)."),
            ("concurrency", "Requests in flight at once over all their keys (0: no limit)."),
        )
    ):
        command = click.option(f"--{name}", name, type=click.IntRange(min=0), help=text)(command)
    return command


def _given_limits(options: dict[str, Any]) -> dict[str, Any]:
    return {
        name: options[name] for name in ("rpm", "rpd", "tpm", "concurrency") if options.get(name) is not None
    }


# -- users ---------------------------------------------------------------------------------------------


@click.group()
def users() -> None:
    """Manage users: people who hold a balance and keys (see docs/tenancy.md)."""


@users.command(name="create")
@database_options
@click.option("--name", required=True, help="The user's name (unique; they sign in with it).")
@click.option("--team", "team", metavar="TEAM", help="Team id or name to put the user in.")
@click.option("--group", "group", default="default", show_default=True, help="Price group of the user.")
@click.option(
    "--role",
    type=click.Choice(["operator", "team_admin", "member", "viewer"]),
    default="member",
    show_default=True,
    help="What the user may do.",
)
@click.option("--password-stdin", is_flag=True, help="Read the user's password from standard input.")
@_JSON
def create_user(
    config: str | None,
    database: str | None,
    name: str,
    team: str | None,
    group: str,
    role: str,
    password_stdin: bool,
    as_json: bool,
) -> None:
    """Create a user and print its id."""
    password = _read_password() if password_stdin else None

    async def action(tenancy: Any) -> Any:
        return await tenancy.create_user(
            name, role=role, group=group, team_id=await _team_id(tenancy, team), password=password
        )

    user = _with_tenancy(config, database, action)
    if as_json:
        echo_json(user.to_json())
    else:
        click.echo(user.id)


@users.command(name="list")
@database_options
@_JSON
def list_users(config: str | None, database: str | None, as_json: bool) -> None:
    """List users (never their passwords)."""
    found = _with_tenancy(config, database, lambda tenancy: tenancy.list_users())
    if as_json:
        echo_json([u.to_json() for u in found])
        return
    if not found:
        click.echo(t("No users.", "没有用户。"))
        return
    rows = [
        [u.id, u.name, u.role, u.group, u.team_id or "", t("disabled", "已停用") if u.disabled else ""]
        for u in found
    ]
    click.echo(format_table([t(h, z) for h, z in _USER_HEADERS], rows))


_USER_HEADERS = (
    ("id", "id"),
    ("name", "名称"),
    ("role", "角色"),
    ("group", "分组"),
    ("team", "团队"),
    ("", ""),
)


@users.command(name="show")
@database_options
@click.argument("user")
@_JSON
def show_user(config: str | None, database: str | None, user: str, as_json: bool) -> None:
    """Show one user (by id or name) with their balance."""

    async def action(tenancy: Any) -> Any:
        found = await tenancy.get_user(await _user_id(tenancy, user))
        return found, await tenancy.balance(found.id)

    found, balance = _with_tenancy(config, database, action)
    data = {**found.to_json(), "balance": balance.to_json()}
    if as_json:
        echo_json(data)
        return
    for label, value in found.to_json().items():
        click.echo(f"{label:14} {value}")
    click.echo(f"{'balance':14} {balance.to_json()['balance']} {balance.currency}")


@users.command(name="update")
@database_options
@click.argument("user")
@click.option("--name", help="A new name.")
@click.option("--team", "team", metavar="TEAM", help="Team id or name to put the user in.")
@click.option("--group", "group", help="Price group of the user.")
@click.option(
    "--role", type=click.Choice(["operator", "team_admin", "member", "viewer"]), help="What the user may do."
)
@click.option("--disable/--enable", "disabled", default=None, help="Stop (or allow again) the user's keys.")
@click.option("--password-stdin", is_flag=True, help="Read the user's password from standard input.")
@click.option(
    "--sso-subject",
    metavar="SUB",
    help="Link the user to this single sign-on subject (the ID token's `sub`) at portal.oidc.issuer.",
)
@click.option(
    "--sso-issuer", metavar="URL", help="The issuer for --sso-subject (default: portal.oidc.issuer)."
)
@click.option("--no-sso", is_flag=True, help="Remove the user's single sign-on link.")
@_limit_options
@_JSON
def update_user(
    config: str | None,
    database: str | None,
    user: str,
    name: str | None,
    team: str | None,
    group: str | None,
    role: str | None,
    disabled: bool | None,
    password_stdin: bool,
    sso_subject: str | None,
    sso_issuer: str | None,
    no_sso: bool,
    as_json: bool,
    **limits: Any,
) -> None:
    """Change a user (by id or name)."""
    fields: dict[str, Any] = {
        k: v
        for k, v in (("name", name), ("group", group), ("role", role), ("disabled", disabled))
        if v is not None
    }
    fields.update(_given_limits(limits))
    if password_stdin:
        fields["password"] = _read_password()
    if no_sso:
        fields["sso"] = None
    elif sso_subject is not None:
        fields["sso"] = (sso_issuer or _configured_issuer(config), sso_subject)

    async def action(tenancy: Any) -> Any:
        if team is not None:
            fields["team_id"] = await _team_id(tenancy, team)
        if not fields:
            raise click.UsageError(t("nothing to change", "没有要修改的内容"))
        return await tenancy.update_user(await _user_id(tenancy, user), **fields)

    updated = _with_tenancy(config, database, action)
    if as_json:
        echo_json(updated.to_json())
    else:
        click.echo(
            t(f"Updated user {updated.id} ({updated.name}).", f"已更新用户 {updated.id}（{updated.name}）。")
        )


def _configured_issuer(config: str | None) -> str:
    from sluicegate.config import ConfigError, load_settings

    try:
        oidc = load_settings(config).portal.oidc
    except ConfigError:
        oidc = None
    if oidc is None:
        raise click.UsageError(
            t(
                "--sso-subject needs --sso-issuer, or portal.oidc in the configuration",
                "--sso-subject 需要 --sso-issuer，或配置中的 portal.oidc",
            )
        )
    return oidc.issuer


# -- teams ---------------------------------------------------------------------------------------------


@click.group()
def teams() -> None:
    """Manage teams: members, and a balance team keys are charged to."""


@teams.command(name="create")
@database_options
@click.option("--name", required=True, help="The team's name (unique).")
@click.option(
    "--group", "group", default="default", show_default=True, help="Price group of the team's keys."
)
@_JSON
def create_team(config: str | None, database: str | None, name: str, group: str, as_json: bool) -> None:
    """Create a team and print its id."""
    team = _with_tenancy(config, database, lambda tenancy: tenancy.create_team(name, group=group))
    if as_json:
        echo_json(team.to_json())
    else:
        click.echo(team.id)


@teams.command(name="update")
@database_options
@click.argument("team")
@click.option("--name", help="A new name.")
@click.option("--group", "group", help="Price group of the team's keys.")
@_limit_options
@_JSON
def update_team(
    config: str | None,
    database: str | None,
    team: str,
    name: str | None,
    group: str | None,
    as_json: bool,
    **limits: Any,
) -> None:
    """Change a team (by id or name): name, group, limits over all its keys."""
    fields: dict[str, Any] = {k: v for k, v in (("name", name), ("group", group)) if v is not None}
    fields.update(_given_limits(limits))

    async def action(tenancy: Any) -> Any:
        team_id = await _team_id(tenancy, team)
        return await tenancy.update_team(team_id, **fields)

    updated = _with_tenancy(config, database, action)
    if as_json:
        echo_json(updated.to_json())
    else:
        click.echo(
            t(f"Updated team {updated.id} ({updated.name}).", f"已更新团队 {updated.id}（{updated.name}）。")
        )


@teams.command(name="list")
@database_options
@_JSON
def list_teams(config: str | None, database: str | None, as_json: bool) -> None:
    """List teams with their members."""
    found = _with_tenancy(config, database, lambda tenancy: tenancy.list_teams())
    if as_json:
        echo_json([x.to_json() for x in found])
        return
    if not found:
        click.echo(t("No teams.", "没有团队。"))
        return
    rows = [[x.id, x.name, x.group, str(len(x.members))] for x in found]
    click.echo(format_table(["id", t("name", "名称"), t("group", "分组"), t("members", "成员")], rows))


@teams.command(name="add-member")
@database_options
@click.argument("team")
@click.argument("user")
@click.option(
    "--role",
    type=click.Choice(["team_admin", "member", "viewer"]),
    default="member",
    show_default=True,
    help="The member's role in the team.",
)
@_JSON
def add_member(
    config: str | None, database: str | None, team: str, user: str, role: str, as_json: bool
) -> None:
    """Add a user to a team (ids or names)."""

    async def action(tenancy: Any) -> Any:
        team_id = await _team_id(tenancy, team)
        return await tenancy.add_member(team_id, await _user_id(tenancy, user), role)

    updated = _with_tenancy(config, database, action)
    if as_json:
        echo_json(updated.to_json())
    else:
        click.echo(
            t(
                f"Team {updated.name} has {len(updated.members)} member(s).",
                f"团队 {updated.name} 现有 {len(updated.members)} 名成员。",
            )
        )


# -- groups --------------------------------------------------------------------------------------------


@click.group()
def groups() -> None:
    """Manage price groups: a ratio on model prices, and which models a group sees."""


@groups.command(name="set")
@database_options
@click.argument("name")
@click.option("--ratio", type=float, help="Multiplier on model prices for this group (e.g. 0.8).")
@click.option("--description", help="What the group is for.")
@click.option("--models", help="Comma-separated models the group may see (default: every model).")
@click.option("--all-models", is_flag=True, help="Let the group see every model again.")
@_JSON
def set_group(
    config: str | None,
    database: str | None,
    name: str,
    ratio: float | None,
    description: str | None,
    models: str | None,
    all_models: bool,
    as_json: bool,
) -> None:
    """Create or change a group."""
    visible = [] if all_models else split_list(models)
    group = _with_tenancy(
        config,
        database,
        lambda tenancy: tenancy.set_group(name, ratio=ratio, description=description, models=visible),
    )
    if as_json:
        echo_json(group.to_json())
    else:
        shown = ", ".join(group.models) or t("every model", "全部模型")
        click.echo(f"{group.name}: ratio {group.ratio:g}, {shown}")


@groups.command(name="list")
@database_options
@_JSON
def list_groups(config: str | None, database: str | None, as_json: bool) -> None:
    """List groups with their ratios and models."""
    found = _with_tenancy(config, database, lambda tenancy: tenancy.list_groups())
    if as_json:
        echo_json([g.to_json() for g in found])
        return
    rows = [[g.name, f"{g.ratio:g}", ", ".join(g.models) or t("all", "全部"), g.description] for g in found]
    click.echo(
        format_table(
            [t("group", "分组"), t("ratio", "倍率"), t("models", "模型"), t("description", "说明")], rows
        )
    )


# -- balances ------------------------------------------------------------------------------------------


@click.group()
def balance() -> None:
    """Balances of users and teams: top up, and show with the ledger."""


@balance.command(name="topup")
@database_options
@click.argument("owner", metavar="USER_OR_TEAM_ID")
@click.argument("amount")
@click.option("--reason", required=True, help="Why (kept in the ledger).")
@_JSON
def topup(
    config: str | None, database: str | None, owner: str, amount: str, reason: str, as_json: bool
) -> None:
    """Credit AMOUNT (in the configured currency) to a user's or team's balance."""
    from sluicegate.cli.catalog import cli_actor
    from sluicegate.store.ledger import to_micro

    async def action(tenancy: Any) -> Any:
        who = await _owner(tenancy, owner)
        entry = await tenancy.topup(who, to_micro(amount), reason, actor=cli_actor())
        return entry, await tenancy.balance(who)

    entry, now = _with_tenancy(config, database, action)
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
@_JSON
def show_balance(config: str | None, database: str | None, owner: str, limit: int, as_json: bool) -> None:
    """Show a user's or team's balance and ledger."""

    async def action(tenancy: Any) -> Any:
        who = await _owner(tenancy, owner)
        return await tenancy.balance(who), await tenancy.ledger(who, limit=limit)

    now, entries = _with_tenancy(config, database, action)
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
@_JSON
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

    batch, made, expires_at, currency = _with_tenancy(config, database, action)
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
@_JSON
def list_codes(config: str | None, database: str | None, batch: str | None, as_json: bool) -> None:
    """List codes (their first characters only) and who redeemed them."""
    found = _with_tenancy(config, database, lambda tenancy: tenancy.list_codes(batch))
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
@_JSON
def redeem(config: str | None, database: str | None, code: str, user: str, as_json: bool) -> None:
    """Redeem a code for a user (each code works once)."""

    async def action(tenancy: Any) -> Any:
        uid = await _user_id(tenancy, user)
        entry = await tenancy.redeem(code, uid)
        return entry, await tenancy.balance(uid)

    entry, now = _with_tenancy(config, database, action)
    if as_json:
        echo_json({**now.to_json(), "entry": entry.to_json()})
    else:
        click.echo(
            t(
                f"Redeemed: balance {now.to_json()['balance']} {now.currency}",
                f"兑换成功：余额 {now.to_json()['balance']} {now.currency}",
            )
        )
