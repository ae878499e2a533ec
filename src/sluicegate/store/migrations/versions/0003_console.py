"""The operator's console: upstreams, model routes, channel switches and prices kept in the store, and
the admin audit log.

Revision ID: 0003
Revises: 0002d
Create Date: 2026-12-04

Row 2 of `revision` is the configuration revision: bumped in every transaction that changes one of
these tables, so running gateways rebuild their routes within a poll, as they reload keys on row 1.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002d"
branch_labels = None
depends_on = None

_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "config_upstreams",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("data", sa.Text, nullable=False, server_default="{}"),
        sa.Column("secrets", sa.Text, nullable=True),
        sa.Column("secrets_hint", sa.Text, nullable=False, server_default="{}"),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default="1"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "config_models",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("channels", sa.Text, nullable=False, server_default="[]"),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default="1"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "config_channels",
        sa.Column("name", sa.String(400), primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default="1"),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "config_prices",
        sa.Column("model", sa.String(200), primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "admin_audit",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("target_kind", sa.String(50), nullable=False),
        sa.Column("target", sa.String(400), nullable=False),
        sa.Column("before", sa.Text, nullable=True),
        sa.Column("after", sa.Text, nullable=True),
    )
    op.create_index("ix_admin_audit_ts", "admin_audit", ["ts"])
    revision_table = sa.table("revision", sa.column("id", sa.Integer), sa.column("value", sa.BigInteger))
    op.bulk_insert(revision_table, [{"id": 2, "value": 0}])


def downgrade() -> None:
    op.execute("DELETE FROM revision WHERE id = 2")
    op.drop_table("admin_audit")
    op.drop_table("config_prices")
    op.drop_table("config_channels")
    op.drop_table("config_models")
    op.drop_table("config_upstreams")
