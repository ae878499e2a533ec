"""`sluicegate upstreams` and `sluicegate models`: the catalog's upstreams and model routes.

Upstreams and routes written in the configuration file are listed too (source `file`) but can only be
changed there; these commands add and change the others, kept in the store (see docs/configuration.md,
"The file and the store"). Provider keys are stored encrypted and never printed: `--api-key -` reads
the key from standard input, so it stays out of shell history.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from sluicegate.cli._common import database_options, echo_json, format_table
from sluicegate.cli.catalog import catalog_call, parse_channel
from sluicegate.cli.lang import t


def _upstream_options(update: bool) -> Any:
    def decorate(command: Any) -> Any:
        options = [
            click.option(
                "--preset", help="A provider preset (openai, deepseek, groq, ...): base URL and auth."
            ),
            click.option("--base-url", help="The provider's API base URL (http:// or https://)."),
            click.option("--api-key", help="The provider key ('-' reads it from standard input)."),
            click.option("--api-keys", metavar="K1,K2", help="Several provider keys used in turn."),
            click.option("--auth", type=click.Choice(["bearer", "api-key", "x-api-key", "none"])),
            click.option(
                "--header", "headers", multiple=True, metavar="NAME=VALUE", help="Extra header sent upstream."
            ),
            click.option("--api-version", help="Azure OpenAI api-version."),
            click.option("--rpm", type=int, help="Requests per minute this account may take."),
            click.option("--tpm", type=int, help="Tokens per minute this account may take."),
            click.option("--enable/--disable", "enabled", default=None, help="Route to it or not."),
            click.option("--json", "as_json", is_flag=True, help="Print JSON."),
        ]
        for option in reversed(options):
            command = option(command)
        return database_options(command)

    return decorate


def _upstream_body(options: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name in ("preset", "base_url", "auth", "api_version", "rpm", "tpm", "enabled"):
        if options.get(name) is not None:
            body[name] = options[name]
    key = options.get("api_key")
    if key is not None:
        body["api_key"] = sys.stdin.readline().strip() if key == "-" else key
    if options.get("api_keys") is not None:
        body["api_keys"] = [k.strip() for k in options["api_keys"].split(",") if k.strip()]
    if options.get("headers"):
        headers = {}
        for item in options["headers"]:
            name, sep, value = item.partition("=")
            if not sep:
                raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--header")
            headers[name.strip()] = value
        body["headers"] = headers
    return body


def _upstream_rows(items: list[dict[str, Any]]) -> str:
    headers = t(
        "NAME|SOURCE|STATE|KIND|BASE URL|API KEY|MODELS",
        "名称|来源|状态|类型|接口地址|API 密钥|模型",
    ).split("|")
    rows = [
        (
            u["name"],
            _source(u["source"]),
            t("enabled", "启用") if u["enabled"] else t("disabled", "停用"),
            u["kind"],
            u["base_url"] or "-",
            u["api_key"] or (f"{len(u['api_keys'])} " + t("keys", "个密钥") if u["api_keys"] else "-"),
            ", ".join(u["used_by"]) or "-",
        )
        for u in items
    ]
    return format_table(headers, rows)


def _source(source: str) -> str:
    return t("file", "配置文件") if source == "file" else t("store", "数据库")


def _echo(value: dict[str, Any], as_json: bool, table: Any) -> None:
    if as_json:
        echo_json(value)
    else:
        click.echo(table([value]))


@click.group()
def upstreams() -> None:
    """Provider accounts and servers the gateway forwards to (changes reach gateways in ~1 s)."""


@upstreams.command(name="list")
@database_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_upstreams(config: str | None, database: str | None, as_json: bool) -> None:
    """List upstreams from the file and the store (keys masked)."""
    items = catalog_call(config, database, lambda s: s.list_upstreams(), write=False)
    if as_json:
        echo_json(items)
    elif not items:
        click.echo(t("No upstreams (the built-in mock serves).", "没有上游（由内置 mock 提供服务）。"))
    else:
        click.echo(_upstream_rows(items))


@upstreams.command()
@database_options
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(config: str | None, database: str | None, name: str, as_json: bool) -> None:
    """Show one upstream (keys masked)."""
    _echo(
        catalog_call(config, database, lambda s: s.get_upstream(name), write=False), as_json, _upstream_rows
    )


@upstreams.command()
@click.argument("name")
@_upstream_options(update=False)
def add(config: str | None, database: str | None, name: str, as_json: bool, **options: Any) -> None:
    """Add an upstream to the store; its key is stored encrypted (needs SLUICEGATE_MASTER_KEY)."""
    body = {"name": name, **_upstream_body(options)}
    result = catalog_call(config, database, lambda s: s.create_upstream(body), write=True)
    _echo(result, as_json, _upstream_rows)


@upstreams.command()
@click.argument("name")
@_upstream_options(update=True)
def update(config: str | None, database: str | None, name: str, as_json: bool, **options: Any) -> None:
    """Change a stored upstream's fields (the others are kept, the key included)."""
    body = _upstream_body(options)
    if not body:
        raise click.UsageError("nothing to change: give at least one option")
    result = catalog_call(config, database, lambda s: s.update_upstream(name, body), write=True)
    _echo(result, as_json, _upstream_rows)


