"""Publishing a selection of comments after the forum, and the balance of opinion."""

from __future__ import annotations

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
        Signup.publish_consent.is_(True),
        Signup.status.not_in(SIGNUP_UNSCREENED),
    ]


# The producers' order; comments they gave no place come after the others.
IN_ORDER = (Signup.publish_order.is_(None), Signup.publish_order)


def selection(forum: Forum) -> list[Signup]:
    """Return the published comments in the producers' order (unordered ones last)."""
    return list(
        db.session.scalars(
            sa.select(Signup)
            .where(*_publishable(forum), Signup.published.is_(True))
            .order_by(*IN_ORDER, Signup.id)
        )
    )


def candidates(forum: Forum) -> list[Signup]:
    """Return the comments that may be published, not erased: the selection first, in its
    order, then the best rated."""
    return list(
        db.session.scalars(
            sa.select(Signup)
            .where(*_publishable(forum), Signup.erased_at.is_(None))
            .order_by(Signup.published.desc(), *IN_ORDER, Signup.rating.desc(), Signup.id)
        )
    )


def balance(forum: Forum) -> dict[str, int]:
    """Count screened signups by stance: the balance of opinion the selection reflects."""
    rows = db.session.execute(
        sa.select(Signup.stance, sa.func.count())
        .where(
            Signup.forum_id == forum.id,
            Signup.stance.is_not(None),
            Signup.status.not_in(SIGNUP_UNSCREENED),
        )
        .group_by(Signup.stance)
    )
    counts = {s.value: 0 for s in Stance}
    counts.update({stance: n for stance, n in rows if stance})
    return counts
