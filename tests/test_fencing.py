"""Fencing: a sender or scheduler that lost its claim (paused, skewed, slow) acts on nothing.

The worker tests run real `phonein worker` processes on PostgreSQL against the fake
Twilio (100 ms a send), inject the fault (SIGSTOP/SIGCONT, a clock 30 s off), and count
sends in the fake's own log, not in phonein's tables. Every wait is bounded.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from phonein import database, worker
from phonein.extensions import db
from phonein.live import dispatch as calls_dispatch
from phonein.models import Call, CallCommand, Lease, Message
from phonein.sms import backends, recovery
from phonein.sms import dispatch as sms_dispatch
from phonein.times import utcnow

from .conftest import make_forum, make_signup
from .fake_twilio import FakeTwilio, Faults
from .processes import (
    SKEWED_WORKER,
    outbox_settled,
    start_worker,
    stop,
    wait_for,
    wave_forum,
    worker_env,
)


def start(env: dict[str, str], skew: float = 0.0) -> subprocess.Popen[str]:
    """Start a worker whose clock runs ``skew`` seconds off (0: a plain worker)."""
    if not skew:
        return start_worker(env)
    return start_worker({**env, "PHONEIN_TEST_CLOCK_SKEW": str(skew)}, code=SKEWED_WORKER)


def lease_holder_pid(app: Any) -> int | None:
    with app.app_context():
        holder = db.session.scalar(sa.select(Lease.holder).where(Lease.name == worker.LEASE))
        db.session.rollback()
    return int(holder.split(":")[1]) if holder else None


def claims_of(app: Any, pid: int) -> int:
    with app.app_context():
        count = db.session.scalar(
            sa.select(sa.func.count()).where(
                Message.status == "sending", Message.claimed_by.like(f"%:{pid}:%")
            )
        )
        db.session.rollback()
    return count or 0


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("paused", "seconds"),
    [("holder", 4), ("holder", 18), ("other", 18)],
    ids=["holder-briefly", "holder-past-in-flight", "non-holder"],
)
def test_a_paused_worker_never_sends_what_it_lost(make_app, schema, paused, seconds):
    """SIGSTOP a worker holding claims (and, for the holder, the lease), then SIGCONT.

    4 s: its confirmed sends are still its own when it wakes; 18 s: past IN_FLIGHT, the
    other worker has reconciled and re-sent them. Either way one text per listener.
    """
    app = make_app()
    with app.app_context():
        _, phones = wave_forum(due_in=1, listeners=300)
    with FakeTwilio(faults=Faults(latency=0.1)) as fake:
        env = worker_env(schema, fake, SMS_RATE=40, SENDER_THREADS=8)
        first = start(env)
        wait_for(lambda: lease_holder_pid(app) == first.pid, 20, "the first worker's lease")
        second = start(env)
        victim = first if paused == "holder" else second
        try:
            wait_for(lambda: claims_of(app, victim.pid) >= 4, 30, "claims held by the victim")
            os.kill(victim.pid, signal.SIGSTOP)
            time.sleep(seconds)
            os.kill(victim.pid, signal.SIGCONT)
            wait_for(lambda: len(fake.messages) >= 300 and outbox_settled(app), 90, "300 reminders")
            time.sleep(1)  # anything the woken worker still had in hand has gone by now
        finally:
            for process in (first, second):
                if process.poll() is None:
                    os.kill(process.pid, signal.SIGCONT)
                stop(process)
        per_number = collections.Counter(m["to"] for m in fake.messages)
        twice = {n: c for n, c in per_number.items() if c > 1}
        assert not twice, f"{len(twice)} listeners got their reminder twice"
        assert set(per_number) == set(phones)
        with app.app_context():
            statuses = collections.Counter(
                db.session.scalars(sa.select(Message.status).where(Message.kind == "reminder"))
            )
        assert statuses == {"queued": 300}


@pytest.mark.postgres
@pytest.mark.parametrize("skew", [30.0, -30.0], ids=["fast", "slow"])
def test_a_worker_with_a_skewed_clock_sends_nothing_early_and_nothing_twice(make_app, schema, skew):
    app = make_app()
    with app.app_context():
        forum, phones = wave_forum(due_in=4, listeners=120)
        due = (forum.starts_at - timedelta(hours=1)).timestamp()
    with FakeTwilio(faults=Faults(latency=0.1)) as fake:
        env = worker_env(schema, fake, SMS_RATE=40, SENDER_THREADS=8)
        # The skewed worker starts first and takes the lease: its judgement counts.
        skewed = start(env, skew=skew)
        wait_for(lambda: lease_holder_pid(app) == skewed.pid, 20, "the skewed worker's lease")
        plain = start(env)
        try:
            wait_for(lambda: len(fake.messages) >= 120 and outbox_settled(app), 90, "120 reminders")
        finally:
            stop(skewed)
            stop(plain)
        per_number = collections.Counter(m["to"] for m in fake.messages)
        assert per_number == {p: 1 for p in phones}
        early = [m for m in fake.messages if m["_arrived_wall"] < due]
        assert not early, f"{len(early)} reminders arrived before they were due"
        with app.app_context():
            senders = set(db.session.scalars(sa.select(Message.claimed_by)))
        assert any(f":{skewed.pid}:" in (s or "") for s in senders), "the skewed worker sent"


def test_a_sender_whose_claim_was_taken_over_does_not_send(app):
    listener = make_signup(make_forum())
    [stale] = sms_dispatch.claim("paused-worker", database.now(), 10)
    # The paused worker looked dead: recovery re-queued its claim, another worker took it.
    later = database.now() + timedelta(seconds=30)
    assert recovery.recover(app, later, timedelta(seconds=1)) == 1
    [fresh] = sms_dispatch.claim("live-worker", later, 10)
    assert fresh.attempts == stale.attempts + 1  # the fencing number moved on
    sms_dispatch.deliver(app, stale, "paused-worker")  # wakes: must not send
    sms_dispatch.deliver(app, fresh, "live-worker")
    sent = backends.backend(app).sent  # type: ignore[attr-defined]
    assert [m["to"] for m in sent] == [listener.phone]
    message = db.session.scalars(sa.select(Message)).one()
    db.session.refresh(message)
    assert (message.status, message.claimed_by) == ("sent", "live-worker")


def test_a_released_claim_is_reconciled_at_once_but_a_confirmed_one_waits(app):
    make_signup(make_forum())
    [claimed] = sms_dispatch.claim("quiet-worker", database.now(), 10)
    assert sms_dispatch._confirm(claimed, "quiet-worker")  # it was about to send
    soon = database.now() + timedelta(seconds=3)
    # Its request may still be on the way to Twilio: recovery leaves it alone for now.
    assert recovery.recover(app, soon, timedelta(seconds=1)) == 0
    assert sms_dispatch.release(claimed, "quiet-worker")
    assert recovery.recover(app, soon, timedelta(seconds=1)) == 1
    assert db.session.scalars(sa.select(Message.status)).one() == "pending"


def test_a_scheduler_that_lost_the_lease_writes_nothing(app):
    ttl = timedelta(seconds=5)
    held = worker.acquire("paused-scheduler", utcnow(), ttl)
    assert held is not None and held == worker.acquire("paused-scheduler", utcnow(), ttl)
    # Its lease ran out while it was paused; another scheduler took over.
    db.session.execute(sa.update(Lease).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    taken = worker.acquire("other-scheduler", utcnow(), ttl)
    assert taken is not None and taken.fence == held.fence + 1
    with pytest.raises(worker.LeaseLost):
        held.check()
    db.session.rollback()
    assert worker.tick(app, "paused-scheduler") == {}  # not even a renewal
    taken.check()
    db.session.rollback()


def test_a_switchboard_request_claimed_again_elsewhere_is_not_made_twice(make_app):
    app = make_app(
        VOICE_BACKEND="memory",
        VOICE_STUDIO_NUMBER="+442079460000",
        TWILIO_FROM_NUMBER="+15005550006",
    )
    with app.app_context():
        now = utcnow()
        forum = make_forum(starts_at=now - timedelta(minutes=5), now=now)
        assert calls_dispatch.forum_live(forum, now)
        db.session.commit()
        call_id = db.session.scalars(sa.select(Call.id)).one()
        claimed = calls_dispatch._claim(call_id, database.now())
        assert claimed is not None
        call, fence = claimed
        db.session.refresh(call)
        db.session.expunge(call)  # what the paused process still has in hand
        # It paused; the request was handed back (retry_stale) and another process made it.
        db.session.execute(sa.update(Call).values(applied=None))
        db.session.commit()
        assert calls_dispatch.apply_one(call_id) == 1
        proof = calls_dispatch._Proof(call_id, fence, CallCommand.DIAL)
        with pytest.raises(calls_dispatch.ClaimLost):
            calls_dispatch._act(call, CallCommand.DIAL, now, proof)
        dials = [r for r in app.extensions["phonein_voice"].requests if r[0] == "dial"]
        assert len(dials) == 1


@pytest.mark.postgres
def test_the_jobs_of_one_process_do_not_lock_each_other_out_of_the_lease(app):
    # The tick and the recovery start together in threads of their own. Each acquire
    # skips a lease row locked by another transaction; without one acquire at a time per
    # process, one of the two found its own process's lock and skipped its run.
    import threading

    db.session.execute(sa.delete(Lease))
    db.session.commit()
    for _ in range(50):
        both = threading.Barrier(2)
        got: list[worker.Held | None] = []

        def job(both: threading.Barrier, got: list[worker.Held | None]) -> None:
            with app.app_context():
                both.wait()
                got.append(worker._lease(app, "one-process"))

        threads = [threading.Thread(target=job, args=(both, got)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert len(got) == 2 and None not in got, got
        assert got[0] == got[1]  # the same holder, the same fencing number
