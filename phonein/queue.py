"""The caller queue of a forum: add, move, remove, next, finish.

Order is kept in ``Signup.queue_key``: sparse integers, so that adding, moving or taking
the head touches one row however long the queue; 1-based positions are computed on read.
Every operation starts by bumping ``Forum.queue_version`` with an UPDATE, which takes the
forum's row lock on PostgreSQL and the write lock on SQLite: operations on one forum run
one at a time, and each sees the queue as the previous one left it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from .errors import Conflict, Invalid, NotFound
from .extensions import db
from .models import MAX_ID, Forum, ForumStatus, Signup, SignupStatus

GAP = 1 << 20
ACTIVE = (ForumStatus.OPEN, ForumStatus.LIVE)


@dataclass
class Snapshot:
    on_air: Signup | None
    waiting: list[Signup]
    version: int
    total_waiting: int


@dataclass
class Step:
    """What ``advance`` did: who finished, who went on air, who is now first in line."""

    done: Signup | None = None
    on_air: Signup | None = None
    next_up: Signup | None = None
    version: int = 0
    changed: list[Signup] = field(default_factory=list)


def _lock(forum: Forum, now: datetime, *, live_only: bool = False) -> int:
    version = db.session.execute(
        sa.update(Forum)
        .where(Forum.id == forum.id)
        .values(queue_version=Forum.queue_version + 1)
        .returning(Forum.queue_version)
    ).scalar_one()
    db.session.refresh(forum)
    status = forum.status_at(now)
    if live_only and status != ForumStatus.LIVE:
        raise Conflict(
            f"The forum is {status.value}: callers go on air only while it is live.",
            code="forum_not_live",
        )
    if status not in ACTIVE:
        raise Conflict(f"The forum is {status.value}; its queue is closed.", code="forum_closed")
    return version


def _waiting(forum: Forum) -> sa.Select:
    return sa.select(Signup).where(
        Signup.forum_id == forum.id, Signup.status == SignupStatus.QUEUED
    )


def _reload(signup_id: int, forum: Forum) -> Signup:
    if not 0 < signup_id <= MAX_ID:
        raise NotFound(f"Signup {signup_id} is not in this forum.")
    signup = db.session.scalars(
        sa.select(Signup).where(Signup.id == signup_id).execution_options(populate_existing=True)
    ).one_or_none()
    if signup is None or signup.forum_id != forum.id:
        raise NotFound(f"Signup {signup_id} is not in this forum.")
    return signup


def position_of(signup: Signup) -> int | None:
    if signup.queue_key is None:
        return None
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Signup)
        .where(
            Signup.forum_id == signup.forum_id,
            Signup.status == SignupStatus.QUEUED,
            Signup.queue_key <= signup.queue_key,
        )
    )


def positions(forum: Forum) -> dict[int, int]:
    """Return signup id -> 1-based queue position for everyone waiting."""
    ids = db.session.scalars(
        sa.select(Signup.id)
        .where(Signup.forum_id == forum.id, Signup.status == SignupStatus.QUEUED)
        .order_by(Signup.queue_key)
    )
    return {signup_id: i for i, signup_id in enumerate(ids, start=1)}


def _key_at(forum: Forum, rank: int, exclude: int) -> int | None:
    """Return the queue key at 1-based ``rank`` among waiting signups other than ``exclude``."""
    if rank < 1:
        return None
    return db.session.scalar(
        sa.select(Signup.queue_key)
        .where(
            Signup.forum_id == forum.id,
            Signup.status == SignupStatus.QUEUED,
            Signup.id != exclude,
        )
        .order_by(Signup.queue_key)
        .offset(rank - 1)
        .limit(1)
    )


def _rebalance(forum: Forum) -> None:
    """Spread the keys out again when two neighbours have no gap left between them.

    New keys start above the current maximum, so no intermediate state collides with the
    unique (forum, key) constraint.
    """
    rows = db.session.execute(
        _waiting(forum).with_only_columns(Signup.id, Signup.queue_key).order_by(Signup.queue_key)
    ).all()
    base = rows[-1].queue_key + GAP
    db.session.execute(
        sa.update(Signup),
        [{"id": row.id, "queue_key": base + i * GAP} for i, row in enumerate(rows)],
    )


def _key_for(forum: Forum, position: int, exclude: int) -> int:
    for _ in range(2):
        before = _key_at(forum, position - 1, exclude)
        after = _key_at(forum, position, exclude)
        if before is None and after is None:
            return GAP
        if before is None:
            return after - GAP
        if after is None:
            return before + GAP
        if after - before >= 2:
            return (before + after) // 2
        _rebalance(forum)
    raise RuntimeError("queue keys still packed after a rebalance")


def place(forum: Forum, signup_id: int, position: int | None, now: datetime) -> tuple[Signup, int]:
    """Add an approved signup at ``position`` (1-based, default last) or move a queued one.

    A position past the end means last. Return the signup and its new position.
    """
    if position is not None and position < 1:
        raise Invalid({"position": "Positions start at 1."})
    _lock(forum, now)
    signup = _reload(signup_id, forum)
    if signup.status not in (SignupStatus.APPROVED, SignupStatus.QUEUED):
        raise Conflict(
            f"Only approved signups can be queued; this one is {signup.status}.",
            code="not_approved",
        )
    others = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Signup)
        .where(
            Signup.forum_id == forum.id,
            Signup.status == SignupStatus.QUEUED,
            Signup.id != signup.id,
        )
    )
    target = min(position or others + 1, others + 1)
    key = _key_for(forum, target, signup.id)
    signup.status = SignupStatus.QUEUED
    signup.queue_key = key
    signup.updated_at = now
    db.session.flush()
    return signup, target


def remove(forum: Forum, signup_id: int, now: datetime) -> Signup:
    """Take a waiting caller out of the queue, back to approved."""
    _lock(forum, now)
    signup = _reload(signup_id, forum)
    if signup.status != SignupStatus.QUEUED:
        raise Conflict(f"Signup {signup_id} is not in the queue.", code="not_queued")
    signup.status = SignupStatus.APPROVED
    signup.queue_key = None
    signup.updated_at = now
    db.session.flush()
    return signup


def _finish_on_air(forum: Forum, now: datetime) -> Signup | None:
    current = db.session.scalars(
        sa.select(Signup).where(Signup.forum_id == forum.id, Signup.status == SignupStatus.ON_AIR)
    ).one_or_none()
    if current is not None:
        current.status = SignupStatus.DONE
        current.done_at = now
        # Flush now: the one-on-air index must see this caller leave before the next joins.
        db.session.flush()
    return current


def advance(forum: Forum, now: datetime) -> Step:
    """The caller on air is done; the head of the queue goes on air."""
    step = Step(version=_lock(forum, now, live_only=True))
    step.done = _finish_on_air(forum, now)
    head = db.session.scalars(_waiting(forum).order_by(Signup.queue_key).limit(1)).first()
    if head is not None:
        head.status = SignupStatus.ON_AIR
        head.queue_key = None
        head.on_air_at = now
        db.session.flush()
        step.on_air = head
    step.next_up = db.session.scalars(_waiting(forum).order_by(Signup.queue_key).limit(1)).first()
    return step


def finish(forum: Forum, now: datetime) -> Step:
    """The caller on air is done; nobody goes on air."""
    step = Step(version=_lock(forum, now, live_only=True))
    step.done = _finish_on_air(forum, now)
    return step


def snapshot(forum: Forum, limit: int | None = None) -> Snapshot:
    """Return who is on air and who waits, in order, with the queue's version."""
    on_air = db.session.scalars(
        sa.select(Signup).where(Signup.forum_id == forum.id, Signup.status == SignupStatus.ON_AIR)
    ).one_or_none()
    stmt = _waiting(forum).order_by(Signup.queue_key)
    if limit is not None:
        stmt = stmt.limit(limit)
    waiting = list(db.session.scalars(stmt))
    total = len(waiting)
    if limit is not None and total == limit:
        total = db.session.scalar(
            sa.select(sa.func.count()).select_from(_waiting(forum).subquery())
        )
    return Snapshot(on_air, waiting, forum.queue_version, total)
