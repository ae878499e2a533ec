"""`sluicegate channels status`: the running gateway's view of its channels.

Channel health lives in the gateway process (and Redis when shared), not in the database, so this
command asks the running gateway: it reads `/readyz`, whose `channels` list is the router's snapshot
(plain data, never a key). It does not import the server.
"""

from __future__ import annotations

import http.client
import time
from typing import Any
from urllib.parse import urlsplit

import click
import orjson

from sluicegate.cli._common import _default_config, echo_json, format_table, iso_time

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
    base = url.rstrip("/") if url else _url_from_config(config)
    records = fetch_channels(base)
    if as_json:
        echo_json(records)
        return
    if not records:
        click.echo("no channels (the gateway routes no model to an upstream)")
        return
    click.echo(channels_table(records))


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
    return format_table(_HEADERS, rows, right=_RIGHT)


def _until(ts: float | None, now: float) -> str:
    if not ts:
        return "-"
    left = ts - now
    return f"{iso_time(ts)} (in {left:.1f}s)" if left > 0 else f"{iso_time(ts)} (passed)"
