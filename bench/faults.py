"""The fault table of issue 10, run for real: duplicates / lost / late per fault.

Each row starts two `phonein worker` processes on PostgreSQL against the fake Twilio of
the tests (running in this process, 100 ms a send), writes a reminder wave, injects one
fault, waits (bounded) for the wave to settle and counts at the fake's own log:

- duplicates: texts a listener got more than once;
- lost: listeners who got no text (or texts that ended ``failed``);
- late: texts that arrived more than the allowance after they could first have gone
  (due time or end of the fault, plus the wave's own length at the rate, plus the retry
  backoff cap), and for the clock rows texts that arrived *before* they were due.

The database rows drive the app in this process through a TCP proxy on 127.0.0.1
(``tests.processes.Proxy``, which the tests use too) and report status codes instead.
Everything runs on 127.0.0.1; every process started is stopped by its PID in ``finally``.

    python bench/faults.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/DB

The database's tables are emptied first (its schema is upgraded with the migrations).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from phonein import create_app  # noqa: E402
from phonein.extensions import db  # noqa: E402
from phonein.models import Lease, Message  # noqa: E402
from phonein.sms.dispatch import BACKOFF_CAP_SECONDS  # noqa: E402
from phonein.times import utcnow  # noqa: E402
from tests.conftest import make_forum  # noqa: E402
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, Faults  # noqa: E402
from tests.processes import SKEWED_WORKER, Outage, Proxy, add_listeners  # noqa: E402


@dataclass
class Row:
    fault: str
    duplicates: int = 0
    lost: int = 0
    late: int = 0
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    """One wave under one fault: the app, the fake, the workers, the proxy."""

    app: Any
    fake: FakeTwilio
    url: str
    proxy: Proxy | None
    listeners: int
    rate: float
    workers: list[subprocess.Popen[str]] = field(default_factory=list)
    due_wall: float = 0.0
    fault_end: float = 0.0
    skews: list[float] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        url = self.url
        if self.proxy is not None:
            parts = urlsplit(url)
            url = parts._replace(netloc=f"{parts.username}@127.0.0.1:{self.proxy.port}").geturl()
        return {
            **os.environ,
            "PHONEIN_DATABASE_URL": url,
            "PHONEIN_SECRET_KEY": "faults-bench-secret-key-0123456789abcdef",
            "PHONEIN_SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": "+15005550006",
            "PHONEIN_TWILIO_API_URL": self.fake.url,
            "PHONEIN_PUBLIC_URL": "http://phonein.bench",
            "PHONEIN_WORKER_DEAD_SECONDS": "2",
            "PHONEIN_LEASE_SECONDS": "3",
            "PHONEIN_RECOVER_SECONDS": "1",
            "PHONEIN_PURGE_AFTER_DAYS": "0",
            "PHONEIN_SMS_RATE": str(self.rate),
            "PHONEIN_SENDER_THREADS": "8",
            "PHONEIN_DATABASE_STATEMENT_TIMEOUT": "2",
            "PHONEIN_DATABASE_CONNECT_TIMEOUT": "2",
        }

    def start(self, skew: float = 0.0) -> subprocess.Popen[str]:
        code = SKEWED_WORKER if skew else "from phonein.cli import main; main()"
        process = subprocess.Popen(
            [sys.executable, "-c", code, "worker"],
            cwd=ROOT,
            env={**self.env(), "PHONEIN_TEST_CLOCK_SKEW": str(skew)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.workers.append(process)
        assert process.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if "phonein worker" in line:
                threading.Thread(target=_drain, args=(process,), daemon=True).start()
                return process
            if not line and process.poll() is not None:
                break
        raise RuntimeError("worker did not start")

    def stop(self) -> None:
        for process in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)
                process.send_signal(signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def holder_pid(self) -> int | None:
        with self.app.app_context():
            holder = db.session.scalar(sa.select(Lease.holder))
            db.session.rollback()
        return int(holder.split(":")[1]) if holder else None

    def claims_of(self, pid: int) -> int:
        with self.app.app_context():
            count = db.session.scalar(
                sa.select(sa.func.count()).where(
                    Message.status == "sending", Message.claimed_by.like(f"%:{pid}:%")
                )
            )
            db.session.rollback()
        return count or 0

    def outbox(self) -> collections.Counter[str]:
        with self.app.app_context():
            found = collections.Counter(
                db.session.scalars(sa.select(Message.status).where(Message.kind == "reminder"))
            )
            db.session.rollback()
        return found


def _drain(process: subprocess.Popen[str]) -> None:
    assert process.stderr is not None
    for _ in process.stderr:
        pass


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if condition():
                return True
        time.sleep(0.2)
    return False


def empty(app: Any) -> None:
    with app.app_context():
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())
        db.session.remove()


@contextlib.contextmanager
def wave_run(
    app: Any, url: str, *, listeners: int, rate: float, fake: FakeTwilio, proxied: bool = False
) -> Iterator[Run]:
    empty(app)
    with app.app_context():
        now = utcnow()
        forum = make_forum(
            starts_at=now + timedelta(hours=1, seconds=3), now=now, reminder_offsets=[3600]
        )
        add_listeners(forum, listeners, now - timedelta(minutes=5))
        due_wall = time.time() + 3
    proxy = None
    parts = urlsplit(url)
    if proxied:
        proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    run = Run(app, fake, url, proxy, listeners, rate, due_wall=due_wall, fault_end=due_wall)
    try:
        yield run
    finally:
        run.stop()
        if proxy is not None:
            proxy.close()


def settle(run: Run, seconds: float) -> None:
    wait_for(
        lambda: (
            len({m["to"] for m in run.fake.messages}) >= run.listeners
            and not (run.outbox().keys() & {"pending", "sending"})
        ),
        seconds,
    )
    time.sleep(2)  # anything still in a woken worker's hands goes (or not) by now


def count(run: Run, fault: str, *, early_counts: bool = False) -> Row:
    per_number = collections.Counter(m["to"] for m in run.fake.messages)
    outbox = run.outbox()
    allowance = run.listeners / run.rate * 1.5 + BACKOFF_CAP_SECONDS + 5
    start = max(run.due_wall, run.fault_end)
    late = sum(1 for m in run.fake.messages if m["_arrived_wall"] > start + allowance)
    if early_counts:
        late += sum(1 for m in run.fake.messages if m["_arrived_wall"] < run.due_wall - 0.05)
    times = sorted(m["_created"] for m in run.fake.messages)
    busiest = max((sum(1 for t in times if s <= t < s + 1) for s in times), default=0)
    row = Row(
        fault,
        duplicates=sum(c - 1 for c in per_number.values() if c > 1),
        lost=run.listeners - len(per_number) + outbox.get("failed", 0),
        late=late,
    )
    row.extra = {"outbox": dict(outbox), "busiest second": f"{busiest}/{run.rate:g}"}
    return row


def pause(run: Run, victim: subprocess.Popen[str], seconds: float) -> None:
    wait_for(lambda: run.claims_of(victim.pid) >= 4, 30)
    os.kill(victim.pid, signal.SIGSTOP)
    time.sleep(seconds)
    os.kill(victim.pid, signal.SIGCONT)
    run.fault_end = time.time()


def row_pause(app: Any, url: str, which: str, seconds: float) -> Row:
    with (
        FakeTwilio(faults=Faults(latency=0.1)) as fake,
        wave_run(app, url, listeners=500, rate=30, fake=fake) as run,
    ):
        first = run.start()
        wait_for(lambda: run.holder_pid() == first.pid, 20)
        second = run.start()
        pause(run, first if which == "holder" else second, seconds)
        settle(run, 120)
        label = "the lease holder" if which == "holder" else "a non-holder with claims"
        return count(run, f"{label} SIGSTOPped {seconds:g} s during a 500-reminder wave")


def row_skew(app: Any, url: str, skew: float) -> Row:
    with (
        FakeTwilio(faults=Faults(latency=0.1)) as fake,
        wave_run(app, url, listeners=300, rate=30, fake=fake) as run,
    ):
        skewed = run.start(skew=skew)
        wait_for(lambda: run.holder_pid() == skewed.pid, 20)
        run.start()
        settle(run, 90)
        way = "fast" if skew > 0 else "slow"
        row = count(run, f"one worker's clock {abs(skew):g} s {way}", early_counts=True)
        row.note = "late counts early arrivals too"
        return row


def row_database_refused(app: Any, url: str, seconds: float) -> Row:
    with (
        FakeTwilio(faults=Faults(latency=0.1)) as fake,
        wave_run(app, url, listeners=500, rate=30, fake=fake, proxied=True) as run,
    ):
        run.start()
        run.start()
        wait_for(lambda: len(fake.messages) >= 50, 30)
        assert run.proxy is not None
        run.proxy.refuse()
        time.sleep(seconds)
        run.proxy.forward()
        run.fault_end = time.time()
        settle(run, 120)
        return count(run, f"PostgreSQL refused for {seconds:g} s during a wave")


def row_database_stall(app: Any, url: str, seconds: float) -> Row:
    with (
        FakeTwilio(faults=Faults(latency=0.1)) as fake,
        wave_run(app, url, listeners=400, rate=30, fake=fake, proxied=True) as run,
    ):
        run.start()
        run.start()
        wait_for(lambda: len(fake.messages) >= 60, 30)
        assert run.proxy is not None
        run.proxy.hang()
        time.sleep(seconds)
        run.proxy.forward()
        run.fault_end = time.time()
        settle(run, 120)
        row = count(run, f"the database stalled {seconds:g} s mid-wave (rate cap 30)")
        row.note = "see busiest second"
        return row


def row_twilio_down(app: Any, url: str, seconds: float) -> Row:
    with (
        Outage(faults=Faults(latency=0.1)) as fake,
        wave_run(app, url, listeners=500, rate=30, fake=fake) as run,
    ):
        fake.down = True
        run.start()
        run.start()
        time.sleep(max(0.0, run.due_wall - time.time()) + seconds)
        fake.down = False
        run.fault_end = time.time()
        settle(run, BACKOFF_CAP_SECONDS + 120)
        row = count(run, f"Twilio 503 for {seconds:g} s")
        with app.app_context():
            most = db.session.scalar(sa.select(sa.func.max(Message.attempts)))
            db.session.rollback()
        row.extra["503 answers"] = len(fake.rejected)
        row.extra["most attempts"] = most
        return row


def row_requests(app: Any, url: str, fault: str) -> Row:
    """Signups, the API and /healthz through the proxy while the database refuses or hangs."""
    empty(app)
    parts = urlsplit(url)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    try:
        proxied = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": parts._replace(
                    netloc=f"{parts.username}@127.0.0.1:{proxy.port}"
                ).geturl(),
                "SECRET_KEY": "faults-bench-secret-key-0123456789abcdef",
                "RATELIMIT_ENABLED": False,
                "CHALLENGE": "off",
                "VERIFY": "off",
                "SMS_BACKEND": "memory",
                "DATABASE_STATEMENT_TIMEOUT": 2,
                "DATABASE_CONNECT_TIMEOUT": 2,
            }
        )
        with app.app_context():
            slug = make_forum().slug
        client = proxied.test_client()
        getattr(proxy, fault)()
        codes: collections.Counter[int] = collections.Counter()
        health: list[float] = []
        for n in range(5):
            response = client.post(
                f"/api/v1/forums/{slug}/signups",
                json={
                    "name": "A",
                    "location": "Leeds",
                    "phone": f"+4474001{n:05d}",
                    "question": "Q?",
                },
            )
            codes[response.status_code] += 1
            started = time.monotonic()
            codes[client.get("/healthz").status_code] += 1
            health.append(time.monotonic() - started)
        proxy.forward()
        recovered = wait_for(lambda: client.get("/healthz").status_code == 200, 30)
        after = client.post(
            f"/api/v1/forums/{slug}/signups",
            json={"name": "B", "location": "Leeds", "phone": "+447400199999", "question": "Q?"},
        ).status_code
        what = "refused" if fault == "refuse" else "hung (connections accepted, no answers)"
        row = Row(f"PostgreSQL {what}: 5 signups and 5 /healthz")
        row.note = (
            f"answers {dict(codes)}; /healthz slowest {max(health):.2f} s; "
            f"recovered by itself: {recovered} (signup after: {after})"
        )
        row.lost = codes.get(500, 0)
        return row
    finally:
        proxy.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/phonein_bench",
        help="a PostgreSQL database of the bench's own: its tables are emptied",
    )
    parser.add_argument("--twilio-down", type=float, default=130)
    parser.add_argument("--only", default="", help="comma list of row numbers to run")
    args = parser.parse_args()
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": args.database_url,
            "SECRET_KEY": "faults-bench-secret-key-0123456789abcdef",
            "SMS_BACKEND": "memory",
            "CHALLENGE": "off",
            "VERIFY": "off",
        }
    )
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    rows: list[Callable[[], Row]] = [
        lambda: row_pause(app, args.database_url, "holder", 15),
        lambda: row_pause(app, args.database_url, "other", 20),
        lambda: row_skew(app, args.database_url, 10),
        lambda: row_skew(app, args.database_url, -10),
        lambda: row_database_refused(app, args.database_url, 10),
        lambda: row_twilio_down(app, args.database_url, args.twilio_down),
        lambda: row_database_stall(app, args.database_url, 3),
        lambda: row_requests(app, args.database_url, "refuse"),
        lambda: row_requests(app, args.database_url, "hang"),
    ]
    only = {int(n) for n in args.only.split(",") if n}
    print("| # | fault | duplicates | lost | late | notes |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n, make in enumerate(rows, 1):
        if only and n not in only:
            continue
        started = time.monotonic()
        row = make()
        notes = "; ".join(
            [*(f"{k}: {v}" for k, v in row.extra.items()), *([row.note] if row.note else [])]
        )
        took = time.monotonic() - started
        print(
            f"| {n} | {row.fault} | {row.duplicates} | {row.lost} | {row.late} | "
            f"{notes} ({took:.0f} s) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
