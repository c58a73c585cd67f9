"""Delivery statuses: Twilio's words for them, their order, and moving forward only."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa

from ..database import changed, upsert_insert
from ..extensions import db
from ..models import EarlyStatus, Message, MessageStatus

# queued -> sent -> delivered / undelivered / failed; never backwards.
RANK = {
    MessageStatus.SENDING: 0,
    MessageStatus.QUEUED: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.UNDELIVERED: 3,
    MessageStatus.FAILED: 3,
}
TWILIO = {
    "accepted": MessageStatus.QUEUED,
    "queued": MessageStatus.QUEUED,
    "sending": MessageStatus.QUEUED,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
}


class Status(NamedTuple):
    status: str
    error_code: int | None


def later(current: str, new: str) -> bool:
    """Say whether ``new`` comes after ``current`` (unknown current states never move)."""
    return RANK.get(MessageStatus(new), -1) > RANK.get(MessageStatus(current), 9)


def _message(sid: str) -> Message | None:
    return db.session.scalars(
        sa.select(Message)
        .where(Message.provider_sid == sid)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def _advance(message: Message, status: str, error_code: int | None, now: datetime) -> None:
    if later(message.status, status):
        message.status = status
        message.error_code = error_code or message.error_code
        message.updated_at = now


def report(sid: str, status: str, error_code: int | None, now: datetime) -> None:
    """Apply a status callback to its message, or keep it until the SID is recorded."""
    message = _message(sid)
    if message is not None:
        _advance(message, status, error_code, now)
        return
    _keep_early(sid, status, error_code, now)
    # The sender may have committed the SID while this request waited to write: look
    # again (now behind the write lock on SQLite; READ COMMITTED sees it on PostgreSQL).
    message = _message(sid)
    if message is not None:
        early = take_early(sid)
        if early is not None:
            _advance(message, early.status, early.error_code, now)


def _keep_early(sid: str, status: str, error_code: int | None, now: datetime) -> None:
    inserted = changed(
        upsert_insert(EarlyStatus.__table__)
        .values(provider_sid=sid, status=status, error_code=error_code, received_at=now)
        .on_conflict_do_nothing(index_elements=["provider_sid"])
        .execution_options(preserve_rowcount=True)
    )
    if not inserted:
        early = db.session.scalars(
            sa.select(EarlyStatus).where(EarlyStatus.provider_sid == sid).with_for_update()
        ).one()
        if later(early.status, status):
            early.status, early.error_code = status, error_code


def take_early(sid: str) -> Status | None:
    """Remove and return a status that arrived for ``sid`` before the SID was recorded."""
    table = EarlyStatus.__table__
    row = db.session.execute(
        sa.delete(table)
        .where(table.c.provider_sid == sid)
        .returning(table.c.status, table.c.error_code)
    ).first()
    return Status(row.status, row.error_code) if row else None


def settle_early(now: datetime, forget_after: timedelta) -> int:
    """Apply early statuses whose SID has since been recorded; forget very old ones.

    Closes the window between a sender taking early statuses and committing its SID.
    """
    rows = db.session.execute(
        sa.select(EarlyStatus, Message).join(
            Message, Message.provider_sid == EarlyStatus.provider_sid
        )
    ).all()
    for early, message in rows:
        if later(message.status, early.status):
            message.status = early.status
            message.error_code = early.error_code or message.error_code
            message.updated_at = now
        db.session.delete(early)
    db.session.execute(sa.delete(EarlyStatus).where(EarlyStatus.received_at < now - forget_after))
    return len(rows)
