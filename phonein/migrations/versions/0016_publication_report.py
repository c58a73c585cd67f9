"""indexes for the after-show report: signups by country, texts by kind and status

Revision ID: 0016_publication_report
Revises: 0015_honest_texts
Create Date: 2026-11-30 23:30:00

The report (``phonein.report``) counts a forum's signups by country and its texts by kind
and delivery status. With these two indexes both are index-only counts on PostgreSQL,
instead of reading every signup and every text of a forum of 100,000 listeners.
"""

from alembic import op

revision = "0016_publication_report"
down_revision = "0015_honest_texts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_signups_forum_country", "signups", ["forum_id", "country"], unique=False)
    op.create_index(
        "ix_messages_forum_kind_status", "messages", ["forum_id", "kind", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_messages_forum_kind_status", table_name="messages")
    op.drop_index("ix_signups_forum_country", table_name="signups")
