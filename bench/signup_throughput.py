"""Benchmark 1: accepted signups per second vs. GET /healthz per second.

What: phonein under ``gunicorn -w 2`` on PostgreSQL (database ``phonein_bench``) with rate
limiting off. wrk, a second process on loopback, drives two measurements with the same
threads, connections and duration against the same server in the same run:

* ``POST /api/v1/forums/SLUG/signups``: every request is a new signup with its own valid
  UK mobile number (``+44 7400 NNNNNN``, see ``signup_throughput.lua``), into a forum
  created for that run; only 201 answers count, any other status is reported;
* ``GET /healthz``: the floor set by the framework, gunicorn and one database round trip.

The figure of merit is (201 signups/s) / (healthz 200/s); the goal is >= 0.5. After each
signup measurement the forum's rows are counted in the database as a cross-check.

Usage: ``python bench/signup_throughput.py [--duration 15] [--runs 3] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import phonenumbers
import psycopg
from common import (
    BENCH_DSN,
    ROOT,
    Client,
    create_forum,
    forum_id,
    machine,
    prepare_database,
    producer_token,
    serve,
    write_json,
)

LUA = Path(__file__).resolve().parent / "signup_throughput.lua"
PHONE_SPACE = 1_000_000  # +44 7400 000000 .. +44 7400 999999


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per endpoint")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--runs", type=int, default=1, help="measurement pairs on one server")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the database")
    parser.add_argument("--json", action="store_true", help="write bench/results/*.json")
    return parser.parse_args()


def check_phone_pattern(stride: int, threads: int) -> None:
    """Fail early unless sample numbers of every thread's range are valid for phonenumbers."""
    rng = random.Random(1)
    for tid in range(threads):
        low = tid * stride
        samples = [low, low + stride - 1, *(rng.randrange(low, low + stride) for _ in range(200))]
        for n in samples:
            number = phonenumbers.parse(f"+44 7400 {n:06d}")
            if not phonenumbers.is_valid_number(number):
                raise SystemExit(f"+44 7400 {n:06d} is not a valid number: change the pattern")


def wrk(args: argparse.Namespace, seconds: int, script_args: list[str]) -> dict[str, Any]:
    """Run wrk for ``seconds`` with the Lua script and return its BENCH_JSON summary."""
    command = [
        "/usr/bin/wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{args.port}",
        "--",
        *script_args,
    ]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    match = re.search(r"^BENCH_JSON (.*)$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    summary = json.loads(match.group(1))
    summary["rate"] = summary["ok"] / (summary["duration_us"] / 1e6)
    summary["wrk_stdout"] = done.stdout
    return summary


def count_signups(slug: str) -> int:
    """Return how many signup rows the forum ``slug`` has."""
    with psycopg.connect(BENCH_DSN) as conn:
        row = conn.execute(
            "SELECT count(*) FROM signups WHERE forum_id = %s", (forum_id(slug),)
        ).fetchone()
    return int(row[0]) if row else 0


def measure(args: argparse.Namespace, client: Client, stride: int, label: str) -> dict[str, Any]:
    """One run: signups into a fresh forum, then /healthz, with the same wrk settings."""
    slug = create_forum(client, label, live=False)
    signup = wrk(args, args.duration, ["signup", slug, str(stride)])
    signup["rows_in_forum"] = count_signups(slug)
    health = wrk(args, args.duration, ["health"])
    return {
        "forum": slug,
        "signup": signup,
        "health": health,
        "ratio": signup["rate"] / health["rate"] if health["rate"] else 0.0,
    }


def print_table(runs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Print one row per run: rates, latencies, non-expected answers, ratio."""
    print(
        f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
        "gunicorn -w 2, PostgreSQL, rate limiting off"
    )
    header = (
        f"{'run':>3}  {'signups 201/s':>13}  {'non-201':>7}  {'rows':>6}  {'p50 ms':>6}  "
        f"{'p99 ms':>6}  {'healthz/s':>9}  {'non-200':>7}  {'p50 ms':>6}  {'ratio':>5}  goal"
    )
    print(header)
    print("-" * len(header))
    for i, run in enumerate(runs, start=1):
        s, h = run["signup"], run["health"]
        print(
            f"{i:>3}  {s['rate']:>13.1f}  {s['other']:>7}  {s['rows_in_forum']:>6}  "
            f"{s['latency_us']['p50'] / 1000:>6.1f}  {s['latency_us']['p99'] / 1000:>6.1f}  "
            f"{h['rate']:>9.1f}  {h['other']:>7}  {h['latency_us']['p50'] / 1000:>6.1f}  "
            f"{run['ratio']:>5.2f}  {'met' if run['ratio'] >= 0.5 else 'NOT met'}"
        )
        for name, part in (("signup", s), ("healthz", h)):
            errors = {k: v for k, v in part["errors"].items() if v}
            if part["other"] or errors:
                print(f"     {name}: other statuses {part['other_by_status']}, errors {errors}")


def main() -> None:
    """Prepare the database and a token, start gunicorn, warm up, measure, report."""
    args = parse_args()
    where = machine()
    stride = PHONE_SPACE // args.threads
    check_phone_pattern(stride, args.threads)
    prepare_database(fresh=args.fresh)
    token = producer_token()
    runs = []
    with serve(args.port, log_name="signup_throughput"):
        client = Client(args.port, token)
        if args.warmup:
            warm = create_forum(client, "warm-up", live=False)
            wrk(args, args.warmup, ["signup", warm, str(stride)])
            wrk(args, args.warmup, ["health"])
        for i in range(args.runs):
            runs.append(measure(args, client, stride, f"signups run {i + 1}"))
            run = runs[-1]
            print(
                f"run {i + 1}: {run['signup']['rate']:.1f} signups/s, "
                f"{run['health']['rate']:.1f} healthz/s, ratio {run['ratio']:.2f}",
                file=sys.stderr,
            )
    print_table(runs, args)
    if args.json:
        path = write_json("signup_throughput", {"args": vars(args), "machine": where, "runs": runs})
        print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
