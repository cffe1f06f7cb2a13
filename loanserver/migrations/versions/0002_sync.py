"""The sync link: remote commands, loaded compartment, kiosk loan and alarm ids.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Written by hand against ``loanserver/models.py``; independent of it like 0001 (plain
``sa.DateTime(timezone=True)``). Batch mode: SQLite rebuilds a table to alter it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the commands table and the columns the kiosk API needs."""
    op.create_table(
        "commands",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kiosk_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("compartment", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.CheckConstraint(
            "kind IN ('open', 'out_of_service', 'back_in_service', 'refresh')",
            name=op.f("ck_commands_kind"),
        ),
        sa.CheckConstraint(
            "result IS NULL OR result IN ('done', 'refused', 'failed')",
            name=op.f("ck_commands_result"),
        ),
        sa.ForeignKeyConstraint(
            ["kiosk_id"], ["kiosks.id"], name=op.f("fk_commands_kiosk_id_kiosks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commands")),
    )
    op.create_index("ix_commands_kiosk_done", "commands", ["kiosk_id", "done_at"], unique=False)
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("compartment", sa.Integer(), nullable=True))
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column(
                "updated_at",
                sa.DateTime(timezone=True),
                nullable=False,
                server_default=sa.text("CURRENT_TIMESTAMP"),
            )
        )
        batch_op.alter_column("borrower_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_unique_constraint(batch_op.f("uq_loans_external_id"), ["external_id"])
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("compartment", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_alarms_external_id"), ["external_id"], unique=False)


def downgrade() -> None:
    """Back to 0001."""
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alarms_external_id"))
        batch_op.drop_column("compartment")
        batch_op.drop_column("external_id")
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_loans_external_id"), type_="unique")
        batch_op.alter_column("borrower_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("updated_at")
        batch_op.drop_column("external_id")
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.drop_column("compartment")
    op.drop_index("ix_commands_kiosk_done", table_name="commands")
    op.drop_table("commands")
