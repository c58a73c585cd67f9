"""Benchmark 3: fan-out of one reminder wave to 100,000 listeners, and the worker's memory.

What: one open forum on PostgreSQL (database ``phonein_bench``) with 100,000 signups
(approved, SMS consent, created two days earlier, zones cycling through 20 IANA zones),
``reminder_offsets = [3600]``. A real ``phonein worker`` runs (scheduler and sender,
console SMS backend, ``PHONEIN_SMS_RATE=0.001`` and one sender thread, so that at most one
reminder leaves the outbox while we count). Once it is up, the forum is moved so that its
wave falls due ``--lead`` seconds later. Measured:

* seconds from the wave's due time until all 100,000 reminder rows exist (pending, ready
  to send); 0 when they existed before the due time. The wave is written in one
  transaction, so the script polls the wave's ``reminder_waves`` row every 10 ms (a
  primary-key lookup that turns visible in the same commit as the 100,000 messages) and
  then checks ``SELECT count(*) FROM messages WHERE forum_id = F AND kind = 'reminder'``.
  Polling ``count(*)`` itself would scan the uncommitted rows on every poll and steal CPU
  from the worker on a 2-core machine;
* when the tick began the fan-out (``reminder_waves.fanned_out_at``, the tick's ``now``)
  and so how long the fan-out transaction took;
* the worker's peak RSS (``VmHWM`` in /proc/PID/status) before the wave and after it.

The scheduler writes waves up to ``WAVE_AHEAD_SECONDS`` (default 5) before they are due,
so with the default the rows exist before the due time; each ``--ahead`` value is a run
(default ``5,0``: the default, and 0, which measures fan-out after the due time).

Then the fan-out alone, in this process: for each of ``--inprocess`` fresh forums of the
same size, ``phonein.sms.outbox.fan_out_wave`` inside an app context, timed with the commit.

Goal: under 5 s from due time to all rows, worker peak RSS under 200 MB.

Usage: ``python bench/sms_fanout.py [--signups 100000] [--ahead 5,0] [--inprocess 3] [--json]``.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from common import DATABASE_URL, ROOT, machine, prepare_database, write_json
from sms_common import (
    analyze,
    check_schema,
    connect,
    insert_forum,
    insert_signups,
    move_forum,
    peak_rss_mb,
    quiesce,
    reset_shared_state,
    save_logs,
    start_worker,
    stop_worker,
    worker_env,
)

GOAL_SECONDS = 5.0
GOAL_RSS_MB = 200.0
OFFSET = 3600


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signups", type=int, default=100_000)
    parser.add_argument(
        "--ahead", default="5,0", help="WAVE_AHEAD_SECONDS values, one worker run each"
    )
    parser.add_argument("--lead", type=float, default=10.0, help="seconds from setup to due")
    parser.add_argument("--inprocess", type=int, default=3, help="in-process fan-outs to time")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after due + this")
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the database")
    parser.add_argument("--json", action="store_true", help="write bench/results/*.json")
    return parser.parse_args()


def make_forum(label: str, signups: int) -> int:
    """Insert a forum whose wave is not due yet, with ``signups`` listeners; return its id."""
    with connect() as conn:
        forum, _ = insert_forum(conn, label, [OFFSET])
        insert_signups(conn, forum, signups, "+4477")
    analyze()
    return forum


def worker_run(args: argparse.Namespace, ahead: float) -> dict[str, Any]:
    """Fan a wave out with a real worker and measure it."""
    forum = make_forum(f"fanout-ahead{ahead:g}", args.signups)
    with connect() as conn:
        reset_shared_state(conn)
    env = worker_env(None, SMS_RATE=0.001, SENDER_THREADS=1, WAVE_AHEAD_SECONDS=ahead)
    worker = start_worker(env)
    result: dict[str, Any] = {"ahead": ahead, "signups": args.signups}
    result["load_average_at_start"] = os.getloadavg()
    try:
        time.sleep(1.0)  # let the first tick and the sender's first poll pass
        result["rss_before_mb"] = peak_rss_mb(worker.pid)
        due = datetime.now(UTC) + timedelta(seconds=args.lead)
        with connect() as conn:
            move_forum(conn, forum, due + timedelta(seconds=OFFSET))
            seen = None
            deadline = time.monotonic() + args.lead + args.timeout
            while time.monotonic() < deadline and worker.process.poll() is None:
                row = conn.execute(
                    "SELECT fanned_out_at, messages FROM reminder_waves "
                    "WHERE forum_id = %s AND offset_seconds = %s",
                    (forum, OFFSET),
                ).fetchone()
                if row is not None:
                    seen = time.time()
                    break
                time.sleep(0.01)
            if seen is None:
                raise RuntimeError("the wave was not fanned out in time:\n" + "".join(worker.log))
            count = conn.execute(
                "SELECT count(*) FROM messages WHERE forum_id = %s AND kind = 'reminder'",
                (forum,),
            ).fetchone()[0]
            statuses = dict(
                conn.execute(
                    "SELECT status, count(*) FROM messages WHERE forum_id = %s "
                    "AND kind = 'reminder' GROUP BY status",
                    (forum,),
                ).fetchall()
            )
        time.sleep(1.0)
        result["rss_after_mb"] = peak_rss_mb(worker.pid)
    finally:
        stop_worker(worker)
        save_logs(f"sms_fanout-ahead{ahead:g}", [worker])
        with connect() as conn:
            reset_shared_state(conn)
    fanned_out_at, reported = row
    due_ts = due.timestamp()
    result.update(
        due=due.isoformat(),
        reminders=count,
        reported_by_wave=reported,
        statuses=statuses,
        tick_began_after_due_s=fanned_out_at.timestamp() - due_ts,
        rows_visible_after_due_s=seen - due_ts,
        fan_out_transaction_s=seen - fanned_out_at.timestamp(),
        figure_s=max(0.0, seen - due_ts),
    )
    return result


def inprocess_runs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Time ``fan_out_wave`` + commit in this process, on fresh forums."""
    os.environ["PHONEIN_DATABASE_URL"] = DATABASE_URL
    from phonein import create_app
    from phonein.extensions import db
    from phonein.models import Forum
    from phonein.sms.outbox import fan_out_wave
    from phonein.times import utcnow

    app = create_app(
        {"SECRET_KEY": "bench-" + "x" * 40, "SMS_BACKEND": "console", "SCHEDULER": "off"}
    )
    runs = []
    for n in range(args.inprocess):
        forum_id = make_forum(f"inprocess{n + 1}", args.signups)
        with app.app_context():
            forum = db.session.get_one(Forum, forum_id)
            now = utcnow()
            start = time.perf_counter()
            count = fan_out_wave(forum, OFFSET, now, now)
            written = time.perf_counter()
            db.session.commit()
            done = time.perf_counter()
        runs.append(
            {
                "messages": count,
                "fan_out_s": written - start,
                "commit_s": done - written,
                "total_s": done - start,
            }
        )
    return runs


