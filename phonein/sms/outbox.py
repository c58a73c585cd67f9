"""The SMS outbox: what to text whom, written in the same transaction as its cause.

Nothing here talks to Twilio. Rows are inserted as ``pending`` and a sender
(``sms.dispatch``) hands them over only once the transaction that wrote them has
committed. Every row has an idempotency key, unique per signup and kind, so replaying a
wave or an event never makes a second message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from .. import consents
from ..database import Write, changed, per_dialect, upsert_insert
from ..extensions import db
from ..links import forum_url
from ..models import (
    FORUM_ACTIVE,
    SIGNUP_REACHABLE,
    ConsentMethod,
    Forum,
    ForumStatus,
    Message,
    MessageKind,
    MessageStatus,
    OptOut,
    ReminderWave,
    Signup,
    SignupStatus,
)
from ..twilio import OPTED_OUT
from . import quiet
from .texts import body

COLUMNS = [
    "forum_id",
    "signup_id",
    "kind",
    "key",
    "to",
    "body",
    "send_at",
    "status",
    "attempts",
    "created_at",
    "updated_at",
]


def not_opted_out() -> sa.ColumnElement[bool]:
    return ~sa.exists().where(OptOut.phone == Signup.phone)


def _enqueue_one(
    signup: Signup,
    kind: MessageKind,
    key: str,
    text: str,
    now: datetime,
    send_at: datetime | None = None,
) -> bool:
    """Insert one message unless its key exists or the number opted out; one statement."""
    if not signup.sms_consent or signup.phone is None:
        return False
    return enqueue(
        signup.phone,
        kind,
        key,
        text,
        now,
        forum_id=signup.forum_id,
        signup_id=signup.id,
        send_at=send_at,
    )


def enqueue(
    to: str,
    kind: MessageKind,
    key: str,
    text: str,
    now: datetime,
    *,
    forum_id: int | None,
    signup_id: int | None,
    send_at: datetime | None = None,
) -> bool:
    """Write one text to ``to`` (due at ``send_at``, default now) unless its key exists or
    the number opted out.

    One statement: the opt-out is checked inside the INSERT … SELECT.
    """
    params = {
        "m_forum": forum_id,
        "m_signup": signup_id,
        "m_kind": kind.value,
        "m_key": key,
        "m_to": to,
        "m_body": text,
        "m_send_at": send_at or now,
        "m_now": now,
    }
    return db.session.scalar(_enqueue_statement(), params) is not None


# The INSERT … SELECT of ``enqueue``, built once per dialect with bind parameters: built
# anew for every text (eleven literals, the opt-out test, the conflict clause), it and its
# cache key cost more CPU than its execution (0.7 ms, measured on a signup's confirmation).
@per_dialect
def _enqueue_statement() -> Any:
    values = sa.select(
        sa.bindparam("m_forum", type_=sa.Integer),
        sa.bindparam("m_signup", type_=sa.Integer),
        sa.bindparam("m_kind", type_=sa.String),
        sa.bindparam("m_key", type_=sa.String),
        sa.bindparam("m_to", type_=sa.String),
        sa.bindparam("m_body", type_=sa.String),
        sa.bindparam("m_send_at", type_=Message.send_at.type),
        sa.literal(MessageStatus.PENDING.value),
        sa.literal(0),
        sa.bindparam("m_now", type_=Message.created_at.type),
        sa.bindparam("m_now", type_=Message.updated_at.type),
    ).where(~sa.exists().where(OptOut.phone == sa.bindparam("m_to", type_=sa.String)))
    return (
        upsert_insert(Message.__table__)
        .from_select(COLUMNS, values)
        .on_conflict_do_nothing(index_elements=["signup_id", "kind", "key"])
        .returning(Message.__table__.c.id)
    )


# A listener who signs up after the forum's last reminder wave was written (or so close to
# it that the wave may be being written) gets one catch-up reminder instead, this long
# before the start; only when they sign up at least CATCH_UP_MIN_LEAD before it. Closer
# to the start, the confirmation, which gives the time, is the reminder, and it promises
# none. With the default waves (1 day, 1 hour, 10 minutes) it is the forums with fewer or
# earlier waves whose late signups get one.
CATCH_UP_BEFORE = timedelta(minutes=10)
CATCH_UP_MIN_LEAD = timedelta(minutes=20)
CLOCK_MARGIN = timedelta(minutes=1)


def reminder_coming(forum: Forum, now: datetime) -> tuple[bool, int | None]:
    """Say whether a listener signing up at ``now`` will get a reminder, and if it must be
    a catch-up, the offset of the wave it makes up for.

    A wave reaches a listener who signed up by its due time, if it is not written yet;
    the scheduler writes each wave WAVE_AHEAD_SECONDS early, so a wave due sooner than that
    may already be written without them.
    """
    offsets = forum.reminder_offsets or []
    if not offsets or forum.status_at(now) != ForumStatus.OPEN or forum.starts_at <= now:
        return False, None
    ahead = timedelta(seconds=current_app.config["WAVE_AHEAD_SECONDS"])
    # The busiest write asks the database only near the last wave: one due later than the
    # scheduler looks ahead (with a minute for clocks that differ) is not written yet.
    last_due = forum.starts_at - timedelta(seconds=min(offsets))
    if last_due - now > ahead + CLOCK_MARGIN:
        return True, None
    written = set(
        db.session.scalars(
            sa.select(ReminderWave.offset_seconds).where(
                ReminderWave.forum_id == forum.id, ReminderWave.starts_at == forum.starts_at
            )
        )
    )
    if any(
        offset not in written and forum.starts_at - timedelta(seconds=offset) - now > ahead
        for offset in offsets
    ):
        return True, None
    if forum.starts_at - now < CATCH_UP_MIN_LEAD:
        return False, None
    return True, min(offsets)


def confirmation(signup: Signup, now: datetime) -> bool:
    """Confirm a new signup (once per signup), and write its catch-up reminder if no wave
    will reach it (``reminder_coming``). The confirmation promises a reminder only then.

    The catch-up is a reminder keyed like the wave it makes up for: should that wave be
    written with this listener after all, the key lets only one of the two exist.
    """
    forum = signup.forum
    coming, catch_up = reminder_coming(forum, now)
    text = body(
        MessageKind.CONFIRMATION,
        forum,
        signup.timezone,
        now,
        language=signup.reads_in,
        reminder=coming,
    )
    sent = _enqueue_one(signup, MessageKind.CONFIRMATION, "", text, now)
    if sent and catch_up is not None:
        due = forum.starts_at - CATCH_UP_BEFORE
        reminder = body(MessageKind.REMINDER, forum, signup.timezone, due, language=signup.reads_in)
        key = wave_key(catch_up, forum.starts_at)
        _enqueue_one(signup, MessageKind.REMINDER, key, reminder, now, send_at=due)
    return sent


def link_signup(phone: str, now: datetime) -> Signup | None:
    """Return the signup a LINK from ``phone`` is about: the number's most recent one whose
    forum has not ended, neither withdrawn nor rejected, nor erased; None when there is none.
    """
    return db.session.scalars(
        sa.select(Signup)
        .join(Forum, Forum.id == Signup.forum_id)
        .where(
            Signup.phone == phone,
            Signup.status.in_(SIGNUP_REACHABLE),
            Signup.manage_token_hash.is_not(None),
            Forum.status.in_(FORUM_ACTIVE),
            Forum.ends_at > now,
        )
        .order_by(Signup.created_at.desc(), Signup.id.desc())
        .limit(1)
    ).first()


def private_link(signup: Signup, now: datetime) -> bool:
    """Text a listener who asked for it (LINK) their private link; say whether one was written.

    At most one a day per signup (keyed by the day), never to a number that opted out. It
    goes whatever the signup's SMS consent: the listener asked for this one text. The body
    holds ``links.PLACEHOLDER``, filled in as it is sent, like every private link.
    """
    if signup.phone is None:
        return False
    text = body(MessageKind.LINK, signup.forum, signup.timezone, now, language=signup.reads_in)
    return enqueue(
        signup.phone,
        MessageKind.LINK,
        f"{now:%Y-%m-%d}",
        text,
        now,
        forum_id=signup.forum_id,
        signup_id=signup.id,
    )


def goodbye(signup: Signup, now: datetime) -> bool:
    """Thank a caller the forum closed on before their turn (once per signup)."""
    text = body(
        MessageKind.GOODBYE,
        signup.forum,
        signup.timezone,
        now,
        language=signup.reads_in,
        forum_url=forum_url(signup.forum),
    )
    return _enqueue_one(signup, MessageKind.GOODBYE, "", text, now)


def notify_head(forum: Forum, now: datetime) -> int:
    """Text whoever is first in a live forum's queue that they are next (once each).

    One statement: the head is found inside the INSERT … SELECT.
    """
    if forum.status_at(now) != ForumStatus.LIVE:
        return 0
    head_key = (
        sa.select(sa.func.min(Signup.queue_key))
        .where(Signup.forum_id == forum.id)
        .scalar_subquery()
    )
    return _fan_out(
        forum,
        MessageKind.NEXT_UP,
        "",
        now,
        send_at=now,
        extra=[Signup.queue_key == head_key],
    )


def next_up_write(forum: Forum, signup: Signup, now: datetime) -> Write | None:
    """Text ``signup``, already read as the new head of a live forum's queue, that they
    are next (once each, as ``notify_head``): the INSERT … RETURNING id and its parameters,
    not yet run (None: the forum not live or the listener without a number).

    One statement: the listener's zone and language are known, so there is no query for
    the group, and the ids come back from the INSERT (the undo log keeps them).
    """
    if forum.status_at(now) != ForumStatus.LIVE or signup.phone is None:
        return None
    # The group as _PREFIX reads it in SQL: the number's first four characters, only
    # when the zone is unknown.
    prefix = signup.phone[:4] if signup.timezone is None else None
    group = _Group(signup.timezone, prefix, signup.language)
    params = {
        "n_forum": forum.id,
        "n_signup": signup.id,
        "n_zone": group.zone,
        "n_prefix": group.prefix,
        "n_language": group.language,
        "n_body": body(MessageKind.NEXT_UP, forum, group.zone, now, language=group.language),
        "n_now": now,
    }
    return Write(_notify_next_statement(*group.known()), params)


# The INSERT … SELECT of ``next_up_write``, built once per dialect and shape of the group
# (which of zone, prefix and language are known) with bind parameters: what
# ``_fan_out_statement`` builds for one group, where only that group's body can apply.
# Built anew for every "next", it and its cache key cost more CPU than its execution.
@per_dialect
def _notify_next_statement(zone: bool, prefix: bool, language: bool) -> Any:
    def same(column: Any, known: bool, name: str) -> sa.ColumnElement[bool]:
        found: sa.ColumnElement[bool] = (
            column == sa.bindparam(name, type_=sa.String) if known else column.is_(None)
        )
        return found

    forum_id = sa.bindparam("n_forum", type_=sa.Integer)
    now = sa.bindparam("n_now", type_=Message.created_at.type)
    select = sa.select(
        forum_id,
        Signup.id,
        sa.literal(MessageKind.NEXT_UP.value),
        sa.literal(""),
        Signup.phone,
        sa.bindparam("n_body", type_=sa.String),
        sa.bindparam("n_now", type_=Message.send_at.type),
        sa.literal(MessageStatus.PENDING.value),
        sa.literal(0),
        now,
        sa.bindparam("n_now", type_=Message.updated_at.type),
    ).where(
        Signup.forum_id == forum_id,
        Signup.sms_consent.is_(True),
        Signup.status.in_(SIGNUP_REACHABLE),
        Signup.phone.is_not(None),
        not_opted_out(),
        Signup.id == sa.bindparam("n_signup", type_=sa.Integer),
        same(Signup.timezone, zone, "n_zone"),
        same(_PREFIX, prefix, "n_prefix"),
        same(Signup.language, language, "n_language"),
    )
    return (
        upsert_insert(Message.__table__)
        .from_select(COLUMNS, select)
        .on_conflict_do_nothing(index_elements=["signup_id", "kind", "key"])
        .returning(Message.__table__.c.id)
    )


@dataclass(frozen=True)
class _Group:
    """Listeners of one wave who get the same body at the same time.

    ``zone`` and ``language`` shape the body; ``prefix`` (the number's first characters,
    only when the zone is unknown) says which country's day quiet hours are read in.
    """

    zone: str | None
    prefix: str | None
    language: str | None

    def known(self) -> tuple[bool, bool, bool]:
        """Which of zone, prefix and language are known (the shape of ``condition``)."""
        return self.zone is not None, self.prefix is not None, self.language is not None

    def condition(self) -> sa.ColumnElement[bool]:
        def same(column: Any, value: str | None) -> sa.ColumnElement[bool]:
            found: sa.ColumnElement[bool] = column.is_(None) if value is None else column == value
            return found

        return sa.and_(
            same(Signup.timezone, self.zone),
            same(_PREFIX, self.prefix),
            same(Signup.language, self.language),
        )


# The number's country code (at most three digits after "+"), read only for listeners
# whose zone is unknown: the one thing about them quiet hours still need.
_PREFIX: sa.ColumnElement[str] = sa.case(
    (Signup.timezone.is_(None), sa.func.substr(Signup.phone, 1, 4)), else_=sa.null()
)


def _eligible(forum: Forum, extra: list[sa.ColumnElement[bool]] | None) -> list[Any]:
    return [
        Signup.forum_id == forum.id,
        Signup.sms_consent.is_(True),
        Signup.status.in_(SIGNUP_REACHABLE),
        Signup.phone.is_not(None),
        not_opted_out(),
        *(extra or []),
    ]


def _groups(eligible: list[Any]) -> list[_Group]:
    rows = db.session.execute(
        sa.select(Signup.timezone, _PREFIX, Signup.language).where(*eligible).distinct()
    ).all()
    return [_Group(*row) for row in rows]


def _fan_out(
    forum: Forum,
    kind: MessageKind,
    key: str,
    now: datetime,
    send_at: datetime | Callable[[_Group], datetime],
    extra: list[sa.ColumnElement[bool]] | None = None,
    *,
    groups: list[_Group] | None = None,
    signed_up_by: Callable[[_Group], datetime] | None = None,
) -> int:
    """Insert one message of ``kind`` for every reachable listener (``_fan_out_statement``)."""
    stmt = _fan_out_statement(
        forum, kind, key, now, send_at, extra, groups=groups, signed_up_by=signed_up_by
    )
    return changed(stmt) if stmt is not None else 0


def _fan_out_statement(
    forum: Forum,
    kind: MessageKind,
    key: str,
    now: datetime,
    send_at: datetime | Callable[[_Group], datetime],
    extra: list[sa.ColumnElement[bool]] | None = None,
    *,
    groups: list[_Group] | None = None,
    signed_up_by: Callable[[_Group], datetime] | None = None,
) -> Any:
    """Build the one statement that writes a message of ``kind`` to every reachable listener.

    Bodies differ by the listener's zone and language only, and send times (quiet hours)
    by their zone, so the statement carries a CASE over the forum's distinct groups: still
    one INSERT … SELECT, however many listeners. ``send_at`` is one time, or a time per
    group; ``groups`` limits the statement to those groups (by default every group, and a
    listener of a group that appeared since gets the default body and time).
    ``signed_up_by``: only listeners who had signed up by their group's time (a reminder's
    offset already past when someone signed up is not theirs). None: nobody to write to.
    The bodies are made here, before the caller takes any lock.
    """
    eligible = _eligible(forum, extra)
    limited = groups is not None
    if groups is None:
        groups = _groups(eligible)
    if not groups:
        return None
    texts: list[tuple[sa.ColumnElement[bool], Any]] = []
    times: list[tuple[sa.ColumnElement[bool], Any]] = []
    for group in groups:
        condition = group.condition()
        texts.append(
            (condition, sa.literal(body(kind, forum, group.zone, now, language=group.language)))
        )
        if callable(send_at):
            times.append((condition, sa.literal(send_at(group), type_=Message.send_at.type)))
    when: Any = (
        sa.case(*times, else_=sa.literal(now, type_=Message.send_at.type))
        if callable(send_at)
        else sa.literal(send_at, type_=Message.send_at.type)
    )
    select = sa.select(
        sa.literal(forum.id),
        Signup.id,
        sa.literal(kind.value),
        sa.literal(key),
        Signup.phone,
        sa.case(*texts, else_=sa.literal(body(kind, forum, None, now, language=None))),
        when,
        sa.literal(MessageStatus.PENDING.value),
        sa.literal(0),
        sa.literal(now, type_=Message.created_at.type),
        sa.literal(now, type_=Message.updated_at.type),
    ).where(*eligible)
    if limited:
        select = select.where(sa.or_(*(group.condition() for group in groups)))
    if signed_up_by is not None:
        cutoffs = {group: signed_up_by(group) for group in groups}
        select = select.where(
            Signup.created_at
            <= sa.case(
                *(
                    (group.condition(), sa.literal(at, type_=Signup.created_at.type))
                    for group, at in cutoffs.items()
                ),
                else_=sa.literal(min(cutoffs.values()), type_=Signup.created_at.type),
            )
        )
    return (
        upsert_insert(Message.__table__)
        .from_select(COLUMNS, select)
        .on_conflict_do_nothing(index_elements=["signup_id", "kind", "key"])
        # SQLAlchemy reports an INSERT's rowcount only when asked to.
        .execution_options(preserve_rowcount=True)
    )


def wave_key(offset: int, starts_at: datetime) -> str:
    return f"{offset}@{int(starts_at.timestamp())}"


def due_waves(now: datetime, ahead: timedelta) -> list[tuple[Forum, int, datetime]]:
    """Return (forum, offset, due time) of reminder waves due by ``now + ahead``, not done.

    Of several overdue waves of one forum (the workers were down), only the latest is
    returned; the others are superseded: sending "in 24 hours" and "in 1 hour" together
    would be noise.
    """
    forums = db.session.scalars(
        # A forum that went live before its announced start still reminds its listeners
        # of that start: going live early never loses a reminder.
        sa.select(Forum).where(
            Forum.status.in_([ForumStatus.OPEN, ForumStatus.LIVE]), Forum.starts_at > now
        )
    ).all()
    waves: list[tuple[Forum, int, datetime]] = []
    for forum in forums:
        done = set(
            db.session.scalars(
                sa.select(ReminderWave.offset_seconds).where(
                    ReminderWave.forum_id == forum.id,
                    ReminderWave.starts_at == forum.starts_at,
                )
            )
        )
        pending = sorted(
            (
                (forum.starts_at - timedelta(seconds=offset), offset)
                for offset in forum.reminder_offsets
                if offset not in done
            ),
        )
        due = [(at, offset) for at, offset in pending if at <= now + ahead]
        overdue = [(at, offset) for at, offset in due if at <= now]
        for at, offset in overdue[:-1]:
            _record_wave(forum, offset, at, now, count=0, skipped=True)
        keep = overdue[-1:] + [(at, o) for at, o in due if at > now]
        waves.extend((forum, offset, at) for at, offset in keep)
    return waves


def _record_wave(
    forum: Forum, offset: int, due: datetime, now: datetime, *, count: int, skipped: bool = False
) -> bool:
    stmt = (
        upsert_insert(ReminderWave)
        .values(
            forum_id=forum.id,
            offset_seconds=offset,
            starts_at=forum.starts_at,
            due_at=due,
            fanned_out_at=now,
            messages=count,
            skipped=skipped,
        )
        .on_conflict_do_nothing(index_elements=["forum_id", "offset_seconds", "starts_at"])
        .returning(ReminderWave.id)
    )
    return db.session.scalar(stmt) is not None


def _reminder_times(forum: Forum, offset: int, due: datetime) -> Callable[[_Group], datetime]:
    """When each group's reminder of a wave leaves: at ``due``, or out of quiet hours."""
    window = quiet.window() if quiet.applies(forum, offset) else None

    def send_at(group: _Group) -> datetime:
        zone = quiet.listener_zone(group.zone, group.prefix, forum.timezone)
        return quiet.moved(due, zone, window) or due

    return send_at


