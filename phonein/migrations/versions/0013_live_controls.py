"""live controls: an undo log of live actions, and a pronunciation note per caller

Every live action (next, finish, remove, requeue, go live, close, cancel) writes a
``live_actions`` row with what it changed as it was before, so that producers can undo it
for a short while (``expires_at``, from the database's clock). ``signups.pronunciation``
is a producer's note of how to say a caller's name, shown on the presenter's board.

Revision ID: 0013_live_controls
Revises: 0012_languages
Create Date: 2026-11-30 23:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0013_live_controls"
down_revision = "0012_languages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signups") as batch:
        batch.add_column(sa.Column("pronunciation", sa.String(length=200), nullable=True))
    op.create_table(
        "live_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("forum_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("version_after", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["forum_id"], ["forums.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_live_actions_forum", "live_actions", ["forum_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_live_actions_forum", table_name="live_actions")
    op.drop_table("live_actions")
    with op.batch_alter_table("signups") as batch:
        batch.drop_column("pronunciation")
