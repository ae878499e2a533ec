"""`sluicegate channels status|test|reset|enable|disable`: the running gateway's channels.

Channel health lives in the gateway process (and Redis when shared), not in the database, so `status`,
`test` and `reset` ask the running gateway: `status` reads `/readyz`, whose `channels` list is the
router's snapshot (plain data, never a key); `test` and `reset` call the admin API with the configured
admin key. The gateway is found the way `serve` was started: the URL it noted beside its config
(`.sluicegate-serve.json`), else the config's host and port. `enable` and `disable` are stored switches
(in the database, audited) that every gateway follows within a second, so they work like `keys`.
None of this imports the server.
"""

from __future__ import annotations

import http.client
import os
import time
from typing import Any
from urllib.parse import urlsplit

import click
import orjson

from sluicegate.cli._common import (
    _default_config,
    database_options,
    echo_json,
    format_table,
    iso_time,
    serve_state_path,
)
from sluicegate.cli.lang import chinese, t

READYZ = "/readyz"
TIMEOUT_S = 5.0

_HEADERS = (
    "CHANNEL",
    "UPSTREAM",
    "STATE",
    "FAILS",
    "COOLDOWN UNTIL",
    "LAST ERROR",
    "IN FLIGHT",
    "EWMA MS",
    "REQUESTS",
    "FAILURES",
)
_HEADERS_ZH = (
    "渠道",
    "上游",
    "状态",
    "连续失败",
    "冷却至",
    "最近错误",
    "进行中",
    "平均延迟 MS",
    "请求数",
    "失败数",
)
_RIGHT = (3, 6, 7, 8, 9)


@click.group()
def channels() -> None:
    """Channels: the upstreams behind each public model and their health."""


@channels.command()
@click.option(
    "--config",
    "config",
    envvar="SLUICEGATE_CONFIG",
    default=_default_config,
    type=click.Path(dir_okay=False),
    show_default="$SLUICEGATE_CONFIG, else ./sluicegate.yaml if present",
    help="Gateway configuration file; its server.host and server.port locate the gateway.",
)
@click.option(
    "--url", "url", metavar="URL", help="The gateway's base URL (http://host:port), overriding the config."
)
@click.option("--json", "as_json", is_flag=True, help="Print the channel list as JSON.")
def status(config: str | None, url: str | None, as_json: bool) -> None:
    """Each channel's breaker state, failures, cooldown, last error, load and latency.

    Reads the running gateway's /readyz; exits 1 if the gateway cannot be reached.
    """
    records = fetch_channels(gateway_url(config, url))
    if as_json:
        echo_json(records)
        return
    if not records:
        click.echo(
            t(
                "no channels (the gateway routes no model to an upstream)",
                "没有渠道（网关未把任何模型路由到上游）",
            )
        )
        return
    click.echo(channels_table(records))


def gateway_url(config: str | None, url: str | None) -> str:
    """--url, else the URL `serve` noted beside the config (if that gateway still runs), else the config's."""
    if url:
        return url.rstrip("/")
    noted = _noted_url(config)
    return noted or _url_from_config(config)


