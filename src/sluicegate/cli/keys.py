"""`sluicegate keys`: create, list, show, update and revoke managed API keys.

The secret is printed exactly once, by `create`; the store keeps only its SHA-256, so no other
command could print it even by mistake. Running gateways notice every change within a second
through the store's revision counter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click

from sluicegate.cli._common import (
    database_options,
    echo_json,
    format_table,
    iso_time,
    resolve_database,
    run_with_store,
    split_list,
)
from sluicegate.cli.lang import t
from sluicegate.store.records import KeyLimits, KeyRecord

_UNLIMITED_WORDS = ("none", "unlimited", "off")


class _LimitType(click.ParamType):
    """A positive number, or `0` / `none` meaning "no limit" (returned as 0)."""

    def __init__(self, kind: type[int] | type[float]) -> None:
        self.kind = kind
        self.name = "N|none" if kind is int else "X|none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = value
        elif str(value).strip().lower() in _UNLIMITED_WORDS:
            return 0
        else:
            try:
                number = self.kind(str(value).strip())
            except ValueError:
                what = "a whole number" if self.kind is int else "a number"
                self.fail(f"{value!r} is not {what} or 'none'", param, ctx)
        if number < 0:
            self.fail(f"{value!r} is negative; use 0 or 'none' for no limit", param, ctx)
        return number


INT_LIMIT = _LimitType(int)
USD_LIMIT = _LimitType(float)
_COUNT_LIMITS = ("rpm", "rpd", "tpm", "concurrency")


def _key_options(update: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The field options shared by `create` and `update`."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        options = [
            click.option("--name", required=not update, help="A name people recognise."),
            click.option("--owner", help="Who the key belongs to (team, person, service)."),
            click.option(
                "--user",
                "user_id",
                metavar="ID",
                help="The user the key belongs to; charged to their balance.",
            ),
            click.option(
                "--team", "team_id", metavar="ID", help="The team the key belongs to; charged to its balance."
            ),
            click.option(
                "--models", metavar="P,...", help="Allowed models: names or globs (gpt-4o*). '' = all."
            ),
            click.option(
                "--endpoints",
                metavar="E,...",
                help="Allowed endpoints: chat, completions, embeddings, images, audio, moderations, models, "
                "files, rerank, messages, or /v1/... prefixes. '' = all.",
            ),
            click.option(
                "--ip", "networks", metavar="CIDR,...", help="Client networks allowed. '' = anywhere."
            ),
            click.option("--rpm", type=INT_LIMIT, help="Requests per minute (0 or 'none': no limit)."),
            click.option("--rpd", type=INT_LIMIT, help="Requests per UTC day."),
            click.option("--tpm", type=INT_LIMIT, help="Tokens per minute."),
            click.option("--concurrency", type=INT_LIMIT, help="Requests in flight at once."),
            click.option("--budget-tokens", type=INT_LIMIT, help="Token budget for --budget-period."),
            click.option("--budget-usd", type=USD_LIMIT, help="Spending budget in USD for --budget-period."),
            click.option(
                "--budget-period",
                type=click.Choice(["day", "month", "total"]),
                help="Period of --budget-tokens/--budget-usd (UTC day, UTC month, or ever). Default: total.",
            ),
            click.option(
                "--expires", metavar="WHEN", help="30d, 12h, 90m, 2026-12-31 (00:00 UTC), or never."
            ),
            click.option(
                "--store-bodies/--no-store-bodies",
                default=None if update else False,
                help="Keep request and response bodies in the log (redacted).",
            ),
            click.option(
                "--cache",
                type=click.Choice(["on", "off", "default"]),
                help="Response cache for this key: on, off, or default (the config decides).",
            ),
        ]
        if update:
            options.append(
                click.option("--enable/--disable", "enabled", default=None, help="Turn the key on or off.")
            )
        options.append(click.option("--json", "as_json", is_flag=True, help="Print JSON."))
        for option in reversed(options):
            command = option(command)
        return database_options(command)

    return decorate


def option_fields(options: dict[str, Any], now: float) -> dict[str, Any]:
    """Store fields from the command-line options that were given."""
    from sluicegate.store.expiry import InvalidExpiry, parse_expiry
    from sluicegate.store.keyfields import InvalidKeyField, normalise_key_fields

    fields: dict[str, Any] = {}
    for name in ("name", "owner", "enabled", "store_bodies", "user_id", "team_id"):
        if options.get(name) is not None:
            fields[name] = options[name]
    if options.get("cache") is not None:
        fields["cache"] = None if options["cache"] == "default" else options["cache"]
    for name in ("models", "endpoints", "networks"):
        values = split_list(options.get(name))
        if values is not None:
            fields[name] = values
    for name in _COUNT_LIMITS:
        if options.get(name) is not None:
            fields[name] = options[name] or None
    period = options.get("budget_period")
    if period and options.get("budget_tokens") is None and options.get("budget_usd") is None:
        raise click.UsageError("--budget-period needs --budget-tokens or --budget-usd")
    for option, prefix in (("budget_tokens", "budget_tokens"), ("budget_usd", "budget_usd")):
        if options.get(option) is not None:
            fields[f"{prefix}_{period or 'total'}"] = options[option] or None
    if options.get("expires") is not None:
        try:
            fields["expires_at"] = parse_expiry(options["expires"], now)
        except InvalidExpiry as exc:
            raise click.BadParameter(str(exc), param_hint="--expires") from exc
    try:
        normalise_key_fields(fields)  # refuse bad input before touching the database
    except InvalidKeyField as exc:
        raise click.UsageError(str(exc)) from exc
    return fields


def _audit() -> Any:
    """Key changes from the CLI are audited as `cli:<user>`, like catalog changes."""
    from sluicegate.cli.catalog import cli_actor
    from sluicegate.store.keys import KeyAudit

    return KeyAudit(cli_actor(), lambda record: key_json(record, time.time()))


def _refuse_file_name(config: str | None, name: str) -> None:
    """Key names tell keys apart: a managed key may not reuse the name of one in the file."""
    from sluicegate.config import ConfigError, load_settings

    try:
        names = {k.name for k in load_settings(config).keys}
    except ConfigError:
        return  # resolve_database has already reported a broken file
    if name in names:
        raise click.ClickException(
            t(
                f"a key named {name!r} is already in the configuration file; choose another name",
                f"配置文件中已有名为 {name!r} 的密钥，请换一个名称",
            )
        )


def key_status(record: KeyRecord, now: float) -> str:
    """One word for the state of a key: revoked, expired, disabled or active."""
    if record.revoked_at is not None:
        return "revoked"
    if record.expires_at is not None and record.expires_at <= now:
        return "expired"
    return "active" if record.enabled else "disabled"


def key_json(record: KeyRecord, now: float) -> dict[str, Any]:
    """A key as printed by `--json`: every field except the hash; never the secret."""
    return {
        "id": record.id,
        "name": record.name,
        "owner": record.owner,
        "prefix": record.prefix,
        "status": key_status(record, now),
        "enabled": record.enabled,
        "models": list(record.models),
        "endpoints": list(record.endpoints),
        "networks": list(record.networks),
        "limits": {name: getattr(record.limits, name) for name in KeyLimits.__slots__},
        "store_bodies": record.store_bodies,
        "cache": record.cache,
        "user_id": record.user_id,
        "team_id": record.team_id,
        "expires_at": iso_time(record.expires_at),
        "revoked_at": iso_time(record.revoked_at),
        "created_at": iso_time(record.created_at),
        "updated_at": iso_time(record.updated_at),
    }


def _limits_text(limits: KeyLimits) -> str:
    parts = []
    for name in KeyLimits.__slots__:
        value = getattr(limits, name)
        if value is not None:
            label = name.replace("budget_tokens_", "tokens/").replace("budget_usd_", "usd/")
            parts.append(f"{label}={value:g}" if isinstance(value, float) else f"{label}={value}")
    return " ".join(parts) or "-"


_LABELS_ZH = {
    "id": "ID", "name": "名称", "owner": "所有者", "prefix": "前缀", "status": "状态", "models": "模型",
    "endpoints": "接口", "networks": "网段", "limits": "限额", "store bodies": "保存内容", "cache": "响应缓存",
    "expires": "过期时间", "created": "创建时间", "updated": "更新时间", "revoked": "吊销时间",
}  # fmt: skip


def _echo_key(record: KeyRecord, now: float) -> None:
    data = key_json(record, now)
    rows = [
        ("id", data["id"]), ("name", data["name"]), ("owner", data["owner"] or "-"),
        ("prefix", data["prefix"] + "…"), ("status", data["status"]),
        ("models", ", ".join(record.models) or t("all", "全部")),
        ("endpoints", ", ".join(record.endpoints) or t("all", "全部")),
        ("networks", ", ".join(record.networks) or t("anywhere", "不限")), ("limits", _limits_text(record.limits)),
        ("store bodies", t("yes", "是") if record.store_bodies else t("no", "否")),
        ("cache", record.cache or t("default", "默认")),
        ("expires", data["expires_at"] or t("never", "永不")),
        ("created", data["created_at"]), ("updated", data["updated_at"]),
    ]  # fmt: skip
    if record.revoked_at is not None:
        rows.append(("revoked", data["revoked_at"]))
    shown = [(t(label, _LABELS_ZH[label]), value) for label, value in rows]
    click.echo(format_table(["", ""], shown).split("\n", 1)[1])


@click.group()
def keys() -> None:
    """Manage API keys kept in the store (stored as hashes; changes reach gateways in ~1 s)."""


@keys.command()
@_key_options(update=False)
def create(config: str | None, database: str | None, as_json: bool, **options: Any) -> None:
    """Create a key and print its secret, once."""
    now = time.time()
    fields = option_fields(options, now)
    url = resolve_database(config, database)
    _refuse_file_name(config, fields["name"])
    record, secret = run_with_store(url, lambda store: store.keys.create(fields, _audit()))
    if as_json:
        echo_json({"key": secret, **key_json(record, now)})
        return
    if record.endpoints and not any(e in ("models", "/v1/models") for e in record.endpoints):
        click.echo(
            t(
                "note: this key cannot list models (GET /v1/models), which chat UIs call first; "
                "add 'models' to --endpoints if a chat UI will use it.",
                "注意：此密钥无法列出模型（GET /v1/models），而聊天界面会首先调用它；"
                "如需在聊天界面中使用，请在 --endpoints 中加入 models。",
            ),
            err=True,
        )
    click.echo(
        t(f"Created key {record.id} ({record.name}):", f"已创建密钥 {record.id}（{record.name}）：")
        + f"\n\n    {secret}\n"
    )
    click.echo(
        t(
            "This is the only time the key is shown: store it now (it is kept only as a hash).\n",
            "密钥只显示这一次，请立即保存（数据库中只保存其哈希）。\n",
        )
    )
    _echo_key(record, now)


@keys.command(name="list")
@database_options
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_keys(config: str | None, database: str | None, include_revoked: bool, as_json: bool) -> None:
    """List keys (never their secrets)."""
    url = resolve_database(config, database)
    records = run_with_store(url, lambda store: store.keys.list(include_revoked=include_revoked))
    now = time.time()
    if as_json:
        echo_json([key_json(r, now) for r in records])
        return
    if not records:
        click.echo(t("No keys.", "没有密钥。"))
        return
    rows = [
        (r.id, r.name, r.owner or "-", r.prefix + "…", key_status(r, now), ",".join(r.models) or "all",
         _limits_text(r.limits), iso_time(r.expires_at) or "never")
        for r in records
    ]  # fmt: skip
    headers = t(
        "ID|NAME|OWNER|PREFIX|STATUS|MODELS|LIMITS|EXPIRES", "ID|名称|所有者|前缀|状态|模型|限额|过期时间"
    )
    click.echo(format_table(headers.split("|"), rows))


@keys.command()
@database_options
@click.argument("key_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(config: str | None, database: str | None, key_id: str, as_json: bool) -> None:
    """Show one key, by its id or a unique prefix of the id or of the secret."""
    url = resolve_database(config, database)

    async def find(store: Any) -> KeyRecord | None:
        record: KeyRecord | None = await store.keys.get(await store.keys.resolve(key_id))
        return record

    record = run_with_store(url, find)
    if record is None:
        raise click.ClickException(f"no key with id {key_id!r}")
    _print_key(record, as_json)


@keys.command()
@click.argument("key_id")
@_key_options(update=True)
def update(config: str | None, database: str | None, key_id: str, as_json: bool, **options: Any) -> None:
    """Change a key's fields; a limit set to 0 or 'none' is removed, a list set to '' allows all."""
    fields = option_fields(options, time.time())
    if not fields:
        raise click.UsageError("nothing to change: give at least one option")
    url = resolve_database(config, database)

    async def change(store: Any) -> KeyRecord:
        record: KeyRecord = await store.keys.update(await store.keys.resolve(key_id), _audit(), **fields)
        return record

    record = run_with_store(url, change)
    _print_key(record, as_json)


@keys.command()
@database_options
@click.argument("key_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def revoke(config: str | None, database: str | None, key_id: str, as_json: bool) -> None:
    """Revoke a key for good; gateways refuse it within two seconds."""
    url = resolve_database(config, database)

    async def revoke_one(store: Any) -> KeyRecord:
        record: KeyRecord = await store.keys.revoke(await store.keys.resolve(key_id), _audit())
        return record

    record = run_with_store(url, revoke_one)
    if as_json:
        echo_json(key_json(record, time.time()))
    else:
        click.echo(
            t(
                f"Revoked {record.id} ({record.name}) at {iso_time(record.revoked_at)}.",
                f"已吊销 {record.id}（{record.name}），时间 {iso_time(record.revoked_at)}。",
            )
        )


def _print_key(record: KeyRecord, as_json: bool) -> None:
    now = time.time()
    if as_json:
        echo_json(key_json(record, now))
    else:
        _echo_key(record, now)
