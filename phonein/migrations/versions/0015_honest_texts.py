"""honest texts: the ``closed`` SMS kind

Revision ID: 0015_honest_texts
Revises: 0013_live_controls
Create Date: 2026-11-30 23:30:00

When a forum closes, approved and queued listeners who were not reached (and are not on
the line, who get the ``goodbye``) are texted once that it is over: messages gain the kind
``closed``. The catch-up reminder is a ``reminder`` keyed like the wave it makes up for,
so it needs no new kind.
"""

from alembic import op

revision = "0015_honest_texts"
down_revision = "0013_live_controls"
branch_labels = None
depends_on = None

OLD_KINDS = (
    "'confirmation', 'reminder', 'next_up', 'rescheduled', 'cancelled', 'help', 'goodbye', 'code'"
)
NEW_KINDS = OLD_KINDS + ", 'closed'"


def _kinds(kinds: str) -> None:
    # SQLite cannot alter a CHECK constraint: batch mode rebuilds the table there.
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("ck_messages_kind", type_="check")
        batch.create_check_constraint("ck_messages_kind", f"kind IN ({kinds})")


def upgrade() -> None:
    _kinds(NEW_KINDS)


def downgrade() -> None:
    op.execute("DELETE FROM messages WHERE kind = 'closed'")
    _kinds(OLD_KINDS)
