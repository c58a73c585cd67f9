"""languages per forum and per signup (placeholder: reserved in the migration chain so parallel work can land in any order)

Revision ID: 0012_languages
Revises: 0011_folded_search
Create Date: 2026-11-30 23:30:00

"""

revision = "0012_languages"
down_revision = "0011_folded_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
