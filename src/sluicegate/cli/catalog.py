"""What the catalog commands (upstreams, models, prices, audit, channels enable/disable) share.

They work on the store directly, as `sluicegate keys` does, through the same `CatalogService` as the
admin API, so a change made here is the same row and audit entry as one made with `curl`, and running
gateways pick it up within their 0.5 s poll (at once with Redis: the CLI publishes the change too).
The actor in the audit log is `cli:<user>`; the master key comes from SLUICEGATE_MASTER_KEY (or the
file's `master_key:`) exactly as the gateway reads it.
"""

from __future__ import annotations

import getpass
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from sluicegate.cli._common import resolve_database, run_with_store

T = TypeVar("T")


def catalog_call(
    config: str | None, database: str | None, action: Callable[[Any], Awaitable[T]], *, write: bool
) -> T:
    """Run `action(service)` on the configured store; refusals become clear messages (exit 1)."""
    from sluicegate.catalog.fields import CatalogError
    from sluicegate.catalog.service import CatalogService
    from sluicegate.config import ConfigError, load_settings
    from sluicegate.store.crypto import MasterKeyMissing, SecretBox, SecretsUnreadable

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    url = resolve_database(config, database)
    actor = cli_actor()

    async def main(store: Any) -> T:
        return await action(CatalogService(store, settings, SecretBox(settings.master_key), actor))

    try:
        result = run_with_store(url, main)
    except CatalogError as exc:
        raise click.ClickException(exc.message) from exc
    except (MasterKeyMissing, SecretsUnreadable) as exc:
        raise click.ClickException(str(exc)) from exc
    if write and settings.redis:
        _wake_gateways(settings.redis)
    return result


def cli_actor() -> str:
    """Who acts from a terminal, for the audit log: `cli:<login name>`."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli:unknown"


def _wake_gateways(url: str) -> None:
    """Publish the change so gateways rebuild now rather than at their next poll (best effort)."""
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        try:
            client.publish("sluicegate:config", b"1")
        finally:
            client.close()
    except Exception:
        pass


def parse_channel(text: str) -> dict[str, Any]:
    """`upstream[/model][,weight=N][,priority=N][,rpm=N][,tpm=N]` as a channel object."""
    head, *options = [part.strip() for part in text.split(",")]
    upstream, _, model = head.partition("/")
    channel: dict[str, Any] = {"upstream": upstream}
    if model:
        channel["model"] = model
    for option in options:
        name, sep, value = option.partition("=")
        if not sep or name not in ("weight", "priority", "rpm", "tpm"):
            raise click.BadParameter(
                f"{option!r}: expected weight=N, priority=N, rpm=N or tpm=N", param_hint="--channel"
            )
        try:
            channel[name] = int(value)
        except ValueError:
            raise click.BadParameter(
                f"{option!r}: {name} must be a whole number", param_hint="--channel"
            ) from None
    return channel