def _noted_url(config: str | None) -> str | None:
    path = serve_state_path(config)
    try:
        state = orjson.loads(path.read_bytes())
        pid = int(state["pid"])
        os.kill(pid, 0)  # still running? (signal 0 only checks)
        return str(state["url"])
    except (OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return None


def _url_from_config(config: str | None) -> str:
    from sluicegate.config import ConfigError, load_settings

    try:
        server = load_settings(config).server
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    host = server.host
    if host in ("0.0.0.0", "", "::"):  # listening everywhere: reach it on loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{server.port}"


def fetch_channels(base: str) -> list[dict[str, Any]]:
    """The `channels` list of `GET {base}/readyz` (answered with 200 or 503: both carry it)."""
    parts = urlsplit(base if "://" in base else f"http://{base}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.ClickException(f"not a gateway URL: {base!r} (expected http://host:port)")
    conn_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_type(parts.hostname, parts.port, timeout=TIMEOUT_S)
    where = f"{parts.scheme}://{parts.netloc}"
    try:
        conn.request("GET", parts.path.rstrip("/") + READYZ, headers={"accept": "application/json"})
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise click.ClickException(
            f"cannot reach the gateway at {where}: {exc or type(exc).__name__} "
            "(is `sluicegate serve` running? use --url or --config)"
        ) from exc
    finally:
        conn.close()
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict) or not isinstance(payload.get("channels"), list):
        raise click.ClickException(
            f"{where}{READYZ} answered {response.status} without a channel list; "
            "is this a Sluicegate gateway?"
        )
    return payload["channels"]


def channels_table(records: list[dict[str, Any]], now: float | None = None) -> str:
    headers = _HEADERS_ZH if chinese() else _HEADERS
    now = time.time() if now is None else now
    rows = []
    for c in records:
        latency = c.get("ewma_latency_s")
        rows.append(
            [
                c.get("name"),
                c.get("upstream"),
                c.get("state"),
                c.get("consecutive_failures", 0),
                _until(c.get("cooldown_until"), now),
                c.get("last_error") or "-",
                c.get("in_flight", 0),
                "-" if latency is None else f"{latency * 1000:.1f}",
                c.get("requests", 0),
                c.get("failures", 0),
            ]
        )
    return format_table(headers, rows, right=_RIGHT)


def _until(ts: float | None, now: float) -> str:
    if not ts:
        return "-"
    left = ts - now
    return f"{iso_time(ts)} (in {left:.1f}s)" if left > 0 else f"{iso_time(ts)} (passed)"


# -- test, reset: the running gateway's admin API -------------------------------------------------------


def _gateway_options(command: Any) -> Any:
    command = click.option("--json", "as_json", is_flag=True, help="Print JSON.")(command)
    command = click.option(
        "--admin-key",
        envvar="SLUICEGATE_ADMIN_KEY",
        help="The gateway's admin key (default: admin_key from the config).",
    )(command)
    command = click.option(
        "--url", "url", metavar="URL", help="The gateway's base URL, overriding the config."
    )(command)
    return click.option(
        "--config",
        "config",
        envvar="SLUICEGATE_CONFIG",
        default=_default_config,
        type=click.Path(dir_okay=False),
        show_default="$SLUICEGATE_CONFIG, else ./sluicegate.yaml if present",
        help="Gateway configuration file: finds the gateway and its admin key.",
    )(command)


def admin_post(config: str | None, url: str | None, admin_key: str | None, path: str) -> dict[str, Any]:
    """POST to the running gateway's admin API; its error message becomes ours."""
    from urllib.parse import quote

    from sluicegate.config import ConfigError, load_settings

    if not admin_key:
        try:
            admin_key = load_settings(config).admin_key
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
    if not admin_key:
        raise click.ClickException(
            t(
                "this needs the gateway's admin API: set admin_key in the config (or --admin-key)",
                "此操作需要网关的管理 API：请在配置中设置 admin_key（或使用 --admin-key）",
            )
        )
    base = gateway_url(config, url)
    parts = urlsplit(base if "://" in base else f"http://{base}")
    conn_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_type(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        conn.request(
            "POST",
            parts.path.rstrip("/") + quote(path),
            headers={"authorization": f"Bearer {admin_key}", "content-length": "0"},
        )
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise click.ClickException(
            f"cannot reach the gateway at {base}: {exc or type(exc).__name__} "
            "(is `sluicegate serve` running? use --url or --config)"
        ) from exc
    finally:
        conn.close()
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if response.status >= 400 or not isinstance(payload, dict):
        error = payload.get("error") if isinstance(payload, dict) else None
        message = error.get("message") if isinstance(error, dict) else body[:200].decode("utf-8", "replace")
        raise click.ClickException(f"{response.status}: {message}")
    return payload


@channels.command()
@click.argument("name")
@_gateway_options
def test(name: str, config: str | None, url: str | None, admin_key: str | None, as_json: bool) -> None:
    """Send one probe through a channel now: latency and the answer or error (exit 1 if it failed)."""
    result = admin_post(config, url, admin_key, f"/admin/channels/{name}/test")
    if as_json:
        echo_json(result)
    else:
        latency = "-" if result.get("latency_ms") is None else f"{result['latency_ms']} ms"
        if result.get("ok"):
            click.echo(t(f"{name}: OK in {latency}", f"{name}：正常，用时 {latency}"))
            click.echo(t("answer: ", "回答：") + str(result.get("answer") or ""))
        else:
            click.echo(
                t(
                    f"{name}: FAILED ({result.get('status')}) in {latency}",
                    f"{name}：失败（{result.get('status')}），用时 {latency}",
                )
            )
            click.echo(t("error: ", "错误：") + str(result.get("error") or ""))
    if not result.get("ok"):
        raise SystemExit(1)


@channels.command()
@click.argument("name")
@_gateway_options
def reset(name: str, config: str | None, url: str | None, admin_key: str | None, as_json: bool) -> None:
    """Put a channel back in service now: its breaker closed, its refused provider keys restored."""
    result = admin_post(config, url, admin_key, f"/admin/channels/{name}/reset")
    if as_json:
        echo_json(result)
    else:
        click.echo(
            t(f"{name}: reset, now {result.get('state')}", f"{name}：已重置，当前状态 {result.get('state')}")
        )


def _switch(name: str, enabled: bool, config: str | None, database: str | None, as_json: bool) -> None:
    from sluicegate.cli.catalog import catalog_call

    async def action(service: Any) -> Any:
        return await service.set_channel(name, enabled, await service.known_channels())

    result = catalog_call(config, database, action, write=True)
    if as_json:
        echo_json(result)
    elif enabled:
        click.echo(
            t(f"{name}: enabled (gateways follow within a second)", f"{name}：已启用（各网关一秒内生效）")
        )
    else:
        click.echo(
            t(f"{name}: disabled (gateways follow within a second)", f"{name}：已停用（各网关一秒内生效）")
        )


@channels.command()
@database_options
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def enable(config: str | None, database: str | None, name: str, as_json: bool) -> None:
    """Route to a channel again (stored; every gateway follows)."""
    _switch(name, True, config, database, as_json)


@channels.command()
@database_options
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def disable(config: str | None, database: str | None, name: str, as_json: bool) -> None:
    """Stop routing to a channel, whoever defined it (stored; every gateway follows)."""
    _switch(name, False, config, database, as_json)
