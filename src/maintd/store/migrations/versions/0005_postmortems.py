"""post-mortems and their action items

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 17:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "postmortems",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=64), nullable=False),
        sa.Column("impact", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("alert_triggered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("response_begun_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("root_cause_identified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fix_implemented_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("what_happened", sa.Text(), nullable=False),
        sa.Column("why_it_happened", sa.Text(), nullable=False),
        sa.Column("contributing_factors", sa.Text(), nullable=False),
        sa.Column("lessons_learned", sa.Text(), nullable=False),
        sa.Column("what_went_well", sa.Text(), nullable=False),
        sa.Column("what_could_be_improved", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_postmortems")),
        sa.UniqueConstraint("incident_id", name="uq_postmortems_incident_id"),
    )
    op.create_table(
        "postmortem_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=63), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_postmortem_actions")),
    )
    with op.batch_alter_table("postmortem_actions", schema=None) as batch_op:
        batch_op.create_index("ix_postmortem_actions_incident_id", ["incident_id"], unique=False)
        batch_op.create_index("ix_postmortem_actions_status_due_on", ["status", "due_on"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("postmortem_actions", schema=None) as batch_op:
        batch_op.drop_index("ix_postmortem_actions_status_due_on")
        batch_op.drop_index("ix_postmortem_actions_incident_id")
    op.drop_table("postmortem_actions")
    op.drop_table("postmortems")
