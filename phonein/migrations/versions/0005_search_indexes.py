"""indexes for a forum of 100,000 signups: trigram search, pages, counts, board probes

Revision ID: 0005_search_indexes
Revises: 0004_staff_sessions
Create Date: 2026-11-30 20:50:00

On PostgreSQL, producers' search runs through pg_trgm GIN indexes over case- and
accent-folded text (``phonein_fold``: ``lower(unaccent(...))``, wrapped in an IMMUTABLE
function because ``unaccent`` itself is only STABLE and cannot be indexed) and over the
phone numbers. SQLite has neither extension: it gets only the ordinary indexes, and its
search scans (``phonein.search.search``). The PostgreSQL-only indexes are listed in
``phonein.models.POSTGRESQL_ONLY_INDEXES``, which the model comparison leaves out.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_search_indexes"
down_revision = "0004_staff_sessions"
branch_labels = None
depends_on = None

# The expression must be written exactly as phonein.search.search writes it, or the
# planner will not match the index.
SEARCH_TEXT = "phonein_fold(name || ' ' || location || ' ' || question)"


def upgrade() -> None:
    op.create_index(
        "ix_signups_forum_created", "signups", ["forum_id", "created_at", "id"], unique=False
    )
    op.create_index(
        "ix_signups_forum_status_created",
        "signups",
        ["forum_id", "status", "created_at", "id"],
        unique=False,
    )
    # Its prefix: every lookup by forum and status can use the longer index, and each
    # index is written on every change of a signup.
    with op.batch_alter_table("signups") as batch:
        batch.drop_index("ix_signups_forum_status")
    op.create_index("ix_signups_forum_updated", "signups", ["forum_id", "updated_at"], unique=False)
    op.create_index(
        "ix_signups_forum_stance",
        "signups",
        ["forum_id", "stance", "status"],
        unique=False,
        sqlite_where=sa.text("stance IS NOT NULL"),
        postgresql_where=sa.text("stance IS NOT NULL"),
    )
    op.create_index(
        "ix_signups_forum_published",
        "signups",
        ["forum_id", "publish_order", "id"],
        unique=False,
        sqlite_where=sa.text("published"),
        postgresql_where=sa.text("published"),
    )
    candidates = "publish_consent AND NOT published AND erased_at IS NULL"
    op.create_index(
        "ix_signups_forum_candidates",
        "signups",
        ["forum_id", "rating", "id"],
        unique=False,
        sqlite_where=sa.text(candidates),
        postgresql_where=sa.text(candidates),
    )
    op.create_index(
        "ix_signups_forum_done",
        "signups",
        ["forum_id"],
        unique=False,
        sqlite_where=sa.text("done_at IS NOT NULL"),
        postgresql_where=sa.text("done_at IS NOT NULL"),
    )
    op.create_index("ix_calls_forum_updated", "calls", ["forum_id", "updated_at"], unique=False)

    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: no pg_trgm, no unaccent; search scans there
    # Both extensions are "trusted" (PostgreSQL 13+): a database owner may create them.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION phonein_fold(value text) RETURNS text
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, value)) $$
        """
    )
    op.execute(
        f"CREATE INDEX ix_signups_search_trgm ON signups USING gin ({SEARCH_TEXT} gin_trgm_ops)"
    )
    op.execute("CREATE INDEX ix_signups_phone_trgm ON signups USING gin (phone gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_signups_phone_trgm")
        op.execute("DROP INDEX IF EXISTS ix_signups_search_trgm")
        op.execute("DROP FUNCTION IF EXISTS phonein_fold(text)")
        # The extensions stay: other databases objects may use them, and they are harmless.
    op.drop_index("ix_calls_forum_updated", table_name="calls")
    with op.batch_alter_table("signups") as batch:
        batch.create_index("ix_signups_forum_status", ["forum_id", "status"], unique=False)
    for name in (
        "ix_signups_forum_done",
        "ix_signups_forum_candidates",
        "ix_signups_forum_published",
        "ix_signups_forum_stance",
        "ix_signups_forum_updated",
        "ix_signups_forum_status_created",
        "ix_signups_forum_created",
    ):
        op.drop_index(name, table_name="signups")
