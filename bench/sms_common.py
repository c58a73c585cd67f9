"""Shared plumbing for the SMS benchmarks: workers, the fake Twilio process, outbox rows.

Everything talks to 127.0.0.1 only and uses the ``phonein_bench`` database of
``common.py``. Forums made here have slugs starting ``bench-sms-``; each script deletes
the previous ones when it starts. Before a measurement, ``quiesce`` makes sure nothing
else in ``phonein_bench`` can reach a worker: it cancels every other open or live forum
and every pending or claimed message (leftovers of the HTTP benchmarks: their
confirmations and their forums' reminder waves would otherwise be sent by our workers
and mixed into the figures), and refuses to start if another worker is alive.

Workers are ``phonein worker`` subprocesses started like tests/test_workers.py does
(wait for the "phonein worker" line on stderr, then drain stderr in a thread). They are
stopped with SIGTERM, then SIGKILL after a few seconds, always in ``finally``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from common import BENCH_DSN, RESULTS, ROOT, app_env

sys.path.insert(0, str(ROOT))
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN

FROM_NUMBER = "+15005550006"
SLUG_PREFIX = "bench-sms-"
FAKE_SCRIPT = Path(__file__).resolve().parent / "fake_twilio_server.py"

# Twenty IANA zones across the world's offsets (and both hemispheres' DST rules).
ZONES = [
    "Europe/London",
    "Europe/Paris",
    "Europe/Athens",
    "Africa/Lagos",
    "Africa/Nairobi",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Bangkok",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Adelaide",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Chicago",
    "America/New_York",
    "America/Sao_Paulo",
]


def connect() -> psycopg.Connection[Any]:
    """Return an autocommit connection to ``phonein_bench``."""
    return psycopg.connect(BENCH_DSN, autocommit=True)


def check_schema() -> None:
    """Fail early when ``phonein_bench`` was migrated by an older 0002 revision."""
    with connect() as conn:
        columns = {
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'send_rate'"
            )
        }
    if "next_slot" not in columns:
        raise SystemExit(
            f"phonein_bench.send_rate has columns {sorted(columns)}, not next_slot: the "
            "database was migrated by an older version of revision 0002. Run with --fresh."
        )


def quiesce() -> dict[str, int]:
    """Remove our old forums; cancel every other forum and message a worker could act on."""
    with connect() as conn:
        alive = conn.execute(
            "SELECT count(*) FROM workers WHERE heartbeat_at > now() - interval '10 seconds'"
        ).fetchone()
        if alive and alive[0]:
            raise SystemExit("another phonein worker is running against phonein_bench; stop it")
        deleted = conn.execute("DELETE FROM forums WHERE slug LIKE %s", (SLUG_PREFIX + "%",))
        forums = conn.execute(
            "UPDATE forums SET status = 'cancelled' WHERE status IN ('open', 'live')"
        )
        messages = conn.execute(
            "UPDATE messages SET status = 'cancelled', error_message = 'bench: quiesced' "
            "WHERE status IN ('pending', 'sending')"
        )
        reset_shared_state(conn)
        conn.execute("VACUUM ANALYZE messages")
        conn.execute("VACUUM ANALYZE signups")
        return {
            "old_bench_forums_deleted": deleted.rowcount,
            "other_forums_cancelled": forums.rowcount,
            "other_messages_cancelled": messages.rowcount,
        }


def reset_shared_state(conn: psycopg.Connection[Any]) -> None:
    """Forget leases, dead workers and reserved send slots left by earlier runs."""
    conn.execute("DELETE FROM leases")
    conn.execute("DELETE FROM workers")
    conn.execute("DELETE FROM send_rate")


def insert_forum(conn: psycopg.Connection[Any], label: str, offsets: list[int]) -> tuple[int, str]:
    """Insert an open forum starting in two days (no wave due yet); return (id, slug)."""
    slug = f"{SLUG_PREFIX}{label}-{os.getpid()}-{time.time_ns() % 10**9}"
    starts = datetime.now(UTC) + timedelta(days=2)
    row = conn.execute(
        """
        INSERT INTO forums (slug, title, question, correspondent, description, starts_at,
            duration_minutes, ends_at, timezone, signup_closes_at, reminder_offsets, status,
            queue_version, created_at, updated_at)
        VALUES (%(slug)s, %(title)s, 'What should the city do about night buses?',
            'Bench Correspondent', '', %(starts)s, 60, %(ends)s, 'Europe/London', %(ends)s,
            %(offsets)s, 'open', 0, now() - interval '2 days', now() - interval '2 days')
        RETURNING id
        """,
        {
            "slug": slug,
            "title": f"Night buses: who are they for? ({label})",
            "starts": starts,
            "ends": starts + timedelta(minutes=60),
            "offsets": json.dumps(offsets),
        },
    ).fetchone()
    assert row is not None
    return int(row[0]), slug


def move_forum(conn: psycopg.Connection[Any], forum: int, starts: datetime) -> None:
    """Set the forum's start (and derived end and close) as ``forums.apply_changes`` would."""
    conn.execute(
        "UPDATE forums SET starts_at = %(s)s, ends_at = %(e)s, signup_closes_at = %(e)s "
        "WHERE id = %(id)s",
        {"s": starts, "e": starts + timedelta(minutes=60), "id": forum},
    )


