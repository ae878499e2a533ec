"""`sluicegate db`: apply schema migrations and show which one a database is at.

The gateway migrates on start as well; running `db upgrade` first is for deployments that want
the change made (and checked) before new workers start.
"""

from __future__ import annotations

import click

from sluicegate.cli._common import database_options, resolve_database, run, show_url


@click.group()
def db() -> None:
    """Database schema migrations."""


@db.command()
@database_options
def upgrade(config: str | None, database: str | None) -> None:
    """Bring the database to the newest schema (safe to repeat)."""
    from sluicegate.store.migrate import upgrade as upgrade_database

    url = resolve_database(config, database)
    revision = run(upgrade_database(url), url)
    click.echo(f"{show_url(url)}: at revision {revision} (head)")


@db.command()
@database_options
def current(config: str | None, database: str | None) -> None:
    """Print the revision the database is at, and whether that is the newest."""
    from sluicegate.store.migrate import current as current_revision
    from sluicegate.store.migrate import head_revision

    url = resolve_database(config, database)
    revision = run(current_revision(url), url)
    head = head_revision()
    if revision is None:
        click.echo(f"{show_url(url)}: not migrated (newest is {head}; run `sluicegate db upgrade`)")
    elif revision == head:
        click.echo(f"{show_url(url)}: at revision {revision} (head)")
    else:
        click.echo(f"{show_url(url)}: at revision {revision} (newest is {head}; run `sluicegate db upgrade`)")
