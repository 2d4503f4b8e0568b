"""the scheduler lease: one row per lease, holder, fencing epoch, holder's backend pid, expiry

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 18:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Earlier builds created this table at first use; an upgrade keeps the row they wrote.
    if "maintd_leases" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "maintd_leases",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("holder_pid", sa.Integer(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("maintd_leases")
