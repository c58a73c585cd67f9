"""Benchmark 4: SMS dispatch rate against a slow provider, with one and with two workers.

What: 10,000 pending messages (one per approved, consenting signup of one forum) are sent
by ``phonein worker`` processes to the fake Twilio of tests/fake_twilio.py, which runs in
a process of its own (bench/fake_twilio_server.py) and answers every create after
``--latency`` (default 150 ms). ``PHONEIN_SMS_RATE=100`` (the cap across all senders) and
``PHONEIN_SENDER_THREADS=24`` per process (at 150 ms, 100/s needs at least 15 requests in
flight). The rows are inserted with ``send_at`` two days ahead while the workers start;
once they are up, one UPDATE makes all of them due at once.

Measured, from the fake's acceptance times (time.time() and time.monotonic() taken in
the fake's process when it accepts a message):

* achieved rate over the steady part: (accepted - 1) / (last - first acceptance), and
  its ratio to the cap (goal >= 0.95);
* the most messages accepted in any one-second window, windows starting at every
  acceptance (goal: never above the cap);
* also: seconds from "due" to the first acceptance, duplicates per number, final
  statuses in the outbox, how many each worker sent, retries.

Each ``--workers`` value is a run (default ``1,2``). ``--count`` makes shorter runs.

Usage: ``python bench/sms_dispatch.py [--count 10000] [--workers 1,2] [--json]``.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from common import ROOT, machine, prepare_database, write_json
from sms_common import (
    analyze,
    check_schema,
    connect,
    fake_twilio,
    insert_forum,
    insert_signups,
    quiesce,
    reset_shared_state,
    save_logs,
    start_worker,
    stop_worker,
    worker_env,
)

GOAL_RATIO = 0.95
BODY = (
    'Reminder: the phone-in "Night buses: who are they for?" starts in 60 minutes, '
    "Tue 24 Nov 18:00 GMT. Keep your phone with you. Reply STOP to opt out."
)


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="messages per run")
    parser.add_argument("--workers", default="1,2", help="worker processes, one run each")
    parser.add_argument("--rate", type=float, default=100.0, help="PHONEIN_SMS_RATE")
    parser.add_argument("--threads", type=int, default=24, help="PHONEIN_SENDER_THREADS")
    parser.add_argument("--latency", type=float, default=0.15, help="fake Twilio latency, s")
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the database")
    parser.add_argument("--json", action="store_true", help="write bench/results/*.json")
    return parser.parse_args()


def make_outbox(label: str, count: int) -> int:
    """Insert a forum, ``count`` signups and one pending message each (not yet due)."""
    later = datetime.now(UTC) + timedelta(days=2)
    with connect() as conn:
        forum, _ = insert_forum(conn, label, [])
        insert_signups(conn, forum, count, "+4478")
        conn.execute(
            """
            INSERT INTO messages (forum_id, signup_id, kind, key, "to", body, send_at, status,
                attempts, created_at, updated_at)
            SELECT forum_id, id, 'confirmation', '', phone, %(body)s, %(later)s, 'pending', 0,
                   now(), now()
            FROM signups WHERE forum_id = %(forum)s
            """,
            {"forum": forum, "body": BODY, "later": later},
        )
    analyze()
    return forum


def busiest_second(times: list[float]) -> tuple[int, float]:
    """Return the most acceptances in a window [t, t + 1 s) starting at any acceptance."""
    best, at = 0, times[0] if times else 0.0
    for i, start in enumerate(times):
        n = bisect.bisect_left(times, start + 1.0, lo=i) - i
        if n > best:
            best, at = n, start
    return best, at


def run(args: argparse.Namespace, workers: int) -> dict[str, Any]:
    """Send ``--count`` messages with ``workers`` processes; return the figures."""
    forum = make_outbox(f"dispatch-{workers}w", args.count)
    with connect() as conn:
        reset_shared_state(conn)
    expected = args.count / args.rate
    limit = expected * 2 + 120
    result: dict[str, Any] = {"workers": workers, "count": args.count, "rate": args.rate}
    result["load_average_at_start"] = os.getloadavg()
    procs = []
    with fake_twilio(args.latency, max_seconds=limit + 120) as fake:
        env = worker_env(fake["url"], SMS_RATE=args.rate, SENDER_THREADS=args.threads)
        try:
            for _ in range(workers):
                procs.append(start_worker(env))
            time.sleep(2.0)  # first ticks, heartbeats and polls
            with connect() as conn:
                released = time.time()
                conn.execute("UPDATE messages SET send_at = now() WHERE forum_id = %s", (forum,))
                deadline = time.monotonic() + limit
                left = args.count
                while time.monotonic() < deadline:
                    left = conn.execute(
                        "SELECT count(*) FROM messages WHERE forum_id = %s "
                        "AND status IN ('pending', 'sending')",
                        (forum,),
                    ).fetchone()[0]
                    if left == 0 or any(p.process.poll() is not None for p in procs):
                        break
                    time.sleep(0.5)
                settled = time.time()
                statuses = dict(
                    conn.execute(
                        "SELECT status, count(*) FROM messages WHERE forum_id = %s GROUP BY 1",
                        (forum,),
                    ).fetchall()
                )
                per_worker = sorted(
                    n
                    for (n,) in conn.execute(
                        "SELECT count(*) FROM messages WHERE forum_id = %s "
                        "AND status = 'queued' GROUP BY claimed_by",
                        (forum,),
                    ).fetchall()
                )
                retried_rows = conn.execute(
                    "SELECT attempts, error_code, error_message FROM messages "
                    "WHERE forum_id = %s AND attempts > 1",
                    (forum,),
                ).fetchall()
        finally:
            for proc in procs:
                stop_worker(proc)
            save_logs(f"sms_dispatch-{workers}w", procs)
            with connect() as conn:
                reset_shared_state(conn)
    accepted = fake["messages"]
    mono = sorted(m["mono"] for m in accepted)
    wall = sorted(m["wall"] for m in accepted)
    per_number = collections.Counter(m["to"] for m in accepted)
    n = len(mono)
    steady = (n - 1) / (mono[-1] - mono[0]) if n > 1 else 0.0
    busiest, busiest_at = busiest_second(mono)
    result.update(
        left_unsent=left,
        accepted=n,
        duplicates=sum(c - 1 for c in per_number.values() if c > 1),
        rejected=len(fake["rejected"]),
        provider_attempts=fake["attempts"],
        first_after_due_s=(wall[0] - released) if wall else None,
        steady_span_s=(mono[-1] - mono[0]) if n > 1 else 0.0,
        steady_rate=steady,
        ratio_to_cap=steady / args.rate,
        busiest_second=busiest,
        busiest_second_at_s=busiest_at - mono[0] if mono else None,
        due_to_settled_s=settled - released,
        statuses=statuses,
        sent_per_worker=per_worker,
        retried=len(retried_rows),
        retried_errors=[list(row) for row in retried_rows[:50]],
        worker_exit_codes=[p.process.returncode for p in procs],
        per_second=_per_second(mono),
        load_average_at_end=os.getloadavg(),
        accepted_mono=mono,
    )
    return result


def _per_second(times: list[float]) -> list[int]:
    """Acceptances per whole second from the first one (for the JSON)."""
    if not times:
        return []
    counts = [0] * (int(times[-1] - times[0]) + 1)
    for t in times:
        counts[int(t - times[0])] += 1
    return counts


def print_table(runs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """One row per run."""
    print(
        f"\n{args.count} messages per run, fake Twilio {args.latency * 1000:.0f} ms per create, "
        f"SMS_RATE={args.rate:g}, SENDER_THREADS={args.threads} per worker"
    )
    header = (
        f"{'workers':>7} {'accepted':>8} {'dup':>3} {'first s':>7} {'span s':>7} "
        f"{'rate/s':>7} {'/cap':>5} {'max 1s':>6} {'per worker':>12}  goal"
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        ok = r["ratio_to_cap"] >= GOAL_RATIO and r["busiest_second"] <= r["rate"]
        print(
            f"{r['workers']:>7} {r['accepted']:>8} {r['duplicates']:>3} "
            f"{r['first_after_due_s']:>7.3f} {r['steady_span_s']:>7.2f} "
            f"{r['steady_rate']:>7.2f} {r['ratio_to_cap']:>5.3f} {r['busiest_second']:>6} "
            f"{'/'.join(map(str, r['sent_per_worker'])):>12}  {'met' if ok else 'NOT met'}"
        )
    for r in runs:
        print(
            f"  {r['workers']} worker(s): statuses {r['statuses']}, retried {r['retried']}, "
            f"fake rejected {r['rejected']}, unsent {r['left_unsent']}"
        )


def main() -> None:
    """Prepare, run each worker count, report."""
    args = parse_args()
    where = machine()
    prepare_database(fresh=args.fresh)
    check_schema()
    print(f"quiesced: {quiesce()}")
    runs = [run(args, int(w)) for w in args.workers.split(",") if w.strip()]
    print_table(runs, args)
    if args.json:
        path = write_json("sms_dispatch", {"args": vars(args), "machine": where, "runs": runs})
        print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
