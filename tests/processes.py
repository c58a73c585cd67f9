"""Helpers for tests that run senders and `phonein worker` processes for real.

Every loop here is bounded in time, and every process started is stopped by its test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from phonein.extensions import db
from phonein.models import Forum, Message, Signup
from phonein.sms import dispatch
from phonein.times import utcnow

from .conftest import make_forum
from .fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

RUN_PHONEIN = "from phonein.cli import main; main()"


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


def start_worker(env: dict[str, str], code: str = RUN_PHONEIN) -> subprocess.Popen[str]:
    """Start `phonein worker` (by ``code``); return once it says it is running."""
    process = subprocess.Popen(
        [sys.executable, "-c", code, "worker"],
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


def drain(app, worker: str = "test-worker", seconds: float = 30) -> None:  # type: ignore[no-untyped-def]
    """Claim and deliver until nothing is pending or being sent."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with app.app_context():
            claimed = dispatch.claim(worker, utcnow(), 50)
        for message in claimed:
            dispatch.deliver(app, message, worker)
        with app.app_context():
            left = db.session.scalar(
                sa.select(sa.func.count()).where(Message.status.in_(["pending", "sending"]))
            )
        if not left:
            return
        if not claimed:
            time.sleep(0.02)
    with app.app_context():
        left = db.session.execute(
            sa.select(Message.kind, Message.status, Message.send_at, Message.to).where(
                Message.status.in_(["pending", "sending"])
            )
        ).all()
    raise AssertionError(f"outbox did not drain: {left}")
