"""Worker processes for real: killed mid-wave, restarted, two at once.

Each test runs `phonein worker` as a subprocess against the test database and the fake
Twilio, and counts what the fake received. Every loop is bounded in time.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from phonein.extensions import db
from phonein.models import Forum, Message, Signup
from phonein.times import utcnow

from .conftest import make_forum
from .fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio


def worker_env(database_url: str, fake: FakeTwilio, **extra: Any) -> dict[str, str]:
    env = {
        **os.environ,
        "PHONEIN_DATABASE_URL": database_url,
        "PHONEIN_SECRET_KEY": "worker-test-secret-key-0123456789abcdef",
        "PHONEIN_SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "PHONEIN_TWILIO_API_URL": fake.url,
        "PHONEIN_PUBLIC_URL": "http://phonein.test",
        "PHONEIN_WORKER_DEAD_SECONDS": "1",
        "PHONEIN_LEASE_SECONDS": "2",
        "PHONEIN_RECOVER_SECONDS": "1",
    }
    env.update({f"PHONEIN_{k}": str(v) for k, v in extra.items()})
    return env


def start_worker(env: dict[str, str]) -> subprocess.Popen[str]:
    """Start `phonein worker`; return once it says it is running."""
    process = subprocess.Popen(
        [sys.executable, "-c", "from phonein.cli import main; main()", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    assert process.stderr is not None
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if "phonein worker" in line:
            # Keep reading its log, or a full pipe would block the worker.
            process.log = []  # type: ignore[attr-defined]
            process.drain = threading.Thread(target=_drain, args=(process,), daemon=True)  # type: ignore[attr-defined]
            process.drain.start()  # type: ignore[attr-defined]
            return process
        if not line and process.poll() is not None:
            break
    process.kill()
    output = process.stderr.read()
    process.stderr.close()
    raise AssertionError(f"worker did not start: {output}")


def _drain(process: subprocess.Popen[str]) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        process.log.append(line)  # type: ignore[attr-defined]


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(10)
    process.drain.join(10)  # type: ignore[attr-defined]
    if process.stderr is not None:
        process.stderr.close()


def add_listeners(forum: Forum, count: int, created_at) -> list[str]:  # type: ignore[no-untyped-def]
    """Insert ``count`` consenting signups in one statement; return their numbers."""
    phones = [f"+447400{100000 + i:06d}" for i in range(count)]
    db.session.execute(
        sa.insert(Signup.__table__),
        [
            dict(
                forum_id=forum.id,
                name=f"L{i}",
                location="Leeds",
                phone=phone,
                question="Q",
                sms_consent=True,
                publish_consent=False,
                status="approved",
                published=False,
                timezone="Europe/London",
                created_at=created_at,
                updated_at=created_at,
            )
            for i, phone in enumerate(phones)
        ],
    )
    db.session.commit()
    return phones


def wait_for(condition, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)  # gently: the fake Twilio shares this process
    raise AssertionError(f"timed out waiting for {what}")


def outbox_settled(app) -> bool:  # type: ignore[no-untyped-def]
    with app.app_context():
        left = db.session.scalar(
            sa.select(sa.func.count()).where(Message.status.in_(["pending", "sending"]))
        )
        db.session.rollback()
        return left == 0


def wave_forum(due_in: float, listeners: int):  # type: ignore[no-untyped-def]
    """A forum whose one-hour reminder is due in ``due_in`` seconds, with listeners."""
    now = utcnow()
    forum = make_forum(
        starts_at=now + timedelta(hours=1, seconds=due_in), now=now, reminder_offsets=[3600]
    )
    phones = add_listeners(forum, listeners, now - timedelta(minutes=5))
    return forum, phones


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


def test_a_reminder_due_while_no_worker_ran_leaves_within_two_seconds_of_restart(make_app, schema):
    app = make_app()
    with app.app_context():
        _, [phone] = wave_forum(due_in=-3, listeners=1)  # fell due 3 s ago: nobody was up
    with FakeTwilio() as fake:
        started = time.monotonic()
        process = start_worker(worker_env(schema, fake))
        ready = time.monotonic()
        try:
            wait_for(lambda: fake.sent_to(phone), 10, "the overdue reminder")
        finally:
            stop(process)
        [message] = fake.sent_to(phone)
        assert message["body"].startswith("Reminder:")
        assert message["_created"] - ready < 2.0, (
            f"sent {message['_created'] - ready:.2f}s after the worker was up "
            f"({ready - started:.2f}s to start)"
        )


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
