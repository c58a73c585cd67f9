"""The sender: a thread pool that claims due texts and sends them, until told to stop.

Every ``phonein worker`` (and ``phonein serve``) runs one; each beats a heartbeat row, so
that recovery can tell a quiet sender's claims from a live one's.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TypeVar

import sqlalchemy as sa
from flask import Flask

from .. import database
from ..database import changed
from ..extensions import db
from ..models import Worker
from .dispatch import FAST_LANE, Claimed, claim, deliver, release

log = logging.getLogger("phonein.sms")
T = TypeVar("T")


def heartbeat(worker_id: str, now: datetime) -> None:
    table = Worker.__table__
    updated = changed(sa.update(table).where(table.c.id == worker_id).values(heartbeat_at=now))
    if not updated:
        db.session.execute(sa.insert(table).values(id=worker_id, heartbeat_at=now, started_at=now))
    db.session.commit()


def forget_worker(worker_id: str) -> None:
    db.session.execute(sa.delete(Worker).where(Worker.id == worker_id))
    db.session.commit()


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
