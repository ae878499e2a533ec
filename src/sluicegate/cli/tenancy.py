"""`sluicegate users|teams|groups`: tenancy from the shell (docs/tenancy.md); `balance` and `codes` are in
cli/money.py.

Each command writes the store directly, like `sluicegate keys`; running gateways pick the change up at
their next revision poll (about half a second). Every command takes `--json` for scripts. Passwords
are read from standard input (`--password-stdin`), never from the command line, where `ps` shows them.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from sluicegate.cli._common import (
    database_options,
    echo_json,
    format_table,
    resolve_database,
    run,
    split_list,
)
from sluicegate.cli.lang import t

T = TypeVar("T")


def with_tenancy(config: str | None, database: str | None, action: Callable[[Any], Awaitable[T]]) -> T:
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


async def user_id_of(tenancy: Any, id_or_name: str) -> str:
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


async def owner_of(tenancy: Any, id_or_name: str) -> str:
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


JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


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
@JSON_OPTION
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

    user = with_tenancy(config, database, action)
    if as_json:
        echo_json(user.to_json())
    else:
        click.echo(user.id)


@users.command(name="list")
@database_options
@JSON_OPTION
def list_users(config: str | None, database: str | None, as_json: bool) -> None:
    """List users (never their passwords)."""
    found = with_tenancy(config, database, lambda tenancy: tenancy.list_users())
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
@JSON_OPTION
def show_user(config: str | None, database: str | None, user: str, as_json: bool) -> None:
    """Show one user (by id or name) with their balance."""

    async def action(tenancy: Any) -> Any:
        found = await tenancy.get_user(await user_id_of(tenancy, user))
        return found, await tenancy.balance(found.id)

    found, balance = with_tenancy(config, database, action)
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
@JSON_OPTION
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
        return await tenancy.update_user(await user_id_of(tenancy, user), **fields)

    updated = with_tenancy(config, database, action)
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
@JSON_OPTION
def create_team(config: str | None, database: str | None, name: str, group: str, as_json: bool) -> None:
    """Create a team and print its id."""
    team = with_tenancy(config, database, lambda tenancy: tenancy.create_team(name, group=group))
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
@JSON_OPTION
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

    updated = with_tenancy(config, database, action)
    if as_json:
        echo_json(updated.to_json())
    else:
        click.echo(
            t(f"Updated team {updated.id} ({updated.name}).", f"已更新团队 {updated.id}（{updated.name}）。")
        )


@teams.command(name="list")
@database_options
@JSON_OPTION
def list_teams(config: str | None, database: str | None, as_json: bool) -> None:
    """List teams with their members."""
    found = with_tenancy(config, database, lambda tenancy: tenancy.list_teams())
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
@JSON_OPTION
def add_member(
    config: str | None, database: str | None, team: str, user: str, role: str, as_json: bool
) -> None:
    """Add a user to a team (ids or names)."""

    async def action(tenancy: Any) -> Any:
        team_id = await _team_id(tenancy, team)
        return await tenancy.add_member(team_id, await user_id_of(tenancy, user), role)

    updated = with_tenancy(config, database, action)
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
@JSON_OPTION
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
    group = with_tenancy(
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
@JSON_OPTION
def list_groups(config: str | None, database: str | None, as_json: bool) -> None:
    """List groups with their ratios and models."""
    found = with_tenancy(config, database, lambda tenancy: tenancy.list_groups())
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
