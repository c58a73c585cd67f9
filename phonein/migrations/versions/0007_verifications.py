"""verifications: a signup waits for its number's proof; codes sent; the code SMS kind; pow

Revision ID: 0007_verifications
Revises: 0006_fencing
Create Date: 2026-11-30 21:00:00

A signup made with PHONEIN_VERIFY=sms is a ``verifications`` row until the listener enters
the one-time code; ``code_sends`` counts the codes sent to each number (at most 5 an hour
and 10 a day). Messages gain the kind ``code``: a code phonein made itself, texted through
the outbox when there is no Twilio Verify service. ``challenge_uses`` keeps the
proof-of-work solutions already accepted (PHONEIN_CHALLENGE=pow), each accepted once.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_verifications"
down_revision = "0006_fencing"
branch_labels = None
depends_on = None

OLD_KINDS = "'confirmation', 'reminder', 'next_up', 'rescheduled', 'cancelled', 'help', 'goodbye'"
NEW_KINDS = OLD_KINDS + ", 'code'"


def _kinds(kinds: str) -> None:
    # SQLite cannot alter a CHECK constraint: batch mode rebuilds the table there.
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("ck_messages_kind", type_="check")
        batch.create_check_constraint("ck_messages_kind", f"kind IN ({kinds})")


def upgrade() -> None:
    op.create_table(
        "verifications",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("forum_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("values", sa.JSON(), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("provider_sid", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("proved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signup_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("channel IN ('sms', 'call')", name="ck_verifications_channel"),
        sa.ForeignKeyConstraint(["forum_id"], ["forums.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["signup_id"], ["signups.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_verifications_expires", "verifications", ["expires_at"])
    op.create_table(
        "code_sends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_code_sends_phone_sent", "code_sends", ["phone", "sent_at"])
    op.create_table(
        "challenge_uses",
        sa.Column("challenge", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("challenge"),
    )
    op.create_index("ix_challenge_uses_expires", "challenge_uses", ["expires_at"])
    _kinds(NEW_KINDS)


def downgrade() -> None:
    op.execute("DELETE FROM messages WHERE kind = 'code'")
    _kinds(OLD_KINDS)
    op.drop_index("ix_challenge_uses_expires", table_name="challenge_uses")
    op.drop_table("challenge_uses")
    op.drop_index("ix_code_sends_phone_sent", table_name="code_sends")
    op.drop_table("code_sends")
    op.drop_index("ix_verifications_expires", table_name="verifications")
    op.drop_table("verifications")
