"""the consent ledger: every consent given or withdrawn, with the wording shown

Revision ID: 0010_consent_ledger
Revises: 0009_caller_attestation
Create Date: 2026-11-30 23:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0010_consent_ledger"
down_revision = "0009_caller_attestation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
        ),
        sa.Column(
            "forum_id",
            sa.Integer(),
            sa.ForeignKey("forums.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column(
            "signup_id",
            sa.Integer(),
            sa.ForeignKey("signups.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("given", sa.Boolean(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("wording_version", sa.String(length=32), nullable=False),
        sa.Column("wording", sa.Text(), nullable=False),
        sa.Column("detail", sa.String(length=32), nullable=True),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("purpose IN ('sms', 'publish')", name="ck_consents_purpose"),
        sa.CheckConstraint(
            "method IN ('web', 'api', 'sms_keyword', 'phone', 'provider')",
            name="ck_consents_method",
        ),
    )
    op.create_index("ix_consents_forum_recorded", "consents", ["forum_id", "recorded_at", "id"])
    op.create_index("ix_consents_signup", "consents", ["signup_id"])
    op.create_index("ix_consents_phone", "consents", ["phone"])


def downgrade() -> None:
    op.drop_index("ix_consents_phone", table_name="consents")
    op.drop_index("ix_consents_signup", table_name="consents")
    op.drop_index("ix_consents_forum_recorded", table_name="consents")
    op.drop_table("consents")
