"""Tenancy: users, teams, groups with price ratios and model visibility, balances, a ledger, redemption codes.

Keys gain the user and team they belong to; the request log gains what each request was charged and to
whom (the ledger's charges are written from it, in the log's own transaction).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _limit_columns() -> list[sa.Column[int]]:
    """A user's or team's rates and concurrency over all its keys (null: none)."""
    return [
        sa.Column("rpm", sa.Integer, nullable=True),
        sa.Column("rpd", sa.Integer, nullable=True),
        sa.Column("tpm", sa.BigInteger, nullable=True),
        sa.Column("concurrency", sa.Integer, nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=True),
        sa.Column("role", sa.String(16), nullable=False, server_default="member"),
        sa.Column("group_name", sa.String(64), nullable=False, server_default="default"),
        sa.Column("team_id", sa.String(32), nullable=True),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default="0"),
        *_limit_columns(),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_users_name", "users", ["name"], unique=True)
    op.create_table(
        "teams",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("group_name", sa.String(64), nullable=False, server_default="default"),
        *_limit_columns(),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_teams_name", "teams", ["name"], unique=True)
    op.create_table(
        "team_members",
        sa.Column("team_id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False, server_default="member"),
    )
    groups = op.create_table(
        "groups",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("ratio", sa.Float, nullable=False, server_default="1"),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
    )
    op.bulk_insert(groups, [{"name": "default", "ratio": 1.0, "description": "everyone, at list price"}])
    op.create_table(
        "group_models",
        sa.Column("group_name", sa.String(64), primary_key=True),
        sa.Column("model", sa.String(200), primary_key=True),
    )
    op.create_table(
        "balances",
        sa.Column("owner_kind", sa.String(8), primary_key=True),
        sa.Column("owner_id", sa.String(32), primary_key=True),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("spent", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "ledger",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("owner_kind", sa.String(8), nullable=False),
        sa.Column("owner_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("balance_after", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_ledger_owner", "ledger", ["owner_kind", "owner_id", "id"])
    op.create_table(
        "redemption_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=True),
        sa.Column("redeemed_by", sa.String(32), nullable=True),
        sa.Column("redeemed_at", sa.Float, nullable=True),
    )
    op.create_index("ix_redemption_codes_batch", "redemption_codes", ["batch_id"])
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_sessions_expires_at", "sessions", ["expires_at"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("user_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("team_id", sa.String(32), nullable=True))
    with op.batch_alter_table("request_logs") as batch:
        batch.add_column(sa.Column("charge_owner", sa.String(48), nullable=True))
        batch.add_column(sa.Column("charge", sa.BigInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("request_logs") as batch:
        batch.drop_column("charge")
        batch.drop_column("charge_owner")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("team_id")
        batch.drop_column("user_id")
    for index, table in (
        ("ix_sessions_expires_at", "sessions"),
        ("ix_redemption_codes_batch", "redemption_codes"),
        ("ix_ledger_owner", "ledger"),
        ("ix_teams_name", "teams"),
        ("ix_users_name", "users"),
    ):
        op.drop_index(index, table)
    for table in (
        "sessions",
        "redemption_codes",
        "ledger",
        "balances",
        "group_models",
        "groups",
        "team_members",
        "teams",
        "users",
    ):
        op.drop_table(table)
