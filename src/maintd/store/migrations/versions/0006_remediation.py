"""remediation: decisions and executions, playbook breakers, circuits, the intake cursor

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 17:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "remediations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("playbook", sa.String(length=63), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("labels", _JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("changes", _JSON, nullable=False),
        sa.Column("verify_run_id", sa.String(length=32), nullable=True),
        sa.Column("verified", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remediations")),
    )
    op.create_index(
        "uq_remediations_running_target",
        "remediations",
        ["target"],
        unique=True,
        sqlite_where=sa.text("state = 'running'"),
        postgresql_where=sa.text("state = 'running'"),
    )
    op.create_index("ix_remediations_state", "remediations", ["state"])
    op.create_index("ix_remediations_playbook_created_at", "remediations", ["playbook", "created_at"])
    op.create_index("ix_remediations_target_created_at", "remediations", ["target", "created_at"])
    op.create_index("ix_remediations_incident_id", "remediations", ["incident_id"])
    op.create_table(
        "remediation_breakers",
        sa.Column("playbook", sa.String(length=63), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("playbook", name=op.f("pk_remediation_breakers")),
    )
    op.create_table(
        "remediation_circuits",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("open_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_remediation_circuits")),
    )
    op.create_table(
        "remediation_cursor",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_remediation_cursor")),
    )


def downgrade() -> None:
    op.drop_table("remediation_cursor")
    op.drop_table("remediation_circuits")
    op.drop_table("remediation_breakers")
    op.drop_index("ix_remediations_incident_id", table_name="remediations")
    op.drop_index("ix_remediations_target_created_at", table_name="remediations")
    op.drop_index("ix_remediations_playbook_created_at", table_name="remediations")
    op.drop_index("ix_remediations_state", table_name="remediations")
    op.drop_index("uq_remediations_running_target", table_name="remediations")
    op.drop_table("remediations")
