"""Benchmark 5: punctuality of reminder waves: lateness of each wave's first SMS.

What: ``--waves`` (default 20) open forums on PostgreSQL (database ``phonein_bench``),
each with ``--listeners`` approved, consenting signups (default 10) and
``reminder_offsets = [3600]``. One ``phonein worker`` runs against the fake Twilio of
tests/fake_twilio.py in its own process (bench/fake_twilio_server.py, no added latency by
default, so an acceptance is the request's arrival), ``PHONEIN_SMS_RATE=100``. Once the
worker is up, the forums are moved so that wave *i* falls due at
``T0 + i * --spacing + u_i`` (T0 = now + ``--lead``; u_i uniform in [0, 1) from a seeded
generator, so the due times fall on every phase of the scheduler's one-second tick).

Lateness of a wave = the fake's acceptance time (time.time() in the fake's process) of the
first message to any of that forum's numbers, minus the wave's due time (time.time()
clock of this process, written to the database as ``starts_at - 3600``). Reported: p50
and p99 (nearest rank; with 20 waves p99 is the maximum), min and max, per run.

Each ``--ahead`` value (``PHONEIN_WAVE_AHEAD_SECONDS``) is a run; default ``5,0``: the
app's default (waves written up to 5 s early, messages due at the due time) and 0 (the
wave is written by the first tick after it is due).

Goal: p99 lateness under 1 s.

Usage: ``python bench/sms_punctuality.py [--waves 20] [--ahead 5,0] [--json]``.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from common import ROOT, machine, percentile, prepare_database, write_json
from sms_common import (
    analyze,
    check_schema,
    connect,
    fake_twilio,
    insert_forum,
    insert_signups,
    move_forum,
    quiesce,
    reset_shared_state,
    save_logs,
    start_worker,
    stop_worker,
    worker_env,
)

GOAL_P99 = 1.0
OFFSET = 3600


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waves", type=int, default=20)
    parser.add_argument("--listeners", type=int, default=10, help="signups per forum")
    parser.add_argument("--spacing", type=float, default=2.0, help="seconds between waves")
    parser.add_argument("--lead", type=float, default=8.0, help="seconds from setup to wave 1")
    parser.add_argument("--ahead", default="5,0", help="WAVE_AHEAD_SECONDS values, a run each")
    parser.add_argument("--rate", type=float, default=100.0, help="PHONEIN_SMS_RATE")
    parser.add_argument("--threads", type=int, default=8, help="PHONEIN_SENDER_THREADS")
    parser.add_argument("--latency", type=float, default=0.0, help="fake Twilio latency, s")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the database")
    parser.add_argument("--json", action="store_true", help="write bench/results/*.json")
    return parser.parse_args()


def run(args: argparse.Namespace, ahead: float) -> dict[str, Any]:
    """Run ``--waves`` staggered waves past one worker; return the lateness figures."""
    rng = random.Random(args.seed)
    load_start = os.getloadavg()
    forums: list[int] = []
    with connect() as conn:
        for i in range(args.waves):
            forum, _ = insert_forum(conn, f"punct-{ahead:g}-{i + 1}", [OFFSET])
            # +4479 NN 000001...: the first two digits after the prefix name the wave.
            insert_signups(conn, forum, args.listeners, f"+4479{i:02d}")
            forums.append(forum)
        reset_shared_state(conn)
    analyze()
    total = args.waves * args.listeners
    last_due = args.lead + (args.waves - 1) * args.spacing + 1
    limit = last_due + 30 + total / args.rate
    with fake_twilio(args.latency, max_seconds=limit + 60) as fake:
        env = worker_env(
            fake["url"], SMS_RATE=args.rate, SENDER_THREADS=args.threads, WAVE_AHEAD_SECONDS=ahead
        )
        worker = start_worker(env)
        try:
            time.sleep(1.0)
            t0 = time.time() + args.lead
            dues = [t0 + i * args.spacing + rng.random() for i in range(args.waves)]
            with connect() as conn:
                for forum, due in zip(forums, dues, strict=True):
                    start = datetime.fromtimestamp(due, UTC) + timedelta(seconds=OFFSET)
                    move_forum(conn, forum, start)
                deadline = time.monotonic() + limit
                while time.monotonic() < deadline and worker.process.poll() is None:
                    done = conn.execute(
                        "SELECT count(*) FROM messages WHERE forum_id = ANY(%s) "
                        "AND status NOT IN ('pending', 'sending')",
                        (forums,),
                    ).fetchone()[0]
                    if done >= total:
                        break
                    time.sleep(0.5)
                stored = [
                    row[0].timestamp() - OFFSET
                    for row in conn.execute(
                        "SELECT starts_at FROM forums WHERE id = ANY(%s) ORDER BY id", (forums,)
                    )
                ]
        finally:
            stop_worker(worker)
            save_logs(f"sms_punctuality-ahead{ahead:g}", [worker])
            with connect() as conn:
                reset_shared_state(conn)
    first: dict[int, float] = {}
    for m in fake["messages"]:
        wave = int(m["to"][5:7])
        first[wave] = min(first.get(wave, m["wall"]), m["wall"])
    lateness = [first[i] - dues[i] for i in range(args.waves) if i in first]
    return {
        "ahead": ahead,
        "waves": args.waves,
        "waves_heard": len(first),
        "accepted": len(fake["messages"]),
        "expected": total,
        "due_rounding_max_s": max(abs(a - b) for a, b in zip(stored, dues, strict=True)),
        "lateness_s": lateness,
        "load_average": [load_start, os.getloadavg()],
        "p50": percentile(lateness, 50),
        "p99": percentile(lateness, 99),
        "min": min(lateness),
        "max": max(lateness),
    }


def print_table(runs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """One row per run."""
    print(
        f"\n{args.waves} waves x {args.listeners} listeners, {args.spacing:g} s apart (+ U[0,1)),"
        f" SMS_RATE={args.rate:g}, fake latency {args.latency * 1000:.0f} ms"
    )
    header = (
        f"{'ahead s':>7} {'waves':>5} {'msgs':>9} {'min s':>7} {'p50 s':>7} {'p99 s':>7} "
        f"{'max s':>7} {'p99/goal':>8}  goal"
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        print(
            f"{r['ahead']:>7g} {r['waves_heard']:>5} {r['accepted']:>4}/{r['expected']:<4} "
            f"{r['min']:>7.3f} {r['p50']:>7.3f} {r['p99']:>7.3f} {r['max']:>7.3f} "
            f"{r['p99'] / GOAL_P99:>8.2f}  {'met' if r['p99'] < GOAL_P99 else 'NOT met'}"
        )


def main() -> None:
    """Prepare, run each WAVE_AHEAD_SECONDS value, report."""
    args = parse_args()
    if args.waves > 100:
        raise SystemExit("--waves is at most 100 (two digits of the phone number name the wave)")
    where = machine()
    prepare_database(fresh=args.fresh)
    check_schema()
    print(f"quiesced: {quiesce()}")
    runs = [run(args, float(a)) for a in args.ahead.split(",") if a.strip()]
    print_table(runs, args)
    if args.json:
        path = write_json("sms_punctuality", {"args": vars(args), "machine": where, "runs": runs})
        print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
