"""Initial schema: compartments, reservations, loans, staff, alarms, meta, journal.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Written by hand to match ``kiosk/store/schema.py`` (tests/unit/test_store_migrations.py
compares them). Datetimes are naive UTC ``DATETIME`` text; ``schema.UTCDateTime`` adds
the zone back when reading. Migrations never import the application's models: a later
change to ``schema.py`` must not change what this revision creates.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create every table of the first release."""
    op.create_table(
        "compartments",
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.String(), nullable=False),
        sa.Column("charging", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("asset_tag", sa.String(), nullable=True),
        sa.Column("reservation_id", sa.String(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("opened_count", sa.Integer(), nullable=False),
        sa.Column("status_before", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("number", name="pk_compartments"),
    )
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("asset_tag", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("borrower_key", sa.String(), nullable=True),
        sa.Column("code_hash", sa.String(), nullable=True),
        sa.Column("device_type", sa.String(), nullable=False),
        sa.Column("size", sa.String(), nullable=False),
        sa.Column("charging", sa.Boolean(), nullable=False),
        sa.Column("compartment", sa.Integer(), nullable=True),
        sa.Column("ready_by", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("loan_days", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reservations"),
    )
    op.create_index("ix_reservations_borrower_key", "reservations", ["borrower_key"])
    op.create_index("ix_reservations_asset_tag", "reservations", ["asset_tag"])
    op.create_table(
        "loans",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("asset_tag", sa.String(), nullable=False),
        sa.Column("borrower_key", sa.String(), nullable=True),
        sa.Column("device_type", sa.String(), nullable=False),
        sa.Column("size", sa.String(), nullable=False),
        sa.Column("charging", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("due_at", sa.DateTime(), nullable=True),
        sa.Column("returned_at", sa.DateTime(), nullable=True),
        sa.Column("reservation_id", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_loans"),
    )
    op.create_index("ix_loans_borrower_key", "loans", ["borrower_key"])
    op.create_index("ix_loans_asset_tag", "loans", ["asset_tag"])
    op.create_table(
        "staff",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("pin_hash", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("borrower_key", sa.String(), nullable=True),
        sa.Column("code_hash", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_staff"),
    )
    op.create_table(
        "alarms",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("raised_at", sa.DateTime(), nullable=False),
        sa.Column("compartment", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("acknowledged_by", sa.String(), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.Column("cleared_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alarms"),
    )
    op.create_index("ix_alarms_cleared_at", "alarms", ["cleared_at"])
    op.create_table(
        "meta",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_meta"),
    )
    op.create_table(
        "journal",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("open_id", sa.String(), nullable=True),
        sa.Column("wall_time", sa.DateTime(), nullable=False),
        sa.Column("mono_time", sa.Double(), nullable=False),
        sa.Column("boot", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_journal"),
        sqlite_autoincrement=True,  # a sequence number is never handed out twice
    )
    op.create_index("ix_journal_uuid", "journal", ["uuid"], unique=True)
    op.create_index("ix_journal_sent_at_seq", "journal", ["sent_at", "seq"])
    op.create_index("ix_journal_open_id", "journal", ["open_id"])
    op.create_index("ix_journal_kind", "journal", ["kind"])
    op.create_index("ix_journal_wall_time", "journal", ["wall_time"])


def downgrade() -> None:
    """Drop everything (development only: the journal is the kiosk's outbox)."""
    for table in ("journal", "meta", "alarms", "staff", "loans", "reservations", "compartments"):
        op.drop_table(table)
