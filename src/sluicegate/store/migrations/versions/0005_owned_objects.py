"""Files, uploads and batches owned by the key that made them, and named leases (the batch poller's).

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "owned_objects",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(200), nullable=False, server_default=""),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("team_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("state", sa.String(32), nullable=False, server_default=""),
        sa.Column("purpose", sa.String(64), nullable=True),
        sa.Column("data", sa.Text, nullable=False, server_default="{}"),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cost", sa.Float, nullable=False, server_default="0"),
        sa.Column("currency", sa.String(8), nullable=False, server_default=""),
        sa.Column("charged_at", sa.Float, nullable=True),
    )
    op.create_index("ix_owned_objects_key_kind_created", "owned_objects", ["key_id", "kind", "created_at"])
    op.create_index("ix_owned_objects_kind_charged", "owned_objects", ["kind", "charged_at"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_index("ix_owned_objects_kind_charged", table_name="owned_objects")
    op.drop_index("ix_owned_objects_key_kind_created", table_name="owned_objects")
    op.drop_table("owned_objects")