def fan_out_wave(forum: Forum, offset: int, due: datetime, now: datetime) -> int:
    """Write the reminders of one wave (idempotent); return how many were new.

    Listeners who signed up after their send time (the wave's due time, or the earlier
    time quiet hours moved theirs to) get no reminder for it: that offset was already
    past for them. Rows ``fan_out_early`` wrote are kept as they are.
    """
    times = _reminder_times(forum, offset, due)
    # Bodies first, then the wave's row: on SQLite that row takes the write lock, which
    # senders wait on.
    stmt = _fan_out_statement(
        forum,
        MessageKind.REMINDER,
        wave_key(offset, forum.starts_at),
        now,
        send_at=lambda group: max(times(group), now),
        signed_up_by=times,
    )
    if not _record_wave(forum, offset, due, now, count=0):
        return 0
    count = changed(stmt) if stmt is not None else 0
    db.session.execute(
        sa.update(ReminderWave)
        .where(
            ReminderWave.forum_id == forum.id,
            ReminderWave.offset_seconds == offset,
            ReminderWave.starts_at == forum.starts_at,
        )
        .values(messages=sa.func.coalesce(ReminderWave.messages, 0) + count)
    )
    return count


# A moved reminder is written from a little before its send time until a little after:
# the later passes pick up listeners whose signup committed as the earlier one ran.
EARLY_GRACE = timedelta(minutes=5)


