"""consent ledger (placeholder: reserved in the migration chain so parallel work can land in any order)

Revision ID: 0010_consent_ledger
Revises: 0009_caller_attestation
Create Date: 2026-11-30 23:30:00

"""

revision = "0010_consent_ledger"
down_revision = "0009_caller_attestation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
