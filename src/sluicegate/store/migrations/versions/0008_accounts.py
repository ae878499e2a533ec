"""Accounts: single sign-on identities on users, and the OIDC logins under way.

Users gain the (issuer, subject) of the OpenID Connect identity they sign in as (unique together; null for
password-only users). `oidc_logins` holds each started login's state (hashed), nonce, PKCE verifier and
expiry, so the provider's redirect back may land on any gateway node sharing the database.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("sso_issuer", sa.String(300), nullable=True))
        batch.add_column(sa.Column("sso_subject", sa.String(255), nullable=True))
    op.create_index("ix_users_sso", "users", ["sso_issuer", "sso_subject"], unique=True)
    op.create_table(
        "oidc_logins",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("binding_hash", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(100), nullable=False),
        sa.Column("verifier", sa.String(128), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_oidc_logins_expires_at", "oidc_logins", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_oidc_logins_expires_at", "oidc_logins")
    op.drop_table("oidc_logins")
    op.drop_index("ix_users_sso", "users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("sso_subject")
        batch.drop_column("sso_issuer")
