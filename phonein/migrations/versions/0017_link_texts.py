"""link texts: the ``link`` SMS kind

Revision ID: 0017_link_texts
Revises: 0016_publication_report
Create Date: 2026-12-01 03:00:00

The confirmation no longer carries the private link (it kept the text at two segments); a
listener who texts LINK (LIEN, ENLACE, رابط) gets it in a text of its own, at most one a
day per signup: messages gain the kind ``link``, keyed by the day.
"""

from alembic import op

revision = "0017_link_texts"
down_revision = "0016_publication_report"
branch_labels = None
depends_on = None

OLD_KINDS = (
    "'confirmation', 'reminder', 'next_up', 'rescheduled', 'cancelled', 'help', 'goodbye', "
    "'code', 'closed'"
)
NEW_KINDS = OLD_KINDS + ", 'link'"


def _kinds(kinds: str) -> None:
    # SQLite cannot alter a CHECK constraint: batch mode rebuilds the table there.
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("ck_messages_kind", type_="check")
        batch.create_check_constraint("ck_messages_kind", f"kind IN ({kinds})")


def upgrade() -> None:
    _kinds(NEW_KINDS)


def downgrade() -> None:
    op.execute("DELETE FROM messages WHERE kind = 'link'")
    _kinds(OLD_KINDS)
