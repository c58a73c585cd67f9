"""limits on texts to unproved numbers: by number range, and for the whole station

Revision ID: 0008_abuse_limits
Revises: 0007_verifications
Create Date: 2026-11-30 21:55:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0008_abuse_limits"
down_revision = "0007_verifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("code_sends") as batch:
        batch.add_column(sa.Column("prefix", sa.String(length=12), nullable=True))
        batch.add_column(sa.Column("verification_id", sa.String(length=40), nullable=True))
    op.create_index("ix_code_sends_prefix_sent", "code_sends", ["prefix", "sent_at"])
    op.create_index("ix_code_sends_sent", "code_sends", ["sent_at"])


def downgrade() -> None:
    op.drop_index("ix_code_sends_sent", table_name="code_sends")
    op.drop_index("ix_code_sends_prefix_sent", table_name="code_sends")
    with op.batch_alter_table("code_sends") as batch:
        batch.drop_column("verification_id")
        batch.drop_column("prefix")
