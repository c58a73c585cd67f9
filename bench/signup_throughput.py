"""Benchmark 1: accepted signups per second vs. GET /healthz per second.

What: phonein under ``gunicorn -w 2`` on PostgreSQL (database ``phonein_bench``) with rate
limiting off. wrk, a second process on loopback, drives two measurements with the same
threads, connections and duration against the same server in the same run:

* ``POST /api/v1/forums/SLUG/signups``: every request is a new signup with its own valid
  UK mobile number (``+44 7400 NNNNNN``, see ``signup_throughput.lua``), into a forum
  created for that run; only 201 answers count, any other status is reported;
* ``GET /healthz``: the floor set by the framework, gunicorn and one database round trip.

The figure of merit is (201 signups/s) / (healthz 200/s); the goal is >= 0.5. After each
signup measurement the forum's rows are counted in the database as a cross-check. Without
``--verify`` the server runs with ``PHONEIN_VERIFY=off`` and ``PHONEIN_CHALLENGE=off``: the
signup of before issue 9, one POST answered 201.

``--verify``: the listener's way since issue 9, ``PHONEIN_VERIFY=sms`` through Twilio Verify
(the real SDK against the fake Twilio, ``bench/fake_twilio_server.py``, in a process of its
own) and ``PHONEIN_CHALLENGE=pow``. A complete signup is a signup POST carrying a solved
proof-of-work (202) and then the code POST (201); the figure counts the 201s. The
challenges are fetched from ``GET /api/v1/challenge`` and solved by this script *before*
the timed windows (the server allows it: a challenge is stateless and good for
``PHONEIN_CHALLENGE_SECONDS``), so the timed load is the server's work, not the client's
hashing. The fake Verify sends every number the same code, which wrk enters. The station's
texting limits (hourly budget, per range) are raised for the run: they would otherwise
refuse all but the first 200 signups, which is their job and measured by
``bench/pumping.py``.

Usage: ``python bench/signup_throughput.py [--duration 15] [--runs 3] [--verify] [--json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import multiprocessing
import os
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
    RESULTS,
    ROOT,
    Client,
    CpuShares,
    create_forum,
    forum_id,
    gunicorn_pids,
    machine,
    postgres_pids,
    prepare_database,
    producer_token,
    serve,
    write_json,
)
from sms_common import fake_twilio

from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, VERIFY_SERVICE_SID

LUA = Path(__file__).resolve().parent / "signup_throughput.lua"
PHONE_SPACE = 1_000_000  # +44 7400 000000 .. +44 7400 999999
# The code the fake Verify sends every number in --verify runs.
BENCH_CODE = "424242"


def verify_env(fake_url: str) -> dict[str, str]:
    """Return the server's settings for --verify: codes through Verify at the fake, pow on."""
    return {
        "PHONEIN_VERIFY": "sms",
        "PHONEIN_CHALLENGE": "pow",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_VERIFY_SERVICE_SID": VERIFY_SERVICE_SID,
        "PHONEIN_TWILIO_API_URL": fake_url,
        # The limits on texts to unproved numbers would stop the run after 200 codes.
        "PHONEIN_UNVERIFIED_SMS_PER_HOUR": "1000000000",
        "PHONEIN_VERIFY_RANGE_UNPROVED_PER_HOUR": "1000000000",
    }


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
    parser.add_argument(
        "--verify",
        action="store_true",
        help="PHONEIN_VERIFY=sms via Twilio Verify (fake) and PHONEIN_CHALLENGE=pow",
    )
    parser.add_argument(
        "--bodies",
        type=int,
        default=2000,
        help="--verify: signups with solved challenges prepared per measured run",
    )
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


def _solve(challenge: dict[str, Any]) -> dict[str, Any]:
    """Solve one proof-of-work challenge as the browser does; return the signup's solution."""
    salt, target = challenge["salt"], challenge["challenge"]
    for number in range(int(challenge["maxnumber"]) + 1):
        if hashlib.sha256(f"{salt}{number}".encode()).hexdigest() == target:
            return {
                "algorithm": challenge["algorithm"],
                "challenge": target,
                "number": number,
                "salt": salt,
                "signature": challenge["signature"],
            }
    raise RuntimeError("a challenge without a solution")


def prepare_bodies(client: Client, count: int, first: int, name: str) -> Path:
    """Fetch and solve ``count`` challenges (untimed); write one signup body per line."""
    challenges = [client.expect(200, "GET", "/api/v1/challenge") for _ in range(count)]
    with multiprocessing.Pool(2) as pool:
        solutions = pool.map(_solve, challenges, chunksize=16)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"signup-bodies-{name}-{os.getpid()}.jsonl"
    with path.open("w") as out:
        for i, solution in enumerate(solutions):
            n = (first + i) % PHONE_SPACE
            body = {
                "name": f"Bench listener {n}",
                "location": "Leeds, UK",
                "phone": f"+44 7400 {n:06d}",
                "question": "Will the night buses come back?",
                "timezone": "Europe/London",
                "sms_consent": True,
                "publish_consent": False,
                "challenge": solution,
            }
            out.write(json.dumps(body) + "\n")
    return path


def signups_wrk(
    args: argparse.Namespace, seconds: int, slug: str, stride: int, bodies: Path | None
) -> dict[str, Any]:
    """Run wrk's signup load: one POST each (default), or signup and code (--verify)."""
    if bodies is None:
        return wrk(args, seconds, ["signup", slug, str(stride)])
    found = wrk(args, seconds, ["verify", slug, str(bodies), str(args.threads), BENCH_CODE])
    found["started_rate"] = found["started"] / (found["duration_us"] / 1e6)
    if found["exhausted"]:
        raise RuntimeError(f"wrk ran out of prepared signups: raise --bodies ({found})")
    return found


