"""honest texts (placeholder: reserved in the migration chain so parallel work can land in any order)

Revision ID: 0015_honest_texts
Revises: 0014_screening_publication
Create Date: 2026-11-30 23:30:00

"""

revision = "0015_honest_texts"
down_revision = "0014_screening_publication"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
