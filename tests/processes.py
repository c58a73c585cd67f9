"""Helpers for tests that run senders and `phonein worker` processes for real.

Every loop here is bounded in time, and every process started is stopped by its test.
"""

from __future__ import annotations

import contextlib
import os
import socket
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


# Runs `phonein worker` with every wall-clock reading phonein makes (times.utcnow, so the
# models' defaults too) offset by PHONEIN_TEST_CLOCK_SKEW seconds: that process only.
SKEWED_WORKER = """
import datetime, os
import phonein.times

class Skewed(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        skew = datetime.timedelta(seconds=float(os.environ["PHONEIN_TEST_CLOCK_SKEW"]))
        return datetime.datetime.now(tz) + skew

phonein.times.datetime = Skewed
from phonein.cli import main
main()
"""


class Outage(FakeTwilio):
    """The fake Twilio, answering 503 to every new message while ``down`` is set."""

    down = False

    def _create(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if self.down:
            with self.lock:
                self.attempts += 1
                self.rejected.append((503, form.get("To", "")))
            return 503, {"code": 20503, "message": "Service Unavailable", "status": 503}
        return super()._create(form)


class Proxy:
    """Forward 127.0.0.1:<port> to ``target``; or refuse, or hang, when told to."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.mode = "forward"
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.closing = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                if self.mode == "refuse" and not self.closing:
                    time.sleep(0.05)  # the listener is closed; wait for it to come back
                    continue
                return
            if self.mode == "hang":
                self._keep(client)  # accepted, never answered
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._keep(client, upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _keep(self, *sockets: socket.socket) -> None:
        with self.lock:
            self.sockets.extend(sockets)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while self.mode == "hang" and not self.closing:
                    time.sleep(0.05)  # hold it: the database does not answer
                if self.mode != "forward":
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.close()

    def cut(self) -> None:
        """Drop every connection open through the proxy (a restarted database)."""
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def refuse(self) -> None:
        self.mode = "refuse"
        self.listener.close()
        self.cut()

    def hang(self) -> None:
        self.mode = "hang"

    def forward(self) -> None:
        if self.mode == "refuse":
            self.listener = socket.create_server(("127.0.0.1", self.port))
            self.mode = "forward"
            self.thread = threading.Thread(target=self._accept, daemon=True)
            self.thread.start()
        else:
            self.mode = "forward"
            self.cut()  # what hung is over; clients connect afresh

    def close(self) -> None:
        self.closing = True
        self.mode = "closed"
        with contextlib.suppress(OSError):
            self.listener.close()
        self.cut()
