"""fencing numbers for the scheduler's lease and the switchboard's claims; expired texts

Revision ID: 0006_fencing
Revises: 0005_search_indexes
Create Date: 2026-11-30 21:00:00

``leases.fence`` grows each time the scheduler's lease changes hands and ``calls.fence`` at
every claim of a wanted request: a holder proves it still holds what it claimed before it
writes or calls Twilio. Messages use ``attempts`` (one more per claim) the same way. A text
that could not go out while it was still useful becomes ``expired``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_fencing"
down_revision = "0005_search_indexes"
branch_labels = None
depends_on = None

STATUSES = (
    "'pending', 'sending', 'queued', 'sent', 'delivered', 'undelivered', 'failed', 'cancelled'"
)


def _statuses(statuses: str) -> None:
    # SQLite cannot alter a CHECK constraint: batch mode rebuilds the table there.
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("ck_messages_status", type_="check")
        batch.create_check_constraint("ck_messages_status", f"status IN ({statuses})")


def upgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.add_column(sa.Column("fence", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("fence", sa.Integer(), nullable=False, server_default="0"))
    _statuses(STATUSES + ", 'expired'")


def downgrade() -> None:
    op.execute("UPDATE messages SET status = 'failed' WHERE status = 'expired'")
    _statuses(STATUSES)
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("fence")
    with op.batch_alter_table("leases") as batch:
        batch.drop_column("fence")
