"""Whether a text is still wanted: ``cancelled`` when its listener left, ``expired`` when its
moment passed.

Checked when a sender claims a text and again just before the send, and by the tick for
texts waiting out a retry's backoff, so the producers' log shows why a text never went.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from ..database import changed
from ..extensions import db
from ..models import (
    SIGNUP_REACHABLE,
    Forum,
    ForumStatus,
    Message,
    MessageKind,
    MessageStatus,
    OptOut,
    Signup,
    SignupStatus,
)

NOT_WANTED = "no longer wanted when its turn came"
# A text is worth sending for a day at most, whatever its kind: past that it expires
# rather than arrive a day late (and every retry loop has an end).
MAX_AGE = timedelta(days=1)
FORUM_STARTED = "not sent before its forum started"
FORUM_ENDED = "not sent before its forum ended"
LEFT_QUEUE = "not sent before the caller left the queue"
TOO_OLD = "not sent within a day"
CODE_EXPIRED = "not sent before its code expired"
# Kinds about a forum's start: pointless once it has started.
BEFORE_START = (MessageKind.REMINDER,)
# Kinds worth sending until the forum ends: a new time is news even once it has come
# (a show that went live early texts "it has moved to now"); a private link asked for
# (LINK) opens the manage page until then.
UNTIL_END = (MessageKind.CONFIRMATION, MessageKind.RESCHEDULED, MessageKind.LINK)
# Kinds the listener asked for by text: they go whatever the signup's SMS consent (never
# to a number that opted out).
ASKED_FOR = (MessageKind.LINK,)
# Kinds that tell a listener the forum ended without them: closing or cancelling drops the
# queue, and these are still owed to the dropped.
AFTER_THE_QUEUE = (MessageKind.GOODBYE, MessageKind.CLOSED, MessageKind.CANCELLED)


def expired_reason(
    kind: str,
    signup_status: str | None,
    starts_at: datetime | None,
    ends_at: datetime | None,
    created_at: datetime,
    now: datetime,
) -> str | None:
    """Say why a text is no longer worth sending at ``now``, or None while it still is.

    A reminder (or a new time) until its forum starts, a "you're next" while the caller is
    still queued, a confirmation until the forum ends; none for more than ``MAX_AGE``.
    """
    if now >= created_at + MAX_AGE:
        return TOO_OLD
    if kind == MessageKind.CODE and now >= created_at + _code_life():
        return CODE_EXPIRED
    if kind in BEFORE_START and starts_at is not None and now >= starts_at:
        return FORUM_STARTED
    if kind in UNTIL_END and ends_at is not None and now >= ends_at:
        return FORUM_ENDED
    if kind == MessageKind.NEXT_UP and signup_status != SignupStatus.QUEUED:
        return LEFT_QUEUE
    return None


def _code_life() -> timedelta:
    """How long a one-time code is good for: texting it later only confuses."""
    return timedelta(minutes=int(current_app.config["VERIFY_CODE_MINUTES"]))


def unwanted(ids: list[int], now: datetime) -> dict[int, tuple[MessageStatus, str]]:
    """Return the messages not to send, each with its end and why, checked at ``now``.

    ``cancelled``: the listener withdrew, was rejected or opted out, the forum was
    cancelled (but for the cancellation itself) or moved. ``expired``: its moment passed
    (``expired_reason``).
    """
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(
            Message.id,
            Message.kind,
            Message.key,
            Message.created_at,
            Forum.starts_at,
            Forum.ends_at,
            Signup.status,
            Signup.sms_consent,
            Forum.status.label("forum_status"),
            OptOut.phone.label("opted_out"),
        )
        .select_from(Message)
        .outerjoin(Signup, Signup.id == Message.signup_id)
        .outerjoin(Forum, Forum.id == Message.forum_id)
        .outerjoin(OptOut, OptOut.phone == Message.to)
        .where(Message.id.in_(ids))
    ).all()
    unwanted: dict[int, tuple[MessageStatus, str]] = {}
    for row in rows:
        # A one-time code has no signup yet: the number asked for it on the signup form.
        code_for_a_number = row.kind == MessageKind.CODE and row.status is None
        wanted = (
            row.opted_out is None
            if code_for_a_number
            else (
                row.status is not None
                and (row.sms_consent or row.kind in ASKED_FOR)
                and row.opted_out is None
                and (
                    row.status in SIGNUP_REACHABLE
                    or (row.status == SignupStatus.DROPPED and row.kind in AFTER_THE_QUEUE)
                )
                and (row.forum_status != ForumStatus.CANCELLED or row.kind == MessageKind.CANCELLED)
                # A reminder written for a start the forum has since moved from.
                and (
                    row.kind != MessageKind.REMINDER
                    or row.key.endswith(f"@{int(row.starts_at.timestamp())}")
                )
            )
        )
        if not wanted:
            unwanted[row.id] = (MessageStatus.CANCELLED, NOT_WANTED)
            continue
        reason = expired_reason(
            row.kind, row.status, row.starts_at, row.ends_at, row.created_at, now
        )
        if reason:
            unwanted[row.id] = (MessageStatus.EXPIRED, reason)
    return unwanted


def expire(now: datetime) -> int:
    """Mark ``expired`` the pending texts no longer worth sending (``expired_reason``).

    Texts waiting out a retry's backoff would otherwise look pending in the log long
    after their moment passed; the sender checks each text again when it claims it.
    """
    pending = Message.status == MessageStatus.PENDING
    forum = sa.exists().where(Forum.id == Message.forum_id)
    rules: list[tuple[str, sa.ColumnElement[bool]]] = [
        (TOO_OLD, Message.created_at <= now - MAX_AGE),
        (
            CODE_EXPIRED,
            sa.and_(Message.kind == MessageKind.CODE, Message.created_at <= now - _code_life()),
        ),
        (
            FORUM_STARTED,
            sa.and_(Message.kind.in_(BEFORE_START), forum.where(Forum.starts_at <= now)),
        ),
        (
            FORUM_ENDED,
            sa.and_(Message.kind.in_(UNTIL_END), forum.where(Forum.ends_at <= now)),
        ),
        (
            LEFT_QUEUE,
            sa.and_(
                Message.kind == MessageKind.NEXT_UP,
                sa.exists().where(
                    Signup.id == Message.signup_id, Signup.status != SignupStatus.QUEUED
                ),
            ),
        ),
    ]
    expired = 0
    for reason, condition in rules:
        expired += changed(
            sa.update(Message)
            .where(pending, condition)
            .values(status=MessageStatus.EXPIRED, error_message=reason, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return expired