def measure(
    args: argparse.Namespace,
    client: Client,
    stride: int,
    label: str,
    bodies: Path | None = None,
    cpu: CpuShares | None = None,
) -> dict[str, Any]:
    """One run: signups into a fresh forum, then /healthz, with the same wrk settings.

    With ``cpu``, each window also records the CPU seconds of gunicorn, the fake Twilio,
    this database's PostgreSQL backends, wrk and the rest of the machine (``cpu``): the
    goal's ratio is unchanged, this only says where the cores went.
    """
    slug = create_forum(client, label, live=False)
    with cpu.window() if cpu else contextlib.nullcontext({}) as signup_cpu:
        signup = signups_wrk(args, args.duration, slug, stride, bodies)
    signup["cpu"] = signup_cpu
    signup["rows_in_forum"] = count_signups(slug)
    with cpu.window() if cpu else contextlib.nullcontext({}) as health_cpu:
        health = wrk(args, args.duration, ["health"])
    health["cpu"] = health_cpu
    return {
        "forum": slug,
        "signup": signup,
        "health": health,
        "ratio": signup["rate"] / health["rate"] if health["rate"] else 0.0,
    }


def print_table(runs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Print one row per run: rates, latencies, non-expected answers, ratio."""
    mode = (
        "PHONEIN_VERIFY=sms (Twilio Verify, fake), PHONEIN_CHALLENGE=pow, 201 = code entered"
        if args.verify
        else "PHONEIN_VERIFY=off, PHONEIN_CHALLENGE=off"
    )
    print(
        f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
        f"gunicorn -w 2, PostgreSQL, rate limiting off, {mode}"
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
        if "started_rate" in s:
            print(f"     signup POSTs answered 202 (code sent): {s['started_rate']:.1f}/s")
        for name, part in (("signup", s), ("healthz", h)):
            errors = {k: v for k, v in part["errors"].items() if v}
            if part["other"] or errors:
                print(f"     {name}: other statuses {part['other_by_status']}, errors {errors}")
        for name, part in (("signup", s), ("healthz", h)):
            print_cpu(name, part)


def print_cpu(name: str, part: dict[str, Any]) -> None:
    """Print where the machine's CPU went during one window, and gunicorn's per answer."""
    cpu = part.get("cpu") or {}
    if not cpu.get("wall"):
        return
    capacity = cpu["wall"] * (os.cpu_count() or 1)
    shares = ", ".join(
        f"{label} {100 * cpu.get(key, 0.0) / capacity:.0f}%"
        for key, label in (
            ("gunicorn", "gunicorn"),
            ("postgres", "PostgreSQL"),
            ("fake_twilio", "fake Twilio"),
            ("load_generator", "wrk"),
            ("other", "other"),
        )
        if key in cpu
    )
    idle = 100 * (1 - cpu["machine_busy"] / capacity)
    per = ""
    if part.get("ok"):
        per = f"; gunicorn {1000 * cpu['gunicorn'] / part['ok']:.1f} ms CPU per {part_name(name)}"
        if cpu.get("fake_twilio"):
            per += f", fake Twilio {1000 * cpu['fake_twilio'] / part['ok']:.1f} ms"
    print(f"     {name} CPU of {os.cpu_count()} cores: {shares}, idle {idle:.0f}%{per}")


def part_name(name: str) -> str:
    return "complete signup" if name == "signup" else "answer"


def main() -> None:
    """Prepare the database and a token, start gunicorn, warm up, measure, report."""
    args = parse_args()
    where = machine()
    stride = PHONE_SPACE // args.threads
    check_phone_pattern(stride, args.threads)
    prepare_database(fresh=args.fresh)
    token = producer_token()
    runs = []
    with contextlib.ExitStack() as stack:
        env = {"PHONEIN_VERIFY": "off", "PHONEIN_CHALLENGE": "off"}
        if args.verify:
            fake = stack.enter_context(fake_twilio(0.0, 900.0, verify_code=BENCH_CODE))
            env = verify_env(fake["url"])
        stack.enter_context(serve(args.port, log_name="signup_throughput", env=env))
        groups: dict[str, Any] = {
            "gunicorn": lambda: gunicorn_pids(args.port),
            "postgres": postgres_pids,
        }
        if args.verify:
            groups["fake_twilio"] = lambda: [fake["pid"]]
        cpu = CpuShares(groups)
        client = Client(args.port, token)
        bodies: list[Path | None] = [None] * (args.runs + 1)
        if args.verify:
            first = random.randrange(PHONE_SPACE)
            sizes = [max(1, args.bodies // 5)] + [args.bodies] * args.runs
            print(f"solving {sum(sizes)} challenges before the timed runs…", file=sys.stderr)
            for i, size in enumerate(sizes):
                bodies[i] = prepare_bodies(client, size, first, f"{i}")
                first += size
        if args.warmup:
            warm = create_forum(client, "warm-up", live=False)
            signups_wrk(args, args.warmup, warm, stride, bodies[0])
            wrk(args, args.warmup, ["health"])
        for i in range(args.runs):
            runs.append(measure(args, client, stride, f"signups run {i + 1}", bodies[i + 1], cpu))
            run = runs[-1]
            print(
                f"run {i + 1}: {run['signup']['rate']:.1f} signups/s, "
                f"{run['health']['rate']:.1f} healthz/s, ratio {run['ratio']:.2f}",
                file=sys.stderr,
            )
    for path in bodies:
        if path is not None:
            path.unlink(missing_ok=True)
    print_table(runs, args)
    if args.json:
        path = write_json("signup_throughput", {"args": vars(args), "machine": where, "runs": runs})
        print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