@upstreams.command()
@database_options
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def remove(config: str | None, database: str | None, name: str, as_json: bool) -> None:
    """Remove a stored upstream (refused while a model route uses it)."""
    result = catalog_call(config, database, lambda s: s.delete_upstream(name), write=True)
    if as_json:
        echo_json(result)
    else:
        click.echo(t(f"Removed upstream {name}.", f"已删除上游 {name}。"))


# -- models -------------------------------------------------------------------------------------------


def _model_rows(items: list[dict[str, Any]]) -> str:
    headers = t("MODEL|SOURCE|STATE|CHANNELS", "模型|来源|状态|渠道").split("|")
    rows = []
    for m in items:
        channels = ", ".join(
            c["name"] + (f" (w{c['weight']} p{c['priority']})" if len(m["channels"]) > 1 else "")
            for c in m["channels"]
        )
        state = t("enabled", "启用") if m["enabled"] else t("disabled", "停用")
        rows.append((m["name"], _source(m["source"]), state, channels))
    return format_table(headers, rows)


_CHANNEL_HELP = "UPSTREAM[/MODEL][,weight=N][,priority=N][,rpm=N][,tpm=N]; repeat for several channels."


@click.group()
def models() -> None:
    """Public model names and the channels that serve them (changes reach gateways in ~1 s)."""


@models.command(name="list")
@database_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_models(config: str | None, database: str | None, as_json: bool) -> None:
    """List model routes from the file and the store."""
    items = catalog_call(config, database, lambda s: s.list_models(), write=False)
    if as_json:
        echo_json(items)
    elif not items:
        click.echo(t("No model routes.", "没有模型路由。"))
    else:
        click.echo(_model_rows(items))


@models.command(name="show")
@database_options
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show_model(config: str | None, database: str | None, name: str, as_json: bool) -> None:
    """Show one model route."""
    _echo(catalog_call(config, database, lambda s: s.get_model(name), write=False), as_json, _model_rows)


@models.command(name="add")
@database_options
@click.argument("name")
@click.option("--channel", "channels", multiple=True, required=True, metavar="SPEC", help=_CHANNEL_HELP)
@click.option("--disable", "disabled", is_flag=True, help="Store it switched off.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def add_model(
    config: str | None,
    database: str | None,
    name: str,
    channels: tuple[str, ...],
    disabled: bool,
    as_json: bool,
) -> None:
    """Add a public model name served by one or more channels."""
    body = {"name": name, "channels": [parse_channel(c) for c in channels], "enabled": not disabled}
    _echo(catalog_call(config, database, lambda s: s.create_model(body), write=True), as_json, _model_rows)


@models.command(name="update")
@database_options
@click.argument("name")
@click.option(
    "--channel", "channels", multiple=True, metavar="SPEC", help=_CHANNEL_HELP + " Replaces them all."
)
@click.option("--enable/--disable", "enabled", default=None, help="Serve it or not.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def update_model(
    config: str | None,
    database: str | None,
    name: str,
    channels: tuple[str, ...],
    enabled: bool | None,
    as_json: bool,
) -> None:
    """Replace a stored route's channels, or switch it on or off."""
    body: dict[str, Any] = {}
    if channels:
        body["channels"] = [parse_channel(c) for c in channels]
    if enabled is not None:
        body["enabled"] = enabled
    if not body:
        raise click.UsageError("nothing to change: give --channel or --enable/--disable")
    _echo(
        catalog_call(config, database, lambda s: s.update_model(name, body), write=True), as_json, _model_rows
    )


@models.command(name="remove")
@database_options
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def remove_model(config: str | None, database: str | None, name: str, as_json: bool) -> None:
    """Remove a stored model route; requests for it are refused within a second."""
    result = catalog_call(config, database, lambda s: s.delete_model(name), write=True)
    if as_json:
        echo_json(result)
    else:
        click.echo(t(f"Removed model {name}.", f"已删除模型 {name}。"))
