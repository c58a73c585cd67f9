"""screening and publication (placeholder: reserved in the migration chain so parallel work can land in any order)

Revision ID: 0014_screening_publication
Revises: 0013_live_controls
Create Date: 2026-11-30 23:30:00

"""

revision = "0014_screening_publication"
down_revision = "0013_live_controls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