def fan_out_early(now: datetime, ahead: timedelta) -> int:
    """Write the reminders quiet hours move before their wave's due time; return how many.

    Only the groups whose moved time is near (within ``ahead``, or just past) are
    written; everyone else waits for the wave itself (``fan_out_wave``), which leaves
    these rows alone (same key).
    """
    lead = quiet.lead()
    if not lead:
        return 0
    forums = db.session.scalars(
        sa.select(Forum).where(
            Forum.status == ForumStatus.OPEN,
            Forum.starts_at > now + ahead,
        )
    ).all()
    written = 0
    for forum in forums:
        done = set(
            db.session.scalars(
                sa.select(ReminderWave.offset_seconds).where(
                    ReminderWave.forum_id == forum.id,
                    ReminderWave.starts_at == forum.starts_at,
                )
            )
        )
        for offset in forum.reminder_offsets:
            due = forum.starts_at - timedelta(seconds=offset)
            if offset in done or not quiet.applies(forum, offset):
                continue
            if not (now + ahead < due <= now + ahead + lead):
                continue
            times = _reminder_times(forum, offset, due)
            ready = [
                group
                for group in _groups(_eligible(forum, None))
                if now - EARLY_GRACE <= times(group) <= now + ahead and times(group) < due
            ]
            if ready:
                written += _fan_out(
                    forum,
                    MessageKind.REMINDER,
                    wave_key(offset, forum.starts_at),
                    now,
                    send_at=times,
                    groups=ready,
                    signed_up_by=times,
                )
    return written