def print_tables(runs: list[dict[str, Any]], inprocess: list[dict[str, Any]]) -> None:
    """Print the worker runs and the in-process timings."""
    print(f"\nworker runs: one reminder wave to {runs[0]['signups'] if runs else 0} listeners")
    header = (
        f"{'ahead s':>7} {'rows':>7} {'tick-due s':>10} {'rows-due s':>10} {'txn s':>6} "
        f"{'figure s':>8} {'/goal':>5} {'RSS pre':>7} {'RSS peak':>8} {'/goal':>5}  goal"
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        ok = r["figure_s"] < GOAL_SECONDS and (r["rss_after_mb"] or 0) < GOAL_RSS_MB
        print(
            f"{r['ahead']:>7g} {r['reminders']:>7} {r['tick_began_after_due_s']:>10.3f} "
            f"{r['rows_visible_after_due_s']:>10.3f} {r['fan_out_transaction_s']:>6.3f} "
            f"{r['figure_s']:>8.3f} {r['figure_s'] / GOAL_SECONDS:>5.2f} "
            f"{r['rss_before_mb']:>7.1f} {r['rss_after_mb']:>8.1f} "
            f"{r['rss_after_mb'] / GOAL_RSS_MB:>5.2f}  {'met' if ok else 'NOT met'}"
        )
    if inprocess:
        print("\nin-process fan_out_wave (fresh forum each)")
        print(f"{'run':>3} {'messages':>8} {'fan-out s':>9} {'commit s':>8} {'total s':>7}")
        for n, r in enumerate(inprocess, 1):
            print(
                f"{n:>3} {r['messages']:>8} {r['fan_out_s']:>9.3f} {r['commit_s']:>8.3f} "
                f"{r['total_s']:>7.3f}"
            )


def main() -> None:
    """Prepare, run the worker measurements and the in-process ones, report."""
    args = parse_args()
    where = machine()
    prepare_database(fresh=args.fresh)
    check_schema()
    print(f"quiesced: {quiesce()}")
    runs = [worker_run(args, float(a)) for a in args.ahead.split(",") if a.strip()]
    inprocess = inprocess_runs(args) if args.inprocess else []
    print_tables(runs, inprocess)
    if args.json:
        path = write_json(
            "sms_fanout",
            {"args": vars(args), "machine": where, "worker_runs": runs, "inprocess": inprocess},
        )
        print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
