"""Benchmark 2: latency of queue operations on a big live forum, relative to GET /healthz.

What: phonein under ``gunicorn -w 2`` on PostgreSQL (database ``phonein_bench``), one live
forum with 5,000 signups: 4,000 queued and 1,000 approved (by default). One client process
sends sequential requests (urllib3, one connection; gunicorn's sync workers close it after
every response, so each request includes a loopback TCP connect, for all three kinds
alike). Each round sends, in a shuffled order:

* ``POST /api/v1/forums/SLUG/queue/next``: the caller on air is done, the head goes on air;
* a move, ``POST /api/v1/forums/SLUG/queue`` with a random queued ``signup_id`` and a
  random 1-based ``position`` within the queue;
* ``GET /healthz``, the baseline.

The figures of merit are p95(next) / p95(healthz) and p95(move) / p95(healthz); the goal is
<= 3 for both.

How the signups get there: the forum is created and started through the API, then the
5,000 rows are inserted with one SQL statement (``INSERT ... SELECT generate_series``),
queued rows with the app's sparse keys ``i << 20`` (i = 1..4000), like ``queue.place``
writes them, and approved ones with ``queue_key`` NULL. The table is ANALYZEd afterwards.

Usage: ``python bench/queue_ops.py [--count 300] [--json]``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from statistics import mean

import psycopg
from common import (
    BENCH_DSN,
    ROOT,
    Client,
    create_forum,
    forum_id,
    machine,
    percentile,
    prepare_database,
    producer_token,
    serve,
    write_json,
)

OPS = ("next", "move", "healthz")
GOAL = 3.0


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=300, help="requests of each kind")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds first")
    parser.add_argument("--queued", type=int, default=4000)
    parser.add_argument("--approved", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the database")
    parser.add_argument("--json", action="store_true", help="write bench/results/*.json")
    return parser.parse_args()


def load_signups(slug: str, queued: int, approved: int) -> None:
    """Insert ``queued`` queued and ``approved`` approved signups into the forum ``slug``."""
    fid = forum_id(slug)
    with psycopg.connect(BENCH_DSN) as conn:
        conn.execute(
            """
            INSERT INTO signups (
                forum_id, name, location, phone, country, question, sms_consent,
                publish_consent, timezone, status, queue_key, published, created_at,
                updated_at, screened_at)
            SELECT %(forum)s, 'Bench caller ' || i, 'Leeds, UK',
                   '+447400' || lpad(i::text, 6, '0'), 'GB',
                   'Question number ' || i || ' about the night buses.', true, false,
                   'Europe/London',
                   CASE WHEN i <= %(queued)s THEN 'queued' ELSE 'approved' END,
                   CASE WHEN i <= %(queued)s THEN i::bigint << 20 END,
                   false, now(), now(), now()
            FROM generate_series(1, %(total)s) AS i
            """,
            {"forum": fid, "queued": queued, "total": queued + approved},
        )
        conn.commit()
    with psycopg.connect(BENCH_DSN, autocommit=True) as conn:
        conn.execute("ANALYZE signups")


def queued_ids(slug: str) -> list[int]:
    """Return the ids of the forum's queued signups, in no particular order."""
    with psycopg.connect(BENCH_DSN) as conn:
        rows = conn.execute(
            "SELECT id FROM signups WHERE forum_id = %s AND status = 'queued'", (forum_id(slug),)
        ).fetchall()
    return [row[0] for row in rows]


def queue_counts(slug: str) -> dict[str, int]:
    """Return the forum's signups by status."""
    with psycopg.connect(BENCH_DSN) as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM signups WHERE forum_id = %s GROUP BY status",
            (forum_id(slug),),
        ).fetchall()
    return {status: n for status, n in rows}


