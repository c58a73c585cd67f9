"""Hand outbox messages to the SMS provider: claim, re-check, rate-limit, send, record.

Guarantees, and how:
- Sent only after the cause committed: senders read committed ``pending`` rows.
- Never two senders on one message: a claim is an UPDATE of ``pending`` rows picked with
  ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite has one writer at a time), committed
  before the provider is called. Every claim adds one to ``attempts``: the claim's
  fencing number.
- Never sent by a sender that lost its claim (paused, cut off, slow): just before the
  send it confirms the claim with a conditional UPDATE (still ``sending``, the same
  fencing number, still its own), and it sends only within ``SEND_WINDOW`` of that
  confirmation by its monotonic clock, which runs on while a process is paused.
  Recovery leaves a confirmed send alone for ``IN_FLIGHT`` (the window, plus Twilio's
  timeout for a request already on its way), then asks Twilio before sending again. What
  no check can close: a process paused after its last check while writing the request
  (Twilio takes no fencing token); the window for that is the SDK's own code, not a
  database round trip.
- Never to someone who withdrew, was rejected or opted out (``cancelled``), and never
  once it stopped being useful (``expired``): re-checked at claim time and again just
  before the send.
- At most ``SMS_RATE`` a second across every process: ``sms.rate``. The database work
  before a send runs before its slot is taken (or ahead of a far-off slot), and the slot
  is checked again just before the send: a send that a stall made late takes another.
- Retryable failures (429, 5xx, no answer) go back to ``pending`` with capped backoff for
  as long as the text is useful, then it expires; only permanent errors fail; 21610
  records an opt-out. Every hand-back follows a claim, so each counts an attempt, and
  expiry (at most ``wanted.MAX_AGE``) bounds them all.
- Every time that decides something (due, claimed when, alive) is the database's
  (``database.now``), passed in by the worker.
- A claim left by a dead sender (no heartbeat) is reconciled with the provider's message
  list before it is sent again: a message Twilio already has is recorded, not resent. A
  sender that cannot reach the database to hand a claim back keeps trying until it can.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Flask

from .. import database, links
from ..database import changed
from ..extensions import db
from ..models import (
    Message,
    MessageKind,
    MessageStatus,
)
from ..twilio import OPTED_OUT, TIMEOUT_SECONDS, TwilioFailure
from . import backends, outbox, rate, status, wanted
from .backends import SendResult, SmsBackend

log = logging.getLogger("phonein.sms")
T = TypeVar("T")

# Retries back off 1, 2, 4 … seconds up to this: after a long outage a text waits at most
# this long to go again, and a failing Twilio is not hammered meanwhile.
BACKOFF_CAP_SECONDS = 30
# A sender sends only this soon after confirming its claim (its own monotonic clock).
SEND_WINDOW = 2.0
# A confirmed send whose sender went quiet is reconciled this long after the
# confirmation: by then any request it made has reached Twilio or timed out.
IN_FLIGHT = timedelta(seconds=SEND_WINDOW + TIMEOUT_SECONDS + 3)
# A claim this old is taken back even from a live worker (a send takes seconds at most;
# the fencing number keeps that worker from sending it afterwards).
STUCK_AFTER = timedelta(minutes=1)
# For a slot too far off to confirm before taking it, the re-check and the confirmation
# are done again this long before it; doubled after each stall, up to a second.
LEAD_SECONDS = 0.1


# Texts that must leave at their moment: they never wait behind confirmations or other
# bulk texts, which a flood of signups (real or not) writes by the hundred. A private
# link asked for (LINK) has a listener waiting for it, like a code; there is at most one
# a day per signup.
FAST_LANE = (MessageKind.REMINDER, MessageKind.NEXT_UP, MessageKind.CODE, MessageKind.LINK)

# What a code text's stored body becomes once the provider has it. Its code (or the link
# that carries one, for a number that signed up again) is a credential for a day at most,
# and nothing after the send reads it: a retry or a reconciliation happens before this
# is recorded. Private links are never stored at all (``links.PLACEHOLDER``).
SENT_CODE_BODY = "[one-time code: removed once sent]"


@dataclass(frozen=True)
class Claimed:
    id: int
    to: str
    body: str
    kind: str
    attempts: int  # the claim's fencing number
    claimed_at: datetime


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_CAP_SECONDS, 2 ** max(0, attempts - 1)))


def claim(
    worker_id: str, now: datetime, limit: int, *, bulk_limit: int | None = None
) -> list[Claimed]:
    """Claim up to ``limit`` messages due by ``now`` for ``worker_id``, drop the unwanted
    and the expired, commit.

    Lanes: the fast lane (reminders, "you're next", codes) is claimed first; bulk texts
    (confirmations and the rest) fill what room is left, at most ``bulk_limit`` of them,
    so that a flood of signups never stands between a reminder and its send.
    """
    table = Message.__table__
    fast = table.c.kind.in_(FAST_LANE)
    claimed = _claim_lane(worker_id, now, limit, fast)
    room = limit - len(claimed)
    if bulk_limit is not None:
        room = min(room, bulk_limit)
    if room > 0:
        claimed += _claim_lane(worker_id, now, room, ~fast)
    unwanted = wanted.unwanted([c.id for c in claimed], now)
    for message_id, (settled, reason) in unwanted.items():
        db.session.execute(
            sa.update(table)
            .where(table.c.id == message_id)
            .values(status=settled, updated_at=now, error_message=reason)
        )
    db.session.commit()
    return [c for c in claimed if c.id not in unwanted]


def _claim_lane(
    worker_id: str, now: datetime, limit: int, lane: sa.ColumnElement[bool]
) -> list[Claimed]:
    """Claim up to ``limit`` due messages of one lane, oldest due first."""
    table = Message.__table__
    due = (
        sa.select(table.c.id)
        .where(table.c.status == MessageStatus.PENDING, table.c.send_at <= now, lane)
        .order_by(table.c.send_at, table.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = db.session.execute(
        sa.update(table)
        .where(table.c.id.in_(due))
        .values(
            status=MessageStatus.SENDING,
            claimed_by=worker_id,
            claimed_at=now,
            sent_at=None,
            attempts=table.c.attempts + 1,
            updated_at=now,
        )
        .returning(table.c.id, table.c.to, table.c.body, table.c.kind, table.c.attempts)
    ).all()
    return [Claimed(r.id, r.to, r.body, r.kind, r.attempts, now) for r in rows]


def _owned(claimed: Claimed, worker_id: str | None) -> sa.ColumnElement[bool]:
    """Match the row only while ``claimed`` is still this claim (the fencing number)."""
    table = Message.__table__
    return sa.and_(
        table.c.id == claimed.id,
        table.c.status == MessageStatus.SENDING,
        table.c.attempts == claimed.attempts,
        table.c.claimed_by.is_(None) if worker_id is None else table.c.claimed_by == worker_id,
    )


def finish(
    claimed: Claimed,
    worker_id: str | None,
    *,
    only_if: sa.ColumnElement[bool] | None = None,
    **values: Any,
) -> bool:
    """Settle a claim if it is still this one (and ``only_if`` holds); say whether it was."""
    table = Message.__table__
    done = changed(
        sa.update(table)
        .where(_owned(claimed, worker_id), only_if if only_if is not None else sa.true())
        .values(updated_at=database.clock(), **values)
    )
    db.session.commit()
    return bool(done)


def record_sent(claimed: Claimed, worker_id: str | None, result: SendResult) -> None:
    """Record the provider's SID and status, and any status that beat it here; a code
    text's body goes (``SENT_CODE_BODY``)."""
    reached: str = status.TWILIO.get(result.status, MessageStatus.QUEUED)
    code: int | None = None
    early = status.take_early(result.sid)
    if early is not None and status.later(reached, early.status):
        reached, code = early.status, early.error_code
    scrubbed: dict[str, Any] = {"body": SENT_CODE_BODY} if claimed.kind == MessageKind.CODE else {}
    finish(
        claimed,
        worker_id,
        status=reached,
        provider_sid=result.sid,
        sent_at=sa.func.coalesce(Message.__table__.c.sent_at, database.clock()),
        error_code=code,
        error_message=None,
        **scrubbed,
    )


