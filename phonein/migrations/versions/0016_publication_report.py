"""publication and report (placeholder: reserved in the migration chain so parallel work can land in any order)

Revision ID: 0016_publication_report
Revises: 0015_honest_texts
Create Date: 2026-11-30 23:30:00

"""

revision = "0016_publication_report"
down_revision = "0015_honest_texts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
