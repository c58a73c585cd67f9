"""folded search text: a stored column, backfilled, with a trigram index on PostgreSQL

Revision ID: 0011_folded_search
Revises: 0010_consent_ledger
Create Date: 2026-11-30 23:30:00

``signups.search_text`` holds name, location and question folded the way
``phonein.search.fold`` folds (case, accents, Cyrillic and Greek transliterated), written
with them. It replaces 0005's expression index over ``phonein_fold(...)``, which folded
every matching row again on every search and could not transliterate: a search now
compares stored text. On PostgreSQL a pg_trgm GIN index covers the column; SQLite scans.
The backfill runs the application's own fold in batches.
"""

import sqlalchemy as sa
from alembic import op

from phonein.search import searchable

revision = "0011_folded_search"
down_revision = "0010_consent_ledger"
branch_labels = None
depends_on = None

BATCH = 2000


def _no_statement_timeout() -> None:
    # The app's statement timeout (PHONEIN_DATABASE_STATEMENT_TIMEOUT) is for requests;
    # building a trigram index over a big table takes longer, and this is a migration.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL statement_timeout = 0")


def upgrade() -> None:
    _no_statement_timeout()
    with op.batch_alter_table("signups") as batch:
        batch.add_column(sa.Column("search_text", sa.Text(), server_default="", nullable=False))
    bind = op.get_bind()
    signups = sa.table(
        "signups",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("location", sa.String),
        sa.column("question", sa.Text),
        sa.column("search_text", sa.Text),
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(signups.c.id, signups.c.name, signups.c.location, signups.c.question)
            .where(signups.c.id > last)
            .order_by(signups.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        bind.execute(
            sa.update(signups)
            .where(signups.c.id == sa.bindparam("row_id"))
            .values(search_text=sa.bindparam("folded")),
            [{"row_id": row.id, "folded": searchable(dict(row._mapping))} for row in rows],
        )
        last = rows[-1].id
    if bind.dialect.name != "postgresql":
        return  # SQLite: no pg_trgm; search scans there
    # 0005 created the extension; this migration's index needs it.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("DROP INDEX IF EXISTS ix_signups_search_trgm")
    op.execute(
        "CREATE INDEX ix_signups_search_text_trgm ON signups USING gin (search_text gin_trgm_ops)"
    )


def downgrade() -> None:
    _no_statement_timeout()
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_signups_search_text_trgm")
        op.execute(
            "CREATE INDEX ix_signups_search_trgm ON signups USING gin "
            "(phonein_fold(name || ' ' || location || ' ' || question) gin_trgm_ops)"
        )
    with op.batch_alter_table("signups") as batch:
        batch.drop_column("search_text")
