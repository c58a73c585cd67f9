"""The background work: the scheduler's ticks, the SMS sender, and starting and stopping them.

The ticks: forum status changes, the switchboard's pending requests, reminder waves,
recovery of sends a dead worker left, the nightly purge.

Any number of processes may run a scheduler; a lease in the database lets one of them do
the ticks at a time, and another takes over when its lease expires. The lease runs on the
database's clock and carries a fencing number: every transaction of a tick first proves
(``Held.check``) that its process still holds the lease with that number, so a holder
paused past its lease writes nothing when it resumes. The ticks are idempotent besides.

APScheduler keeps no jobs of its own worth persisting: what is due lives in the database
(waves not yet fanned out, pending messages), so work that fell due while every process
was down is found by the first tick after a restart. Ticks therefore run with
``misfire_grace_time=None`` and ``coalesce=True``: late is better than never, once is
enough.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from apscheduler.schedulers.base import BaseScheduler
from flask import Flask

from . import database, forums, privacy, verification
from .database import commit, rollback, upsert_insert
from .extensions import db
from .live import dispatch as calls_dispatch
from .models import Lease
from .sms import outbox, recovery, wanted, webhooks
from .sms.sender import Sender
from .times import utcnow

log = logging.getLogger("phonein.worker")

LEASE = "scheduler"
# Twilio retries a webhook within hours; a replay older than this is not one.
RECEIPTS_KEPT = timedelta(days=2)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseLost(Exception):
    """This process no longer holds the scheduler's lease (another took it over)."""


@dataclass(frozen=True)
class Held:
    """The scheduler's lease as this process holds it: its holder id and fencing number."""

    holder: str
    fence: int

    def check(self) -> None:
        """Prove in the current transaction that the lease is still held; else LeaseLost.

        The lease row stays share-locked until the transaction ends: nobody takes the
        lease over while this transaction's writes are on their way, and a holder that was
        paused past its lease finds another fencing number and writes nothing.
        """
        table = Lease.__table__
        found = db.session.scalar(
            sa.select(table.c.fence)
            .where(
                table.c.name == LEASE,
                table.c.holder == self.holder,
                table.c.fence == self.fence,
                table.c.expires_at > database.clock(),
            )
            .with_for_update(read=True)
        )
        if found is None:
            raise LeaseLost(f"lease {LEASE} no longer held by {self.holder} (fence {self.fence})")


def acquire(holder: str, now: datetime, ttl: timedelta) -> Held | None:
    """Take or renew the scheduler lease for ``holder``, on the database's clock.

    Return it with its fencing number (one more each time it changes hands), or None when
    another process holds it. A lease row locked by its holder's running transaction is
    left alone (SKIP LOCKED): it is not expired while that transaction still writes.
    """
    del now  # the lease runs on the database's clock, whatever this process thinks
    table = Lease.__table__
    takeable = (
        sa.select(table.c.name)
        .where(
            table.c.name == LEASE,
            sa.or_(table.c.holder == holder, table.c.expires_at < database.clock()),
        )
        .with_for_update(skip_locked=True)
    )
    row = db.session.execute(
        sa.update(table)
        .where(table.c.name.in_(takeable))
        .values(
            holder=holder,
            expires_at=database.clock(ttl),
            fence=sa.case((table.c.holder == holder, table.c.fence), else_=table.c.fence + 1),
        )
        .returning(table.c.fence)
    ).first()
    if row is None:
        row = db.session.execute(
            upsert_insert(table)
            .values(name=LEASE, holder=holder, expires_at=database.clock(ttl), fence=1)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(table.c.fence)
        ).first()
    db.session.commit()
    return Held(holder, row.fence) if row is not None else None


def release(holder: str) -> None:
    db.session.execute(sa.delete(Lease).where(Lease.name == LEASE, Lease.holder == holder))
    db.session.commit()


# The tick, the recovery and the purge are jobs of one process, each in a thread of its
# own, and they start together. Two acquires of one holder at once: one finds the lease row
# locked by the other (SKIP LOCKED) and answers "held by another process", so that job
# skipped its run (189 of 200 tries in a test of two threads; at start, the first tick,
# and the overdue reminders waited for the next). One acquire at a time per process.
_acquiring = threading.Lock()


