"""Hand outbox messages to the SMS provider: claim, re-check, rate-limit, send, record.

Guarantees, and how:
- Sent only after the cause committed: senders read committed ``pending`` rows.
- Never two senders on one message: a claim is an UPDATE of ``pending`` rows picked with
  ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite has one writer at a time), committed
  before the provider is called.
- Never to someone who withdrew, was rejected or opted out: re-checked at claim time.
- At most ``SMS_RATE`` a second across every process: ``sms.rate``.
- Transient failures (429, 5xx, no answer) go back to ``pending`` with backoff; permanent
  ones fail; 21610 records an opt-out.
- A claim left by a dead sender (no heartbeat) is reconciled with the provider's message
  list before it is sent again: a message Twilio already has is recorded, not resent.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Flask

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
    Worker,
)
from ..times import utcnow
from ..twilio import OPTED_OUT, TwilioFailure
from . import backends, outbox, rate, status
from .backends import SendResult, SmsBackend

log = logging.getLogger("phonein.sms")
T = TypeVar("T")

MAX_ATTEMPTS = 8
BACKOFF_CAP_SECONDS = 300
# A claim this old is stuck whatever its worker says (a send takes seconds at most).
STUCK_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class Claimed:
    id: int
    to: str
    body: str
    kind: str
    attempts: int
    claimed_at: datetime


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_CAP_SECONDS, 2 ** max(0, attempts - 1)))


def claim(worker_id: str, now: datetime, limit: int) -> list[Claimed]:
    """Claim up to ``limit`` due messages for ``worker_id``, drop the ineligible, commit."""
    table = Message.__table__
    due = (
        sa.select(table.c.id)
        .where(table.c.status == MessageStatus.PENDING, table.c.send_at <= now)
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
            attempts=table.c.attempts + 1,
            updated_at=now,
        )
        .returning(table.c.id, table.c.to, table.c.body, table.c.kind, table.c.attempts)
    ).all()
    claimed = [Claimed(r.id, r.to, r.body, r.kind, r.attempts, now) for r in rows]
    stale = _ineligible([c.id for c in claimed])
    if stale:
        db.session.execute(
            sa.update(table)
            .where(table.c.id.in_(list(stale)))
            .values(
                status=MessageStatus.CANCELLED,
                updated_at=now,
                error_message="no longer wanted when its turn came",
            )
        )
    db.session.commit()
    return [c for c in claimed if c.id not in stale]


def _ineligible(ids: list[int]) -> set[int]:
    """Return the messages whose listener withdrew, was rejected, opted out, or whose
    forum was cancelled (but for the cancellation itself), checked now."""
    if not ids:
        return set()
    rows = db.session.execute(
        sa.select(
            Message.id,
            Message.kind,
            Message.key,
            Forum.starts_at,
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
    stale = set()
    for row in rows:
        wanted = (
            row.status is not None
            and row.sms_consent
            and row.opted_out is None
            and (row.status in SIGNUP_REACHABLE)
            and (row.kind != MessageKind.NEXT_UP or row.status == SignupStatus.QUEUED)
            and (row.forum_status != ForumStatus.CANCELLED or row.kind == MessageKind.CANCELLED)
            # A reminder written for a start the forum has since moved from.
            and (
                row.kind != MessageKind.REMINDER
                or row.key.endswith(f"@{int(row.starts_at.timestamp())}")
            )
        )
        if not wanted:
            stale.add(row.id)
    return stale


def _finish(claimed: Claimed, worker_id: str, **values: Any) -> None:
    table = Message.__table__
    db.session.execute(
        sa.update(table)
        .where(
            table.c.id == claimed.id,
            table.c.status == MessageStatus.SENDING,
            table.c.claimed_by == worker_id,
        )
        .values(updated_at=utcnow(), **values)
    )
    db.session.commit()


def record_sent(claimed: Claimed, worker_id: str, result: SendResult) -> None:
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
        sent_at=utcnow(),
        error_code=code,
        error_message=None,
    )


def record_failure(claimed: Claimed, worker_id: str, error: TwilioFailure) -> None:
    now = utcnow()
    if error.code == OPTED_OUT:
        outbox.opt_out(claimed.to, now, source="twilio")
    if error.retryable and claimed.attempts < MAX_ATTEMPTS:
        _finish(
            claimed,
            worker_id,
            status=MessageStatus.PENDING,
            send_at=now + backoff(claimed.attempts),
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


def deliver(app: Flask, claimed: Claimed, worker_id: str) -> None:
    """Send one claimed message at the next free slot and record what happened.

    Whatever fails after the claim (the provider, the recording, a bug), the message is
    never left claimed by a live worker: it is recorded, retried, or released to
    reconciliation, which asks the provider before sending again.
    """
    backend = backends.backend(app)
    with app.app_context():
        try:
            rate.wait_for_slot(float(app.config["SMS_RATE"]))
            if _ineligible([claimed.id]):
                # STOP, a withdrawal or a cancellation arrived while this waited its turn.
                _finish(
                    claimed,
                    worker_id,
                    status=MessageStatus.CANCELLED,
                    error_message="no longer wanted when its turn came",
                )
                return
            _send_and_record(backend, claimed, worker_id)
        except Exception:
            log.exception("SMS %s: unexpected error; handing it to reconciliation", claimed.id)
            db.session.rollback()
            _release(claimed, worker_id)


def _send_and_record(backend: SmsBackend, claimed: Claimed, worker_id: str) -> None:
    try:
        result = backend.send(claimed.to, claimed.body)
    except TwilioFailure as error:
        if error.status is None:
            # No answer: Twilio may have the message. Look before trying again.
            found = _lookup(backend, claimed)
            if found is UNKNOWN:
                _release(claimed, worker_id)  # recovery asks again later
                return
            if found is not None:
                record_sent(claimed, worker_id, found)
                return
        log.warning("SMS %s to %s failed: %s", claimed.id, claimed.to, error)
        record_failure(claimed, worker_id, error)
        return
    record_sent(claimed, worker_id, result)


def _release(claimed: Claimed, worker_id: str) -> None:
    """Give up a claim whose outcome is unknown, so recovery reconciles it now.

    Recovery takes claims nobody owns; this worker is alive, so without this the message
    would stay "sending" for as long as the worker runs.
    """
    table = Message.__table__
    try:
        db.session.execute(
            sa.update(table)
            .where(
                table.c.id == claimed.id,
                table.c.claimed_by == worker_id,
                table.c.status == MessageStatus.SENDING,
            )
            .values(claimed_by=None)
        )
        db.session.commit()
    except sa.exc.SQLAlchemyError:
        log.exception("SMS %s: could not release the claim; recovery will find it", claimed.id)
        db.session.rollback()


UNKNOWN: Any = object()  # the provider could not be asked: neither sent nor not sent


def _lookup(backend: SmsBackend, claimed: Claimed) -> Any:
    """Ask the provider for the message: a SendResult, None (not there), or UNKNOWN."""
    try:
        return backend.find(claimed.to, claimed.body, claimed.claimed_at)
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


def recover(app: Flask, now: datetime, dead_after: timedelta) -> int:
    """Settle claims whose sender stopped beating: reconcile, then record or re-queue."""
    alive = sa.select(Worker.id).where(Worker.heartbeat_at >= now - dead_after)
    rows = db.session.execute(
        sa.select(
            Message.id,
            Message.to,
            Message.body,
            Message.kind,
            Message.attempts,
            Message.claimed_at,
            Message.claimed_by,
        )
        .where(
            Message.status == MessageStatus.SENDING,
            sa.or_(
                sa.and_(
                    sa.or_(Message.claimed_by.is_(None), Message.claimed_by.not_in(alive)),
                    Message.claimed_at < now - dead_after,
                ),
                Message.claimed_at < now - STUCK_AFTER,
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
            _finish(claimed, row.claimed_by, status=MessageStatus.PENDING, send_at=now)
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

    def start(self) -> None:
        self.thread.start()

    def run(self) -> None:
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="phonein-send")
        beat_at = 0.0
        try:
            while not self.stop.is_set():
                if time.monotonic() - beat_at >= 1:
                    self._safely(lambda: heartbeat(self.worker_id, utcnow()))
                    beat_at = time.monotonic()
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
            self._safely(lambda: forget_worker(self.worker_id))

    def _claim(self, room: int) -> list[Claimed]:
        return claim(self.worker_id, utcnow(), room)

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
            deliver(self.app, message, self.worker_id)
        finally:
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
