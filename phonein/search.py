"""Producers' search over a forum's signups, and its pages.

Operations read only; the views that call them commit nothing.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import sqlalchemy as sa

from .errors import Invalid
from .extensions import db
from .inputs import clean_text
from .models import Forum, Signup, SignupStatus

# PostgreSQL answers through pg_trgm GIN indexes (migration 0005) over
# ``phonein_fold`` (lower + unaccent) of the searchable text, so "anna" finds "ANNA" and
# "Änna" and "joao" finds "João" (no transliteration: "anna" does not find "Анна"), and
# over the phone numbers. SQLite has no trigram index: it scans, with the same folding
# done by a Python function registered on its connection. The expression must stay
# exactly as the migration's index writes it, or PostgreSQL will not use the index.
SEARCH_TEXT = sa.func.phonein_fold(
    Signup.name
    + sa.literal_column("' '")
    + Signup.location
    + sa.literal_column("' '")
    + Signup.question
)
# A query typed as a phone number: digits with the usual separators.
PHONE_LIKE = re.compile(r"^[\d\s+().\-/]+$")
# Fewer digits than this match too many numbers to be what a producer means.
PHONE_MIN_DIGITS = 4


def fold(value: str) -> str:
    """Fold case and accents the way PostgreSQL's ``phonein_fold`` does (for SQLite)."""
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _like_escape(text: str) -> str:
    return re.sub(r"([\\%_])", r"\\\1", text)


def _search_condition(text: str) -> sa.ColumnElement[bool]:
    """Match ``text`` in name, location or question (folded), or in the phone number."""
    if db.session.get_bind().dialect.name == "sqlite":
        # Registered per call: cheap, and it keeps database.py free of search concerns.
        raw = db.session.connection().connection.driver_connection
        if raw is not None:  # always, on a connection just checked out
            raw.create_function("phonein_fold", 1, fold, deterministic=True)
    pattern = "%" + _like_escape(text) + "%"
    condition: sa.ColumnElement[bool] = SEARCH_TEXT.like(sa.func.phonein_fold(pattern), escape="\\")
    # Numbers are stored in E.164: a national trunk 0 or an international 00 prefix the
    # producer typed is not part of it, nor are spaces, dashes or brackets.
    digits = re.sub(r"\D", "", text).lstrip("0")
    if PHONE_LIKE.match(text) and len(digits) >= PHONE_MIN_DIGITS:
        condition = sa.or_(condition, Signup.phone.like("%" + digits + "%"))
    return condition


def search(
    forum: Forum, *, status: str | None, q: str | None, page: int, per_page: int
) -> tuple[list[Signup], int]:
    """Return one page of a forum's signups, newest first, and the total that match.

    Pages follow ``ix_signups_forum_created`` / ``ix_signups_forum_status_created``, so a
    page costs its own rows (plus the ones skipped before it), not the whole forum.
    """
    conditions: list[Any] = [Signup.forum_id == forum.id]
    if status:
        try:
            conditions.append(Signup.status == SignupStatus(status))
        except ValueError:
            raise Invalid({"status": "Unknown status."}) from None
    text = clean_text(q)[:200]
    newest_first = (Signup.created_at.desc(), Signup.id.desc())
    if text:
        conditions.append(_search_condition(text))
        # One pass: every match has to be read and checked anyway (the trigram index
        # only narrows them down), so the page and the count come from the same matches
        # instead of checking each twice. MATERIALIZED keeps PostgreSQL from walking the
        # forum's newest-first index and checking every signup to fill one page.
        matches = (
            sa.select(Signup.id, Signup.created_at)
            .where(*conditions)
            .cte("matches")
            .prefix_with("MATERIALIZED")
        )
        one_page = (
            sa.select(matches.c.id, sa.func.count().over().label("total"))
            .order_by(matches.c.created_at.desc(), matches.c.id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
            .subquery()
        )
        found = db.session.execute(
            sa.select(Signup, one_page.c.total)
            .join(one_page, Signup.id == one_page.c.id)
            .order_by(*newest_first)
        ).all()
        if found:
            return [signup for signup, _ in found], found[0][1]
        if page == 1:
            return [], 0
    # Without a search the count reads only the index (ix_signups_forum_status_created /
    # ix_signups_forum_created) and the page only its own rows.
    total = db.session.scalar(sa.select(sa.func.count()).select_from(Signup).where(*conditions))
    rows = db.session.scalars(
        sa.select(Signup)
        .where(*conditions)
        .order_by(*newest_first)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return list(rows), total or 0
