"""What the store-backed commands (keys, usage, logs, db) share: finding the database, opening
the store, turning store errors into clear messages, and printing JSON or aligned tables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from sluicegate.cli.lang import display_width, pad

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_CONFIG = "sluicegate.yaml"


def _default_config() -> str | None:
    return DEFAULT_CONFIG if Path(DEFAULT_CONFIG).is_file() else None


SERVE_STATE = ".sluicegate-serve.json"


def serve_state_path(config: str | None) -> Path:
    """Where `serve` notes the URL it listens on: beside its config file, else in this directory.

    Commands that talk to the running gateway (`channels status|test|reset`) look there first, so
    they find a gateway started with `--port 9000` the way it was started.
    """
    return (Path(config).resolve().parent if config else Path.cwd()) / SERVE_STATE


def database_options(command: F) -> F:
    """Add `--config` and `--database` to a command (pass both to `resolve_database`)."""
    command = click.option(
        "--database",
        "database",
        metavar="URL",
        help="Database URL, overriding the config file (sqlite:///file.db, postgresql://user@host/db).",
    )(command)
    command = click.option(
        "--config",
        "config",
        envvar="SLUICEGATE_CONFIG",
        default=_default_config,
        type=click.Path(dir_okay=False),
        show_default="$SLUICEGATE_CONFIG, else ./sluicegate.yaml if present",
        help="Gateway configuration file (YAML); its `database:` setting is used.",
    )(command)
    return command


def resolve_database(config: str | None, database: str | None) -> str:
    """The database URL a command should use: `--database` if given, else the configuration's."""
    return database.strip() if database else _database_url(config)


def _database_url(config_path: str | None) -> str:
    """The configured database URL: the config file's `database:` (or SLUICEGATE_DATABASE), else
    `sluicegate.db` next to the config file, or in the current directory without one.
    """
    from sluicegate.config import ConfigError, default_database_url, load_settings

    try:
        return default_database_url(load_settings(config_path))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def show_url(url: str) -> str:
    """The URL with any password masked, safe to print in messages."""
    from sluicegate.config.model import mask_url_password

    return mask_url_password(url)


def run_with_store(url: str, action: Callable[[Any], Awaitable[T]]) -> T:
    """Open (and migrate) the store at `url`, run `action(store)`, close it; errors become messages."""
    from sluicegate.store import Store

    async def main() -> T:
        store = await Store.open(url)
        try:
            return await action(store)
        finally:
            await store.close()

    return run(main(), url)


def run(coroutine: Awaitable[T], url: str) -> T:
    """Run a coroutine, mapping the store's user-facing errors to click errors (exit code 1)."""
    from sluicegate.store.engine import InvalidDatabaseURL
    from sluicegate.store.expiry import InvalidExpiry
    from sluicegate.store.keyfields import InvalidKeyField
    from sluicegate.store.keys import KeyAmbiguous, KeyNotFound, KeyRevoked

    try:
        return asyncio.run(coroutine)  # type: ignore[arg-type]
    except KeyNotFound as exc:
        raise click.ClickException(f"no key with id {exc.args[0]!r}, nor one it is the prefix of") from exc
    except KeyAmbiguous as exc:
        raise click.ClickException(
            f"{exc.args[0]!r} matches several keys ({', '.join(exc.args[1])}): give more of the id"
        ) from exc
    except KeyRevoked as exc:
        raise click.ClickException(f"key {exc.args[0]!r} is revoked; revocation is final") from exc
    except (InvalidKeyField, InvalidExpiry, InvalidDatabaseURL) as exc:
        raise click.ClickException(str(exc)) from exc
    except (OSError, ConnectionError) as exc:
        raise click.ClickException(f"cannot reach the database {show_url(url)}: {exc}") from exc
    except Exception as exc:
        from sqlalchemy.exc import SQLAlchemyError

        if isinstance(exc, SQLAlchemyError):
            detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise click.ClickException(f"database error on {show_url(url)}: {detail}") from exc
        raise


def echo_json(value: Any) -> None:
    """Print a value as indented JSON (dates and dataclasses handled by orjson)."""
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())


def echo_json_line(value: Any) -> None:
    """Print a value as one line of JSON, for streams read line by line (`logs --json`)."""
    click.echo(orjson.dumps(value).decode())


def iso_time(ts: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string (`2026-12-31T00:00:00Z`), None stays None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = (), rule: bool = False
) -> str:
    """Rows as aligned text columns; columns whose index is in `right` are right-aligned (numbers).

    Widths count terminal columns (CJK characters are two wide); `rule` draws a line under the header.
    """
    cells = [[str(h) for h in headers], *[["" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(display_width(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [pad(cell, w, right=i in right) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(parts).rstrip())
        if rule and len(lines) == 1:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def split_list(value: str | None) -> list[str] | None:
    """A comma-separated option as a list; None when not given, [] for an empty string."""
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]
