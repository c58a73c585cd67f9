"""Keeping personal data no longer than needed: the purge of old forums.

What is kept and why is in docs/privacy.md (and the README's purge command).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from . import consents
from .database import changed
from .extensions import db
from .models import Call, Forum, Message, Signup


def purge(now: datetime, older_than_days: int) -> int:
    """Erase personal data of forums closed more than ``older_than_days`` ago.

    Phone, email, notes, zone and manage link go from every signup, and numbers from calls.
    Published comments (always with publish consent) keep name, location and text; every
    other signup keeps only what the balance of opinion needs: its status and stance. The
    consent ledger keeps SMS withdrawals, and the publication consents of published
    comments (``consents.erase``).
    Return the number of signups erased.
    """
    cutoff = now - timedelta(days=older_than_days)
    closed_at = sa.func.coalesce(Forum.closed_at, Forum.ends_at)
    # Whatever the stored status, a forum whose close (or planned end) is that old is over.
    forum_ids = sa.select(Forum.id).where(closed_at < cutoff)
    base = [Signup.forum_id.in_(forum_ids), Signup.erased_at.is_(None)]
    personal = dict(
        phone=None,
        email=None,
        notes=None,
        timezone=None,
        country=None,
        manage_token_hash=None,
        erased_at=now,
    )
    # The consent ledger first, while erased_at still tells which signups these are.
    published = sa.and_(Signup.published.is_(True), Signup.publish_consent.is_(True))
    consents.erase(sa.select(Signup.id).where(*base, published), published=True)
    consents.erase(sa.select(Signup.id).where(*base, ~published))
    kept = changed(
        sa.update(Signup)
        .where(*base, Signup.published.is_(True), Signup.publish_consent.is_(True))
        .values(**personal)
    )
    # Calls held the caller's number (and callers who never signed up have only that).
    db.session.execute(
        sa.update(Call)
        .where(Call.forum_id.in_(forum_ids), Call.number.is_not(None))
        .values(number=None)
    )
    # The texts held the number, and some the private link: they go with the forum's data.
    db.session.execute(
        sa.delete(Message).where(
            sa.or_(
                Message.forum_id.in_(forum_ids),
                sa.and_(Message.forum_id.is_(None), Message.created_at < cutoff),
            )
        )
    )
    wiped = changed(
        sa.update(Signup)
        .where(*base)
        .values(
            name="",
            location="",
            question="",
            search_text="",
            pull_quote=None,
            published=False,
            **personal,
        )
    )
    return kept + wiped
