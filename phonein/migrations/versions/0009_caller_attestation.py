"""calls whose caller ID could not be vouched for are marked for producers

Revision ID: 0009_caller_attestation
Revises: 0008_abuse_limits
Create Date: 2026-11-30 22:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0009_caller_attestation"
down_revision = "0008_abuse_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(
            sa.Column("caller_unverified", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("caller_unverified")
