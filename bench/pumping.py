"""Benchmark: the most texts an attacker with 30 client addresses can make phonein send.

What: phonein at its defaults (``PHONEIN_VERIFY=sms`` through Twilio Verify, the real SDK
against the fake Twilio in a process of its own; ``PHONEIN_CHALLENGE=pow``; rate limits on,
``PHONEIN_SIGNUP_RATE_LIMIT=20/minute`` in gunicorn's default ``memory://`` storage;
``PHONEIN_UNVERIFIED_SMS_PER_HOUR=200``; 10 unproved codes an hour per number range) under
``gunicorn -w 2`` on PostgreSQL. Thirty attacker threads, each bound to its own loopback
source address (127.0.0.11 … 127.0.0.40, so the server sees 30 client addresses), loop
until ``--seconds``: fetch a challenge, solve it (the attacker's own CPU), sign up a new
valid UK mobile number in a new number range each time (to dodge the per-range limit), and
ask for the code again by voice call when the signup was accepted. No code is ever entered.

What is counted is what reached Twilio: every Verify send (text or call) the fake accepted,
with its time. The run is bounded; the script extrapolates to an hour from the rate of
sends after the budget was spent (the budget is a sliding hour: once spent, nothing more
leaves until its first sends are an hour old) and compares the result with the budget.
Sends in the first 10 s after the budget was spent are counted apart, not as a rate: they
are requests that had passed the budget's check (a read, not a lock) before it filled.

Usage: ``python bench/pumping.py [--seconds 120] [--port P] [--fresh] [--json]``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import urllib3
from common import (
    ROOT,
    Client,
    create_forum,
    machine,
    prepare_database,
    producer_token,
    serve,
    write_json,
)
from sms_common import fake_twilio

from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, VERIFY_SERVICE_SID

ADDRESSES = [f"127.0.0.{i}" for i in range(11, 41)]
RANGES = list(range(7401, 7600))  # UK mobile ranges +44 74xx/75xx: all valid mobiles
BUDGET = 200  # the default PHONEIN_UNVERIFIED_SMS_PER_HOUR


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the attack")
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the database")
    parser.add_argument("--json", action="store_true", help="write bench/results/*.json")
    return parser.parse_args()


def solve(challenge: dict[str, Any]) -> dict[str, Any]:
    """Solve a proof-of-work challenge the way a browser does."""
    salt, target = challenge["salt"], challenge["challenge"]
    for number in range(int(challenge["maxnumber"]) + 1):
        if hashlib.sha256(f"{salt}{number}".encode()).hexdigest() == target:
            return {
                **{k: challenge[k] for k in ("algorithm", "salt", "signature")},
                "challenge": target,
                "number": number,
            }
    raise RuntimeError("a challenge without a solution")


class Attacker(threading.Thread):
    """One client address: sign up new numbers as fast as the server lets it."""

    def __init__(self, index: int, port: int, slug: str, until: float, counter: Iterator[int]):
        super().__init__(daemon=True)
        self.http = urllib3.HTTPConnectionPool(
            "127.0.0.1",
            port,
            maxsize=1,
            retries=False,
            timeout=30.0,
            source_address=(ADDRESSES[index], 0),
        )
        self.slug, self.until, self.counter = slug, until, counter
        self.answers: Counter[str] = Counter()

    def post(self, path: str, body: dict[str, Any]) -> urllib3.BaseHTTPResponse:
        return self.http.request(
            "POST",
            path,
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )

    def run(self) -> None:
        while time.monotonic() < self.until:
            try:
                got = self.http.request("GET", "/api/v1/challenge")
                if got.status != 200:
                    self.answers[f"challenge {got.status}"] += 1
                    time.sleep(0.5)
                    continue
                n = next(self.counter)
                phone = f"+44 {RANGES[n % len(RANGES)]} {100000 + n // len(RANGES):06d}"
                signup = self.post(
                    f"/api/v1/forums/{self.slug}/signups",
                    {
                        "name": "x",
                        "location": "y",
                        "question": "z",
                        "phone": phone,
                        "sms_consent": True,
                        "challenge": solve(json.loads(got.data)),
                    },
                )
                self.answers[f"signup {signup.status}"] += 1
                if signup.status == 202:
                    vid = json.loads(signup.data)["verification_id"]
                    again = self.post(f"/api/v1/verifications/{vid}/resend", {"channel": "call"})
                    self.answers[f"resend {again.status}"] += 1
                elif signup.status == 429:
                    time.sleep(0.2)  # a real script would not wait long either
            except urllib3.exceptions.HTTPError as error:
                self.answers[f"error {type(error).__name__}"] += 1
                time.sleep(0.2)


def main() -> None:
    """Start the fake and gunicorn at the defaults, attack for a bounded time, report."""
    args = parse_args()
    where = machine()
    prepare_database(fresh=args.fresh)
    token = producer_token()
    with fake_twilio(0.0, args.seconds + 300) as fake:
        env = {
            "PHONEIN_RATELIMIT_ENABLED": "true",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": "+15005550006",
            "TWILIO_VERIFY_SERVICE_SID": VERIFY_SERVICE_SID,
            "PHONEIN_TWILIO_API_URL": fake["url"],
        }
        with serve(args.port, log_name="pumping", env=env):
            slug = create_forum(Client(args.port, token), "pumping", live=False)
            start_wall, start = time.time(), time.monotonic()
            counter = itertools.count()  # next() is atomic under the GIL
            attackers = [
                Attacker(i, args.port, slug, start + args.seconds, counter)
                for i in range(len(ADDRESSES))
            ]
            for attacker in attackers:
                attacker.start()
            for attacker in attackers:
                attacker.join(args.seconds + 60)
            elapsed = time.monotonic() - start
    sends = sorted(s["wall"] - start_wall for s in fake["verify_sends"])
    answers: Counter[str] = Counter()
    for attacker in attackers:
        answers.update(attacker.answers)
    report = summarise(sends, elapsed, answers)
    report.update(machine=where, args=vars(args))
    print_report(report)
    if args.json:
        path = write_json("pumping", report)
        print(f"\nwrote {path.relative_to(ROOT)}")


# Requests already past the budget check when the budget was spent may still send: their
# codes are counted apart, not as a rate.
IN_FLIGHT_S = 10.0


def summarise(sends: list[float], elapsed: float, answers: Counter[str]) -> dict[str, Any]:
    """Texts and calls that reached Twilio, when the budget was spent, and the hour's bound."""
    spent_at = sends[BUDGET - 1] if len(sends) >= BUDGET else None
    settled = (spent_at or 0.0) + IN_FLIGHT_S
    in_flight = [t for t in sends if spent_at is not None and spent_at < t <= settled]
    after = [t for t in sends if spent_at is not None and t > settled]
    tail = elapsed - settled if spent_at is not None else 0.0
    rate_after = len(after) / tail if tail > 0 else 0.0
    # Until the first sends are an hour old, the budget lets through only what the steady
    # rate after it shows; so the hour's bound is what the run sent plus that rate for the
    # rest of the hour. Without the budget spent, the run's own rate is extrapolated.
    if spent_at is None:
        rate_after = len(sends) / elapsed if elapsed else 0.0
    hour = len(sends) + rate_after * max(0.0, 3600 - elapsed)
    return {
        "elapsed_s": round(elapsed, 1),
        "sends": len(sends),
        "budget_spent_after_s": round(spent_at, 1) if spent_at is not None else None,
        "sends_in_flight_when_spent": len(in_flight),
        "sends_after_budget": len(after),
        "rate_after_budget_per_s": round(rate_after, 4),
        "extrapolated_hour": round(hour),
        "budget": BUDGET,
        "answers": dict(sorted(answers.items())),
        "send_times_s": [round(t, 3) for t in sends],
    }


def print_report(report: dict[str, Any]) -> None:
    print(
        f"\n30 client addresses, {report['elapsed_s']} s at the defaults "
        f"(budget {report['budget']}/hour):"
    )
    print(f"  codes that reached Twilio (texts and calls): {report['sends']}")
    print(f"  budget spent after: {report['budget_spent_after_s']} s")
    print(f"  codes within {IN_FLIGHT_S:.0f} s after that: {report['sends_in_flight_when_spent']}")
    print(f"  codes later than that: {report['sends_after_budget']}")
    print(f"  extrapolated to an hour: {report['extrapolated_hour']}")
    print(f"  answers: {report['answers']}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
