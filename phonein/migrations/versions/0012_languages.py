"""forums say which languages they are offered in, and signups which one the listener reads

Revision ID: 0012_languages
Revises: 0011_folded_search
Create Date: 2026-11-30 23:30:00

Existing forums get the station's language (PHONEIN_DEFAULT_LANGUAGE when the migration
runs inside the app, else English); existing signups keep no language, which every reader
of it takes as their forum's first one.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_languages"
down_revision = "0011_folded_search"
branch_labels = None
depends_on = None


def _station_language() -> str:
    try:
        from flask import current_app

        return str(current_app.config.get("DEFAULT_LANGUAGE") or "en")
    except RuntimeError:  # alembic run outside the app
        return "en"


def upgrade() -> None:
    with op.batch_alter_table("forums") as batch:
        batch.add_column(sa.Column("languages", sa.JSON(), nullable=True))
    forums = sa.table("forums", sa.column("languages", sa.JSON()))
    op.execute(
        forums.update().where(forums.c.languages.is_(None)).values(languages=[_station_language()])
    )
    with op.batch_alter_table("forums") as batch:
        batch.alter_column("languages", existing_type=sa.JSON(), nullable=False)
    with op.batch_alter_table("signups") as batch:
        batch.add_column(sa.Column("language", sa.String(length=35), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signups") as batch:
        batch.drop_column("language")
    with op.batch_alter_table("forums") as batch:
        batch.drop_column("languages")