def record_failure(claimed: Claimed, worker_id: str | None, error: TwilioFailure) -> None:
    """Retry a retryable failure after a backoff (expiry ends it); fail a permanent one."""
    now = database.now()
    if error.code == OPTED_OUT:
        outbox.opt_out(claimed.to, now, source="twilio")
    if error.retryable:
        finish(
            claimed,
            worker_id,
            status=MessageStatus.PENDING,
            send_at=now + backoff(claimed.attempts),
            sent_at=None,
            error_code=error.code or error.status,
            error_message=str(error)[:500],
        )
    else:
        finish(
            claimed,
            worker_id,
            status=MessageStatus.FAILED,
            error_code=error.code or error.status,
            error_message=str(error)[:500],
        )


def deliver(app: Flask, claimed: Claimed, worker_id: str) -> bool:
    """Send one claimed message at the next free slot and record what happened.

    Whatever fails after the claim (the provider, the recording, a bug, the database),
    the message is never left claimed by a live worker: it is recorded, retried, or
    released to reconciliation, which asks the provider before sending again. Return
    False when even the release failed: the caller must release it later (``release``).
    """
    backend = backends.backend(app)
    with app.app_context():
        try:
            _send_and_record(backend, claimed, worker_id, float(app.config["SMS_RATE"]))
            return True
        except Exception:
            log.exception("SMS %s: unexpected error; handing it to reconciliation", claimed.id)
            db.session.rollback()
            return release(claimed, worker_id)