def _lease(app: Flask, holder: str) -> Held | None:
    with _acquiring:
        return acquire(holder, utcnow(), timedelta(seconds=app.config["LEASE_SECONDS"]))


def tick(app: Flask, holder: str) -> dict[str, int]:
    """One scheduler tick, if this process holds the lease; each write checks the lease."""
    with app.app_context():
        held = _lease(app, holder)
        if held is None:
            return {}
        try:
            return _tick(app, held)
        except LeaseLost as lost:
            rollback()
            log.warning("scheduler tick stopped: %s", lost)
            return {}


def _tick(app: Flask, held: Held) -> dict[str, int]:
    held.check()
    now = database.now()
    changed = forums.sync_statuses(now)
    calls_dispatch.retry_stale(now)
    expired = wanted.expire(now)
    commit()
    # Calls first: a caller waiting to go on air cannot wait for a wave of reminders.
    # Each request is claimed and fenced on its own (live.dispatch), not by the lease.
    calls_dispatch.apply_pending()
    fanned = 0
    ahead = timedelta(seconds=app.config["WAVE_AHEAD_SECONDS"])
    held.check()
    waves = outbox.due_waves(now, ahead)
    commit()
    for forum, offset, due in waves:
        held.check()
        fanned += outbox.fan_out_wave(forum, offset, due, now)
        commit()
        # A big wave takes seconds: renew before the next, or another worker could
        # take the lease and repeat (harmlessly, but twice) what this one is doing.
        renewed = _lease(app, held.holder)
        if renewed != held:
            break
    held.check()
    # Reminders quiet hours move to the listener's evening leave before their wave.
    fanned += outbox.fan_out_early(now, ahead)
    commit()
    if fanned:
        log.info("reminder waves: %d messages ready", fanned)
    return {"forums": changed, "reminders": fanned, "expired": expired}


def recover(app: Flask, holder: str) -> int:
    """Settle the claims of senders that let go or died, if this process holds the lease.

    Each hand-back is fenced by the message's own fencing number and judged again on the
    database's clock as it is written (``sms.recovery.recover``).
    """
    with app.app_context():
        if _lease(app, holder) is None:
            return 0
        dead_after = timedelta(seconds=app.config["WORKER_DEAD_SECONDS"])
        return recovery.recover(app, database.now(), dead_after)


def purge(app: Flask, holder: str) -> int:
    """The nightly clean-up: personal data of old forums, and records past their use."""
    with app.app_context():
        days = int(app.config.get("PURGE_AFTER_DAYS") or 0)
        held = _lease(app, holder)
        if held is None:
            return 0
        try:
            held.check()
            now = database.now()
            # Verifications hold a would-be signup's details: kept a day past their expiry.
            verification.forget_old(now)
            webhooks.forget_receipts(now - RECEIPTS_KEPT)
            count = privacy.purge(now, days) if days else 0
            commit()
        except LeaseLost as lost:
            rollback()
            log.warning("nightly purge stopped: %s", lost)
            return 0
        log.info("nightly purge: erased personal data of %d signups", count)
        return count


def add_jobs(scheduler: BaseScheduler, app: Flask, holder: str) -> None:
    """Put phonein's periodic jobs on an APScheduler 3 scheduler."""
    every: dict[str, Any] = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    for job, seconds in ((tick, "TICK_SECONDS"), (recover, "RECOVER_SECONDS")):
        scheduler.add_job(
            job,
            "interval",
            args=(app, holder),
            id=job.__name__,
            seconds=app.config[seconds],
            next_run_time=datetime.now(),
            **every,
        )
    scheduler.add_job(
        purge, "cron", args=(app, holder), id="purge", hour=3, minute=17, timezone="UTC", **every
    )


def start(app: Flask, *, threads: int, scheduler: BaseScheduler) -> Callable[[], None]:
    """Start the SMS sender and put the ticks on ``scheduler``; return what stops both.

    The caller starts the scheduler: ``serve`` runs a background one beside the web
    server, ``worker`` a blocking one in the foreground.
    """
    holder = worker_id()
    sender = Sender(app, holder, threads=threads)
    add_jobs(scheduler, app, holder)
    sender.start()

    def stop() -> None:
        if scheduler.running:
            scheduler.shutdown(wait=True)  # let a running tick finish its transaction
        sender.close()
        with app.app_context():
            release(holder)

    return stop
