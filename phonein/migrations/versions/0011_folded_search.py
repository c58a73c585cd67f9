"""folded search text (placeholder: reserved in the migration chain so parallel work can land in any order)

Revision ID: 0011_folded_search
Revises: 0010_consent_ledger
Create Date: 2026-11-30 23:30:00

"""

revision = "0011_folded_search"
down_revision = "0010_consent_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
