"""the alert intake's journal: requests accepted by maintd intake, waiting for the drain

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 23:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_intake",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("integration", sa.String(length=200), nullable=True),
        sa.Column("dedup_key", sa.String(length=255), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_intake")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_alert_intake_waiting",
        "alert_intake",
        ["id"],
        unique=False,
        sqlite_where=sa.text("error IS NULL"),
        postgresql_where=sa.text("error IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_alert_intake_waiting", table_name="alert_intake")
    op.drop_table("alert_intake")
