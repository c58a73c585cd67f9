"""voice calls, and the goodbye SMS kind

Revision ID: 0003_voice_calls
Revises: 0002_sms_outbox
Create Date: 2026-11-24 19:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0003_voice_calls"
down_revision = "0002_sms_outbox"
branch_labels = None
depends_on = None

OLD_KINDS = "'confirmation', 'reminder', 'next_up', 'rescheduled', 'cancelled', 'help'"
NEW_KINDS = OLD_KINDS + ", 'goodbye'"
LIVE_STUDIO = "direction = 'studio' AND state IN ('ringing', 'holding', 'on_air')"


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("forum_id", sa.Integer(), nullable=False),
        sa.Column("signup_id", sa.Integer(), nullable=True),
        sa.Column("sid", sa.String(length=64), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("wanted", sa.String(length=16), nullable=True),
        sa.Column("applied", sa.String(length=16), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.Column("conference_sid", sa.String(length=64), nullable=True),
        sa.Column("muted", sa.Boolean(), nullable=False),
        sa.Column("held", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("on_air_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "direction IN ('inbound', 'callback', 'studio')", name="ck_calls_direction"
        ),
        sa.CheckConstraint(
            "state IN ('ringing', 'holding', 'on_air', 'completed', 'failed')",
            name="ck_calls_state",
        ),
        sa.ForeignKeyConstraint(["forum_id"], ["forums.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["signup_id"], ["signups.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sid"),
    )
    op.create_index("ix_calls_forum_state", "calls", ["forum_id", "state"])
    op.create_index("ix_calls_signup", "calls", ["signup_id"])
    op.create_index(
        "uq_calls_one_studio",
        "calls",
        ["forum_id"],
        unique=True,
        sqlite_where=sa.text(LIVE_STUDIO),
        postgresql_where=sa.text(LIVE_STUDIO),
    )
    _kinds(NEW_KINDS)


def downgrade() -> None:
    op.execute("DELETE FROM messages WHERE kind = 'goodbye'")
    _kinds(OLD_KINDS)
    op.drop_index("uq_calls_one_studio", table_name="calls")
    op.drop_index("ix_calls_signup", table_name="calls")
    op.drop_index("ix_calls_forum_state", table_name="calls")
    op.drop_table("calls")


def _kinds(kinds: str) -> None:
    # SQLite cannot alter a CHECK constraint: batch mode rebuilds the table there.
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("ck_messages_kind", type_="check")
        batch.create_check_constraint("ck_messages_kind", f"kind IN ({kinds})")