def cancel_pending(*conditions: sa.ColumnElement[bool], now: datetime, reason: str) -> int:
    """Cancel messages not yet handed to the provider that match ``conditions``."""
    return changed(
        sa.update(Message)
        .where(Message.status == MessageStatus.PENDING, *conditions)
        .values(status=MessageStatus.CANCELLED, error_message=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def forum_moved(forum: Forum, now: datetime) -> int:
    """Drop reminders for the old time and tell every registrant the new time, once."""
    cancel_pending(
        Message.forum_id == forum.id,
        Message.kind == MessageKind.REMINDER,
        now=now,
        reason="forum moved",
    )
    # Keyed by the move itself: moving back to a time used before is news again.
    key = f"{int(forum.starts_at.timestamp())}@{now.timestamp():.6f}"
    return _fan_out(forum, MessageKind.RESCHEDULED, key, now, send_at=now)


def forum_closed(forum: Forum, now: datetime) -> int:
    """Tell approved and queued listeners the forum closed before they were reached (once).

    Call it before the queue is dropped. Listeners waiting on the line get the goodbye
    (``live.dispatch.forum_over``) instead: one text each, never both.
    """
    goodbye = sa.exists().where(Message.signup_id == Signup.id, Message.kind == MessageKind.GOODBYE)
    return _fan_out(
        forum,
        MessageKind.CLOSED,
        "",
        now,
        send_at=now,
        extra=[Signup.status.in_([SignupStatus.APPROVED, SignupStatus.QUEUED]), ~goodbye],
    )


def forum_cancelled(forum: Forum, now: datetime) -> int:
    """Drop pending messages and tell every registrant the forum is cancelled."""
    cancel_pending(Message.forum_id == forum.id, now=now, reason="forum cancelled")
    return _fan_out(forum, MessageKind.CANCELLED, "", now, send_at=now)


def signup_stopped(signup: Signup, now: datetime, reason: str) -> int:
    """Withdrawn or rejected: nothing more goes to this signup."""
    return cancel_pending(Message.signup_id == signup.id, now=now, reason=reason)


def opt_out(phone: str, now: datetime, source: str = "keyword", *, word: str = "") -> None:
    """Record that ``phone`` wants no texts, and drop everything pending to it.

    ``source`` is ``keyword`` (``word`` is what the listener texted) or ``twilio`` (Twilio
    refused a send with 21610); the consent ledger records the withdrawal either way.
    """
    stmt = (
        upsert_insert(OptOut)
        .values(phone=phone, opted_out_at=now, source=source)
        .on_conflict_do_nothing(index_elements=["phone"])
    )
    db.session.execute(stmt)
    cancel_pending(Message.to == phone, now=now, reason="opted out")
    if source == "twilio":
        consents.record_number(
            phone, False, ConsentMethod.PROVIDER, "sms.stop.v1", detail=str(OPTED_OUT)
        )
    else:
        consents.record_number(phone, False, ConsentMethod.SMS_KEYWORD, "sms.stop.v1", detail=word)


def opt_in(phone: str, *, word: str = "") -> bool:
    """Take ``phone`` off the opt-out list (START and its kin); the ledger records it."""
    consents.record_number(phone, True, ConsentMethod.SMS_KEYWORD, "sms.start.v1", detail=word)
    return (changed(sa.delete(OptOut).where(OptOut.phone == phone))) > 0


def log(
    forum: Forum, *, kind: str | None, status: str | None, limit: int, offset: int
) -> tuple[list[Message], int]:
    """Return a page of a forum's messages, newest first, and how many match."""
    conditions: list[Any] = [Message.forum_id == forum.id]
    if kind:
        conditions.append(Message.kind == kind)
    if status:
        conditions.append(Message.status == status)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(Message).where(*conditions))
    rows = db.session.scalars(
        sa.select(Message)
        .where(*conditions)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total or 0
