"""Recovery: settle the claims a sender let go of or left behind when it stopped.

A claim is reconciled with the provider's message list before the text goes again: a
message Twilio already has is recorded, not resent. The lease holder runs this every few
seconds (``worker.recover``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask

from .. import database
from ..extensions import db
from ..models import Message, MessageStatus, Worker
from . import backends, dispatch, status
from .dispatch import IN_FLIGHT, STUCK_AFTER, UNKNOWN, Claimed


def _abandoned(dead_after: timedelta) -> sa.ColumnElement[bool]:
    """Match a claim nobody is sending, judged when the statement runs: released by its
    sender, or its sender quiet (or stuck) and no send confirmed within ``IN_FLIGHT``."""
    alive = sa.select(Worker.id).where(Worker.heartbeat_at >= database.clock(-dead_after))
    return sa.or_(
        Message.claimed_by.is_(None),
        sa.and_(
            sa.or_(
                Message.claimed_by.not_in(alive),
                Message.claimed_at < database.clock(-STUCK_AFTER),
            ),
            sa.or_(Message.sent_at.is_(None), Message.sent_at < database.clock(-IN_FLIGHT)),
        ),
    )


def recover(app: Flask, now: datetime, dead_after: timedelta) -> int:
    """Settle claims whose sender let go or stopped beating: reconcile, then record or
    re-queue.

    Released claims are settled at once; claims of a quiet sender once it has been quiet
    for ``dead_after``; a send it had confirmed only after ``IN_FLIGHT``, when any request
    it made has landed.
    """
    alive = sa.select(Worker.id).where(Worker.heartbeat_at >= now - dead_after)
    quiet = sa.or_(Message.claimed_by.is_(None), Message.claimed_by.not_in(alive))
    settled = sa.or_(Message.sent_at.is_(None), Message.sent_at < now - IN_FLIGHT)
    rows = db.session.execute(
        sa.select(
            Message.id,
            Message.to,
            Message.body,
            Message.kind,
            Message.attempts,
            Message.claimed_at,
            Message.claimed_by,
            Message.sent_at,
        )
        .where(
            Message.status == MessageStatus.SENDING,
            sa.or_(
                Message.claimed_by.is_(None),
                sa.and_(quiet, Message.claimed_at < now - dead_after, settled),
                sa.and_(Message.claimed_at < now - STUCK_AFTER, settled),
            ),
        )
        .limit(500)
    ).all()
    backend = backends.backend(app)
    for row in rows:
        claimed = Claimed(row.id, row.to, row.body, row.kind, row.attempts, row.claimed_at or now)
        found = dispatch.lookup(backend, claimed)
        if found is UNKNOWN:
            continue  # Twilio did not answer: leave it for the next pass
        if found is not None:
            dispatch.record_sent(claimed, row.claimed_by, found)
        else:
            # Never confirmed: never sent, so it goes again at once; else after a backoff
            # (a send that failed twice in a row is not retried in a tight loop).
            again = now if row.sent_at is None else now + dispatch.backoff(row.attempts)
            dispatch.finish(
                claimed,
                row.claimed_by,
                # Asked again as it is written, on the database's clock: Twilio was asked
                # before this, and a sender that confirmed since is sending it now.
                only_if=_abandoned(dead_after),
                status=MessageStatus.PENDING,
                send_at=again,
                sent_at=None,
            )
    db.session.execute(sa.delete(Worker).where(Worker.heartbeat_at < now - 10 * dead_after))
    status.settle_early(now, forget_after=timedelta(days=1))
    db.session.commit()
    return len(rows)
