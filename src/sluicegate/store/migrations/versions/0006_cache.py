"""The response cache: a key's cache setting, and hits with what they saved in the log and the aggregates.

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("cache", sa.String(8), nullable=True))
    with op.batch_alter_table("request_logs") as batch:
        batch.add_column(sa.Column("cache_hit", sa.Boolean, nullable=False, server_default="0"))
        batch.add_column(sa.Column("tokens_saved", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("cost_saved", sa.Float, nullable=False, server_default="0"))
    with op.batch_alter_table("usage_daily") as batch:
        batch.add_column(sa.Column("cache_hits", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("tokens_saved", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("cost_saved", sa.Float, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("usage_daily") as batch:
        for name in ("cost_saved", "tokens_saved", "cache_hits"):
            batch.drop_column(name)
    with op.batch_alter_table("request_logs") as batch:
        for name in ("cost_saved", "tokens_saved", "cache_hit"):
            batch.drop_column(name)
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("cache")
