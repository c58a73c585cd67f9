"""Worker processes for real: killed mid-wave, restarted, two at once.

Each test runs `phonein worker` as a subprocess against the test database and the fake
Twilio, and counts what the fake received. Every loop is bounded in time.
"""

from __future__ import annotations

import collections
import random
import signal
import time

import pytest
import sqlalchemy as sa

from phonein.extensions import db
from phonein.models import Lease, Message

from .fake_twilio import FakeTwilio
from .processes import outbox_settled, start_worker, stop, wait_for, wave_forum, worker_env


def test_a_worker_killed_mid_wave_sends_each_reminder_exactly_once(make_app, schema):
    app = make_app()
    with app.app_context():
        _, phones = wave_forum(due_in=1, listeners=2000)
    rng = random.Random(2026)
    with FakeTwilio() as fake:
        env = worker_env(schema, fake, SMS_RATE=400, SENDER_THREADS=16)
        process = start_worker(env)
        try:
            for _ in range(4):  # kill it at random moments while the wave goes out
                time.sleep(rng.uniform(0.8, 2.0))
                process.send_signal(signal.SIGKILL)
                stop(process)
                process = start_worker(env)
            wait_for(
                lambda: len({m["to"] for m in fake.messages}) >= 2000 and outbox_settled(app),
                90,
                "the wave to finish",
            )
        finally:
            stop(process)
        per_number = collections.Counter(m["to"] for m in fake.messages)
        assert len(per_number) == 2000
        assert set(per_number) == set(phones)
        duplicates = {n: c for n, c in per_number.items() if c > 1}
        assert not duplicates, f"{len(duplicates)} listeners got a reminder twice"
        with app.app_context():
            reminders = collections.Counter(
                db.session.scalars(sa.select(Message.status).where(Message.kind == "reminder"))
            )
        assert reminders == {"queued": 2000}


def test_a_reminder_due_while_no_worker_ran_leaves_at_the_first_tick_after_restart(
    make_app, schema
):
    app = make_app()
    with app.app_context():
        _, [phone] = wave_forum(due_in=-3, listeners=1)  # fell due 3 s ago: nobody was up
        # Nobody was up for a while: no lease is held (a worker of an earlier test may have
        # left one that has not yet expired, and the first tick would then find it held).
        db.session.execute(sa.delete(Lease))
        db.session.commit()
    with FakeTwilio() as fake:
        # The next tick would come a minute after the first: a reminder that arrives within
        # the wait below went out with the tick the worker runs as it starts, not a period
        # later (a fact about ticks, not about how fast this machine is).
        process = start_worker(worker_env(schema, fake, TICK_SECONDS=60))
        try:
            wait_for(lambda: fake.sent_to(phone), 30, "the overdue reminder")
        finally:
            stop(process)
        [message] = fake.sent_to(phone)
        assert message["body"].startswith("Reminder:")


@pytest.mark.postgres
def test_two_workers_share_the_work_and_the_rate(make_app, schema):
    app = make_app()
    with app.app_context():
        _, phones = wave_forum(due_in=1, listeners=300)
    with FakeTwilio() as fake:
        env = worker_env(schema, fake, SMS_RATE=50, SENDER_THREADS=8)
        first, second = start_worker(env), start_worker(env)
        try:
            wait_for(lambda: len(fake.messages) >= 300 and outbox_settled(app), 60, "300 reminders")
        finally:
            stop(first)
            stop(second)
        assert collections.Counter(m["to"] for m in fake.messages) == {p: 1 for p in phones}
        times = sorted(fake.created_times())
        busiest = max(sum(1 for t in times if start <= t < start + 1) for start in times)
        assert busiest <= 50
        with app.app_context():
            senders = set(db.session.scalars(sa.select(Message.claimed_by)))
        assert len(senders) == 2, "both workers sent"
