"""Publishing a selection of comments after the forum, and the balance of opinion."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from .errors import Conflict, Invalid
from .extensions import db
from .inputs import clean_text
from .models import MAX_ID, PULL_QUOTE_MAX, SIGNUP_UNSCREENED, Forum, Signup, Stance


def set_published(signup: Signup, data: dict[str, Any], now: datetime) -> None:
    """Put a signup in the published selection (or take it out), with quote and order."""
    published = data.get("published")
    if not isinstance(published, bool):
        raise Invalid({"published": "Give true or false."})
    pull_quote = data.get("pull_quote")
    if pull_quote is not None:
        pull_quote = clean_text(pull_quote)
        if len(pull_quote) > PULL_QUOTE_MAX:
            raise Invalid({"pull_quote": f"Keep the pull quote to {PULL_QUOTE_MAX} characters."})
    order = data.get("order")
    if order is not None and (
        isinstance(order, bool) or not isinstance(order, int) or not -MAX_ID <= order <= MAX_ID
    ):
        raise Invalid({"order": "Give a whole number."})
    if published:
        # Re-read under a row lock: a withdrawal racing this must not end up published.
        db.session.flush()  # refresh() would drop changes not yet flushed
        db.session.refresh(signup, with_for_update=True)
        if not signup.publish_consent:
            raise Conflict("This listener did not agree to publication.", code="no_publish_consent")
        if signup.status in SIGNUP_UNSCREENED or signup.erased_at is not None:
            raise Conflict(f"A {signup.status} signup cannot be published.", code="not_publishable")
    signup.published = published
    if "pull_quote" in data:
        signup.pull_quote = pull_quote or None
    if "order" in data:
        signup.publish_order = order
    signup.updated_at = now


def _publishable(forum: Forum) -> list[sa.ColumnElement[bool]]:
    """The forum's comments whose authors consented and that producers screened."""
    return [
        Signup.forum_id == forum.id,
        Signup.publish_consent == sa.true(),
        Signup.status.not_in(SIGNUP_UNSCREENED),
    ]


# The producers' order; comments they gave no place come after the others.
IN_ORDER = (Signup.publish_order.is_(None), Signup.publish_order)
# Comments per page of the publication editor.
PER_PAGE = 50


def selection(forum: Forum) -> list[Signup]:
    """Return the published comments in the producers' order (unordered ones last)."""
    # ``published = true`` (not ``IS true``) lets PostgreSQL use the partial index
    # ix_signups_forum_published; the selection is a few dozen rows, however big the forum.
    return list(
        db.session.scalars(
            sa.select(Signup)
            .where(*_publishable(forum), Signup.published == sa.true())
            .order_by(*IN_ORDER, Signup.id)
        )
    )


@dataclass(frozen=True)
class CandidatePage:
    """One page of the publication editor: the selection first, then the best rated."""

    items: list[Signup]
    page: int
    has_next: bool


def candidates(forum: Forum, *, page: int = 1, per_page: int = PER_PAGE) -> CandidatePage:
    """Return one page of the comments that may be published, not erased: the selection
    first, in its order, then the others, best rated first.

    The selection is small and read whole; the others come from the partial index
    ix_signups_forum_candidates, a page at a time, so a forum of 100,000 signups costs
    one page of rows, not all of them. ``has_next`` replaces a count nobody needs.
    """
    chosen = [s for s in selection(forum) if s.erased_at is None]
    start = (page - 1) * per_page
    items = chosen[start : start + per_page + 1]
    wanted = per_page + 1 - len(items)
    if wanted > 0:
        items += db.session.scalars(
            sa.select(Signup)
            .where(
                *_publishable(forum),
                Signup.published == sa.false(),
                Signup.erased_at.is_(None),
            )
            .order_by(Signup.rating.is_(None), Signup.rating.desc(), Signup.id)
            .limit(wanted)
            .offset(max(0, start - len(chosen)))
        ).all()
    return CandidatePage(items[:per_page], page, len(items) > per_page)


def balance(forum: Forum) -> dict[str, int]:
    """Count screened signups by stance: the balance of opinion the selection reflects."""
    rows = db.session.execute(
        sa.select(Signup.stance, sa.func.count())
        .where(
            # An index-only count over ix_signups_forum_stance (forum, stance, status).
            Signup.forum_id == forum.id,
            Signup.stance.is_not(None),
            Signup.status.not_in(SIGNUP_UNSCREENED),
        )
        .group_by(Signup.stance)
    )
    counts = {s.value: 0 for s in Stance}
    counts.update({stance: n for stance, n in rows if stance})
    return counts