def insert_signups(
    conn: psycopg.Connection[Any], forum: int, count: int, phone_prefix: str
) -> None:
    """Insert ``count`` approved, consenting signups created two days ago, in one statement.

    Phones are ``phone_prefix`` + an 8-digit serial; zones cycle through ``ZONES``.
    """
    conn.execute(
        """
        INSERT INTO signups (
            forum_id, name, location, phone, country, question, sms_consent,
            publish_consent, timezone, status, queue_key, published, created_at,
            updated_at, screened_at)
        SELECT %(forum)s, 'Listener ' || i, 'Somewhere ' || (i %% 97),
               %(prefix)s || lpad(i::text, 8, '0'), NULL,
               'Question number ' || i || ' about the night buses.', true, false,
               (%(zones)s::text[])[1 + (i %% %(nzones)s)], 'approved', NULL, false,
               now() - interval '2 days', now() - interval '2 days', now() - interval '2 days'
        FROM generate_series(1, %(count)s) AS i
        """,
        {
            "forum": forum,
            "count": count,
            "prefix": phone_prefix,
            "zones": ZONES,
            "nzones": len(ZONES),
        },
    )


def analyze() -> None:
    with connect() as conn:
        conn.execute("ANALYZE signups")
        conn.execute("ANALYZE messages")


# Workers.


def worker_env(fake_url: str | None, **settings: Any) -> dict[str, str]:
    """Environment of a ``phonein worker``: the bench database, Twilio pointed at the fake."""
    env = app_env()
    env.update(
        PHONEIN_PUBLIC_URL="http://phonein.bench",
        PHONEIN_LEASE_SECONDS="2",
        PHONEIN_PURGE_AFTER_DAYS="0",
    )
    if fake_url:
        env.update(
            PHONEIN_SMS_BACKEND="twilio",
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            TWILIO_FROM_NUMBER=FROM_NUMBER,
            PHONEIN_TWILIO_API_URL=fake_url,
        )
    else:
        env["PHONEIN_SMS_BACKEND"] = "console"
        for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"):
            env.pop(name, None)
    env.update({f"PHONEIN_{k}": str(v) for k, v in settings.items()})
    return env


@dataclass
class Worker:
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)
    drain: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.process.pid


def start_worker(env: dict[str, str], timeout: float = 30.0) -> Worker:
    """Start ``phonein worker``; return once it says it is running (stderr keeps draining)."""
    process = subprocess.Popen(
        [sys.executable, "-c", "from phonein.cli import main; main()", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    worker = Worker(process)
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if line:
                worker.log.append(line)
            if "phonein worker" in line:
                worker.drain = threading.Thread(target=_drain, args=(worker,), daemon=True)
                worker.drain.start()
                return worker
            if not line and process.poll() is not None:
                break
    except BaseException:
        stop_worker(worker)
        raise
    stop_worker(worker)
    raise RuntimeError("worker did not start:\n" + "".join(worker.log))


def _drain(worker: Worker) -> None:
    assert worker.process.stderr is not None
    for line in worker.process.stderr:
        if len(worker.log) < 10_000:
            worker.log.append(line)


def stop_worker(worker: Worker, grace: float = 5.0) -> int | None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; return the exit code."""
    process = worker.process
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(10)
    if worker.drain is not None:
        worker.drain.join(5)
    if process.stderr is not None:
        with contextlib.suppress(OSError):
            process.stderr.close()
    return process.returncode


def save_logs(name: str, workers: list[Worker]) -> None:
    """Keep the workers' stderr in bench/results/NAME-worker-N.log."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    for n, worker in enumerate(workers, 1):
        (RESULTS / f"{name}-worker-{n}.log").write_text("".join(worker.log))


def peak_rss_mb(pid: int) -> float | None:
    """Return the process's peak resident set (VmHWM) in MiB, None once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# The fake Twilio, in a process of its own.


@contextlib.contextmanager
def fake_twilio(
    latency: float, max_seconds: float, *, verify_code: str | None = None
) -> Iterator[dict[str, Any]]:
    """Run bench/fake_twilio_server.py; yield a dict with ``url``, filled with ``messages``.

    On exit the fake gets SIGTERM, writes what it accepted to a JSON file and exits; the
    dict then holds ``messages`` (to, wall-clock and monotonic acceptance times) and
    ``rejected``.
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"fake-twilio-{os.getpid()}.json"
    out.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            sys.executable,
            str(FAKE_SCRIPT),
            "--latency",
            str(latency),
            "--out",
            str(out),
            "--max-seconds",
            str(max_seconds),
            *(["--verify-code", verify_code] if verify_code else []),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    state: dict[str, Any] = {}
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"fake Twilio did not start: {line!r}")
        state["url"] = line.strip()
        state["pid"] = process.pid
        yield state
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
    if out.exists():
        state.update(json.loads(out.read_text()))
        out.unlink()
    else:
        raise RuntimeError("the fake Twilio wrote no results")
