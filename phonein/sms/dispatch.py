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
  expiry (at most ``outbox.MAX_AGE``) bounds them all.
- Every time that decides something (due, claimed when, alive) is the database's
  (``database.now``), passed in by the worker.
- A claim left by a dead sender (no heartbeat) is reconciled with the provider's message
  list before it is sent again: a message Twilio already has is recorded, not resent. A
  sender that cannot reach the database to hand a claim back keeps trying until it can.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Flask

from .. import database, links
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
    Worker,
)
from ..twilio import OPTED_OUT, TIMEOUT_SECONDS, TwilioFailure
from . import backends, outbox, rate, status
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
NOT_WANTED = "no longer wanted when its turn came"


# Texts that must leave at their moment: they never wait behind confirmations or other
# bulk texts, which a flood of signups (real or not) writes by the hundred.
FAST_LANE = (MessageKind.REMINDER, MessageKind.NEXT_UP, MessageKind.CODE)


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
    unwanted = _unwanted([c.id for c in claimed], now)
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


def _unwanted(ids: list[int], now: datetime) -> dict[int, tuple[MessageStatus, str]]:
    """Return the messages not to send, each with its end and why, checked at ``now``.

    ``cancelled``: the listener withdrew, was rejected or opted out, the forum was
    cancelled (but for the cancellation itself) or moved. ``expired``: its moment passed
    (``outbox.expired_reason``).
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
                and row.sms_consent
                and row.opted_out is None
                and (row.status in SIGNUP_REACHABLE)
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
        reason = outbox.expired_reason(
            row.kind, row.status, row.starts_at, row.ends_at, row.created_at, now
        )
        if reason:
            unwanted[row.id] = (MessageStatus.EXPIRED, reason)
    return unwanted


def _owned(claimed: Claimed, worker_id: str | None) -> sa.ColumnElement[bool]:
    """Match the row only while ``claimed`` is still this claim (the fencing number)."""
    table = Message.__table__
    return sa.and_(
        table.c.id == claimed.id,
        table.c.status == MessageStatus.SENDING,
        table.c.attempts == claimed.attempts,
        table.c.claimed_by.is_(None) if worker_id is None else table.c.claimed_by == worker_id,
    )


def _finish(
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
    """Record the provider's SID and status, and any status that beat it here."""
    reached: str = status.TWILIO.get(result.status, MessageStatus.QUEUED)
    code: int | None = None
    early = status.take_early(result.sid)
    if early is not None and status.later(reached, early.status):
        reached, code = early.status, early.error_code
    _finish(
        claimed,
        worker_id,
        status=reached,
        provider_sid=result.sid,
        sent_at=sa.func.coalesce(Message.__table__.c.sent_at, database.clock()),
        error_code=code,
        error_message=None,
    )


