"""Request-log record ids (unique) and the usage_clamped flag: usage written twice is counted once.

A batch whose commit succeeded but whose answer was lost is retried, and a local spill file may be
replayed after a crash halfway through: with a unique id per record the insert skips what is
already there. Old rows keep a NULL id (NULLs never collide in a unique index).

Revision ID: 0002d
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002d"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("request_logs") as batch:
        batch.add_column(sa.Column("record_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("usage_clamped", sa.Boolean, nullable=False, server_default="0"))
    op.create_index("ix_request_logs_record_id", "request_logs", ["record_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_request_logs_record_id", table_name="request_logs")
    with op.batch_alter_table("request_logs") as batch:
        batch.drop_column("usage_clamped")
        batch.drop_column("record_id")
