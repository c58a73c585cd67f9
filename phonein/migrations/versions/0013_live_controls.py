"""live controls (placeholder: reserved in the migration chain so parallel work can land in any order)

Revision ID: 0013_live_controls
Revises: 0012_languages
Create Date: 2026-11-30 23:30:00

"""

revision = "0013_live_controls"
down_revision = "0012_languages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
