"""The background work: the scheduler's ticks, the SMS sender, and starting and stopping them.

The ticks: forum status changes, the switchboard's pending requests, reminder waves,
recovery of sends a dead worker left, the nightly purge.

Any number of processes may run a scheduler; a lease in the database lets one of them do
the ticks at a time, and another takes over when its lease expires. The ticks are
idempotent, so a tick run twice (a lease lost mid-tick) changes nothing.

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
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from apscheduler.schedulers.base import BaseScheduler
from flask import Flask

from . import forums, signups
from .database import changed, commit, upsert_insert
from .extensions import db
from .live import dispatch as calls_dispatch
from .models import Lease
from .sms import dispatch as sms_dispatch
from .sms import outbox
from .times import utcnow

log = logging.getLogger("phonein.worker")

LEASE = "scheduler"


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the scheduler lease for ``holder``; return whether it holds it."""
    table = Lease.__table__
    renewed = changed(
        sa.update(table)
        .where(table.c.name == LEASE, sa.or_(table.c.holder == holder, table.c.expires_at < now))
        .values(holder=holder, expires_at=now + ttl)
    )
    if not renewed:
        inserted = changed(
            upsert_insert(table)
            .values(name=LEASE, holder=holder, expires_at=now + ttl)
            .on_conflict_do_nothing(index_elements=["name"])
            .execution_options(preserve_rowcount=True)
        )
        renewed = inserted
    db.session.commit()
    return bool(renewed)


def release(holder: str) -> None:
    db.session.execute(sa.delete(Lease).where(Lease.name == LEASE, Lease.holder == holder))
    db.session.commit()


def tick(app: Flask, holder: str) -> dict[str, int]:
    """One scheduler tick, if this process holds the lease."""
    with app.app_context():
        now = utcnow()
        if not acquire(holder, now, timedelta(seconds=app.config["LEASE_SECONDS"])):
            return {}
        changed = forums.sync_statuses(now)
        calls_dispatch.retry_stale(now)
        commit()
        # Calls first: a caller waiting to go on air cannot wait for a wave of reminders.
        calls_dispatch.apply_pending()
        fanned = 0
        ahead = timedelta(seconds=app.config["WAVE_AHEAD_SECONDS"])
        for forum, offset, due in outbox.due_waves(now, ahead):
            fanned += outbox.fan_out_wave(forum, offset, due, now)
            commit()
            # A big wave takes seconds: renew before the next, or another worker could
            # take the lease and repeat (harmlessly, but twice) what this one is doing.
            if not acquire(holder, utcnow(), timedelta(seconds=app.config["LEASE_SECONDS"])):
                break
        if fanned:
            log.info("reminder waves: %d messages ready", fanned)
        return {"forums": changed, "reminders": fanned}


def recover(app: Flask, holder: str) -> int:
    with app.app_context():
        now = utcnow()
        if not acquire(holder, now, timedelta(seconds=app.config["LEASE_SECONDS"])):
            return 0
        return sms_dispatch.recover(app, now, timedelta(seconds=app.config["WORKER_DEAD_SECONDS"]))


def purge(app: Flask, holder: str) -> int:
    with app.app_context():
        days = app.config.get("PURGE_AFTER_DAYS")
        now = utcnow()
        if not days or not acquire(holder, now, timedelta(seconds=app.config["LEASE_SECONDS"])):
            return 0
        count = signups.purge(now, int(days))
        commit()
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
    sender = sms_dispatch.Sender(app, holder, threads=threads)
    add_jobs(scheduler, app, holder)
    sender.start()

    def stop() -> None:
        if scheduler.running:
            scheduler.shutdown(wait=True)  # let a running tick finish its transaction
        sender.close()
        with app.app_context():
            release(holder)

    return stop