class Driver:
    """Sends one operation at a time and keeps the list of queued ids in step."""

    def __init__(self, client: Client, slug: str, rng: random.Random) -> None:
        self.client = client
        self.slug = slug
        self.rng = rng
        self.queued = queued_ids(slug)

    def run(self, op: str) -> float:
        """Send ``op`` and return its latency in milliseconds; fail on an unexpected answer."""
        if op == "healthz":
            method, path, body = "GET", "/healthz", None
        elif op == "next":
            method, path, body = "POST", f"/api/v1/forums/{self.slug}/queue/next", {}
        else:
            target = self.rng.choice(self.queued)
            position = self.rng.randint(1, len(self.queued))
            method, path = "POST", f"/api/v1/forums/{self.slug}/queue"
            body = {"signup_id": target, "position": position}
        start = time.perf_counter()
        status, payload = self.client.call(method, path, body)
        elapsed = (time.perf_counter() - start) * 1000
        if status != 200:
            raise RuntimeError(f"{op}: {method} {path} {body} answered {status}: {payload}")
        if op == "next" and payload["on_air"] is not None:
            self.queued.remove(payload["on_air"]["id"])
        if op == "move" and payload["position"] != body["position"]:
            raise RuntimeError(f"move to {body['position']} landed at {payload['position']}")
        return elapsed


def summarize(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Return p50, p95, mean, max per operation and p95 ratios to healthz."""
    stats = {
        op: {
            "n": len(values),
            "p50": percentile(values, 50),
            "p95": percentile(values, 95),
            "mean": mean(values),
            "max": max(values),
        }
        for op, values in samples.items()
    }
    for op in ("next", "move"):
        stats[op]["ratio_p95"] = stats[op]["p95"] / stats["healthz"]["p95"]
    return stats


def print_table(stats: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    """Print latency percentiles per operation and the ratios."""
    print(
        f"\n{args.count} sequential requests of each kind, one client, gunicorn -w 2, "
        f"PostgreSQL; forum with {args.queued} queued + {args.approved} approved"
    )
    header = (
        f"{'operation':<10} {'n':>4} {'p50 ms':>7} {'p95 ms':>7} {'mean ms':>7} "
        f"{'max ms':>7} {'p95/healthz':>11}  goal"
    )
    print(header)
    print("-" * len(header))
    for op in ("healthz", "next", "move"):
        s = stats[op]
        ratio = s.get("ratio_p95")
        verdict = "" if ratio is None else ("met" if ratio <= GOAL else "NOT met")
        ratio_text = "" if ratio is None else f"{ratio:.2f}"
        print(
            f"{op:<10} {s['n']:>4} {s['p50']:>7.2f} {s['p95']:>7.2f} {s['mean']:>7.2f} "
            f"{s['max']:>7.2f} {ratio_text:>11}  {verdict}"
        )


def main() -> None:
    """Prepare the forum, start gunicorn, warm up, measure interleaved rounds, report."""
    args = parse_args()
    where = machine()
    if args.count + args.warmup > args.queued:
        raise SystemExit("--queued must exceed --count + --warmup: each round takes one caller")
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    prepare_database(fresh=args.fresh)
    token = producer_token()
    samples: dict[str, list[float]] = {op: [] for op in OPS}
    with serve(args.port, log_name="queue_ops"):
        client = Client(args.port, token)
        slug = create_forum(client, "queue", live=True)
        load_signups(slug, args.queued, args.approved)
        before = queue_counts(slug)
        driver = Driver(client, slug, rng)
        for _ in range(args.warmup):
            for op in OPS:
                driver.run(op)
        for _ in range(args.count):
            order = list(OPS)
            rng.shuffle(order)
            for op in order:
                samples[op].append(driver.run(op))
        after = queue_counts(slug)
    stats = summarize(samples)
    print(f"forum {slug}: before {before}, after {after}; seed {seed}", file=sys.stderr)
    print_table(stats, args)
    if args.json:
        path = write_json(
            "queue_ops",
            {
                "args": vars(args),
                "seed": seed,
                "machine": where,
                "forum": slug,
                "counts_before": before,
                "counts_after": after,
                "stats": stats,
                "samples_ms": samples,
            },
        )
        print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