@dataclass(frozen=True)
class _Turn:
    slot: rate.Slot
    confirmed: float  # monotonic time the confirmation was asked for

    def fresh(self) -> bool:
        return self.slot.on_time() and time.monotonic() - self.confirmed < SEND_WINDOW


def _ready(claimed: Claimed, worker_id: str) -> float | None:
    """Re-check the message and confirm the claim; return the monotonic time of the
    confirmation, or None when the message is not to be sent (no longer wanted, expired,
    or no longer this sender's)."""
    now = database.now()
    unwanted = wanted.unwanted([claimed.id], now).get(claimed.id)
    if unwanted is not None:
        # STOP, a withdrawal or the end of its usefulness came while this waited its turn.
        finish(claimed, worker_id, status=unwanted[0], error_message=unwanted[1])
        return None
    confirmed = time.monotonic()
    if not _confirm(claimed, worker_id):
        log.warning("SMS %s: claim lost before sending (fence %s)", claimed.id, claimed.attempts)
        return None
    return confirmed


def _take_turn(claimed: Claimed, worker_id: str, per_second: float, lead: float) -> _Turn | None:
    """Re-check and confirm, take a send slot, and wait for it.

    The database work comes before the slot is taken, so nothing but a sleep lies between
    the slot and the send. A slot too far off for the confirmation to stay fresh (a low
    rate, many senders) is slept towards, and the work done again ``lead`` before it.
    """
    confirmed = _ready(claimed, worker_id)
    if confirmed is None:
        return None
    slot = rate.take(per_second)
    if slot.at - confirmed > SEND_WINDOW / 2:
        slot.wait(lead=lead)
        confirmed = _ready(claimed, worker_id)
        if confirmed is None:
            return None
    slot.wait()
    return _Turn(slot, confirmed)


def _confirm(claimed: Claimed, worker_id: str) -> bool:
    """Prove the claim is still this sender's, and say a send is starting (``sent_at``)."""
    table = Message.__table__
    confirmed = changed(
        sa.update(table).where(_owned(claimed, worker_id)).values(sent_at=database.clock())
    )
    db.session.commit()
    return bool(confirmed)


def _send_and_record(
    backend: SmsBackend, claimed: Claimed, worker_id: str, per_second: float
) -> None:
    lead = LEAD_SECONDS
    while True:
        turn = _take_turn(claimed, worker_id, per_second, lead)
        if turn is None:
            return
        # Nothing that can stall (a database call) goes between this check and the send:
        # the slot and the claim are proven for this moment only.
        if turn.fresh():
            break
        log.info("SMS %s: a stall made its turn stale; taking another", claimed.id)
        lead = min(1.0, lead * 2)  # a slow database: start the work before the slot earlier
    try:
        result = backend.send(claimed.to, links.fill(claimed.body, claimed.id))
    except TwilioFailure as error:
        if error.status is None:
            # No answer: Twilio may have the message. Look before trying again.
            found = lookup(backend, claimed)
            if found is UNKNOWN:
                release(claimed, worker_id)  # recovery asks again later
                return
            if found is not None:
                record_sent(claimed, worker_id, found)
                return
        # No number in the log: the message's id finds it in the SMS log for producers.
        log.warning("SMS %s failed: %s", claimed.id, links.redact_numbers(str(error)))
        record_failure(claimed, worker_id, error)
        return
    record_sent(claimed, worker_id, result)


def release(claimed: Claimed, worker_id: str) -> bool:
    """Give up a claim whose outcome is unknown, so recovery reconciles it now.

    Recovery takes claims nobody owns; this worker is alive, so without this the message
    would stay "sending" for as long as the worker runs. Return False if the database
    could not be reached: the caller tries again later.
    """
    table = Message.__table__
    try:
        db.session.execute(
            sa.update(table).where(_owned(claimed, worker_id)).values(claimed_by=None)
        )
        db.session.commit()
        return True
    except sa.exc.SQLAlchemyError:
        log.exception("SMS %s: could not release the claim; will try again", claimed.id)
        db.session.rollback()
        return False


UNKNOWN: Any = object()  # the provider could not be asked: neither sent nor not sent


def lookup(backend: SmsBackend, claimed: Claimed) -> Any:
    """Ask the provider for the message: a SendResult, None (not there), or UNKNOWN."""
    try:
        # Look for the text as it was sent: with its private link filled in.
        return backend.find(claimed.to, links.fill(claimed.body, claimed.id), claimed.claimed_at)
    except Exception:  # a failed lookup is not an answer: never resend on it
        log.exception("could not reconcile SMS %s; will ask again", claimed.id)
        return UNKNOWN