def record_failure(claimed: Claimed, worker_id: str | None, error: TwilioFailure) -> None:
    """Retry a retryable failure after a backoff (expiry ends it); fail a permanent one."""
    now = database.now()
    if error.code == OPTED_OUT:
        outbox.opt_out(claimed.to, now, source="twilio")
    if error.retryable:
        _finish(
            claimed,
            worker_id,
            status=MessageStatus.PENDING,
            send_at=now + backoff(claimed.attempts),
            sent_at=None,
            error_code=error.code or error.status,
            error_message=str(error)[:500],
        )
    else:
        _finish(
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
    unwanted = _unwanted([claimed.id], now).get(claimed.id)
    if unwanted is not None:
        # STOP, a withdrawal or the end of its usefulness came while this waited its turn.
        _finish(claimed, worker_id, status=unwanted[0], error_message=unwanted[1])
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
            found = _lookup(backend, claimed)
            if found is UNKNOWN:
                release(claimed, worker_id)  # recovery asks again later
                return
            if found is not None:
                record_sent(claimed, worker_id, found)
                return
        log.warning("SMS %s to %s failed: %s", claimed.id, claimed.to, error)
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


def _lookup(backend: SmsBackend, claimed: Claimed) -> Any:
    """Ask the provider for the message: a SendResult, None (not there), or UNKNOWN."""
    try:
        # Look for the text as it was sent: with its private link filled in.
        return backend.find(claimed.to, links.fill(claimed.body, claimed.id), claimed.claimed_at)
    except Exception:  # a failed lookup is not an answer: never resend on it
        log.exception("could not reconcile SMS %s; will ask again", claimed.id)
        return UNKNOWN


def heartbeat(worker_id: str, now: datetime) -> None:
    table = Worker.__table__
    updated = changed(sa.update(table).where(table.c.id == worker_id).values(heartbeat_at=now))
    if not updated:
        db.session.execute(sa.insert(table).values(id=worker_id, heartbeat_at=now, started_at=now))
    db.session.commit()


def forget_worker(worker_id: str) -> None:
    db.session.execute(sa.delete(Worker).where(Worker.id == worker_id))
    db.session.commit()


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
        found = _lookup(backend, claimed)
        if found is UNKNOWN:
            continue  # Twilio did not answer: leave it for the next pass
        if found is not None:
            record_sent(claimed, row.claimed_by, found)
        else:
            # Never confirmed: never sent, so it goes again at once; else after a backoff
            # (a send that failed twice in a row is not retried in a tight loop).
            again = now if row.sent_at is None else now + backoff(row.attempts)
            _finish(
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


class Sender:
    """Claim due messages and send them from a thread pool until told to stop."""

    def __init__(self, app: Flask, worker_id: str, *, threads: int = 8, poll: float = 0.05):
        self.app = app
        self.worker_id = worker_id
        self.threads = threads
        self.poll = poll
        self.stop = threading.Event()
        self.free = threading.Semaphore(threads)
        self.thread = threading.Thread(target=self.run, name="phonein-sender", daemon=True)
        # Claims that could not be handed back (the database was away): retried each loop.
        self.unreleased: list[Claimed] = []
        self.lock = threading.Lock()
        # Bulk texts claimed and not yet sent: at most a second's worth at the shared rate,
        # so that a reminder claimed next waits for a second of bulk at most, not for
        # every thread's worth.
        self.bulk_in_flight = 0
        self.bulk_most = max(1, math.ceil(float(app.config["SMS_RATE"])))

    def start(self) -> None:
        self.thread.start()

    def run(self) -> None:
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="phonein-send")
        beat_at = 0.0
        try:
            while not self.stop.is_set():
                if time.monotonic() - beat_at >= 1:
                    self._safely(lambda: heartbeat(self.worker_id, database.now()))
                    beat_at = time.monotonic()
                if self.unreleased:
                    self._safely(self._release_left)
                room = self._room()
                if not room:
                    continue
                claimed = self._safely(functools.partial(self._claim, room)) or []
                for message in claimed:
                    self.free.acquire()
                    pool.submit(self._send, message)
                if not claimed:
                    self.stop.wait(self.poll)
        finally:
            pool.shutdown(wait=True)
            self._safely(self._release_left)
            self._safely(lambda: forget_worker(self.worker_id))

    def _claim(self, room: int) -> list[Claimed]:
        with self.lock:
            bulk_room = max(0, self.bulk_most - self.bulk_in_flight)
        claimed = claim(self.worker_id, database.now(), room, bulk_limit=bulk_room)
        bulk = sum(1 for c in claimed if c.kind not in FAST_LANE)
        with self.lock:
            self.bulk_in_flight += bulk
        return claimed

    def _release_left(self) -> None:
        with self.lock:
            left, self.unreleased = self.unreleased, []
        failed = [c for c in left if not release(c, self.worker_id)]
        if failed:
            with self.lock:
                self.unreleased.extend(failed)
            raise RuntimeError(f"{len(failed)} claims not yet handed back")

    def _room(self) -> int:
        """Count free sending threads, waiting up to one poll for the first."""
        if not self.free.acquire(timeout=self.poll):
            return 0
        room = 1
        while self.free.acquire(blocking=False):
            room += 1
        for _ in range(room):
            self.free.release()
        return room

    def _send(self, message: Claimed) -> None:
        try:
            if not deliver(self.app, message, self.worker_id):
                with self.lock:
                    self.unreleased.append(message)
        finally:
            if message.kind not in FAST_LANE:
                with self.lock:
                    self.bulk_in_flight -= 1
            self.free.release()

    def _safely(self, action: Callable[[], T]) -> T | None:
        """Run ``action`` in an app context; log and carry on if it fails.

        The sender must outlive a database restart or a bug in one message: a dead
        sender thread would silently stop every text.
        """
        with self.app.app_context():
            try:
                return action()
            except Exception:
                log.exception("sender: step failed; retrying")
                db.session.rollback()
                self.stop.wait(max(self.poll, 0.5))
                return None

    def close(self, timeout: float = 30) -> None:
        self.stop.set()
        self.thread.join(timeout)
