"""CPU and SQL statements of one verified signup, in process (issue 9, docs/benchmarks.md §9a).

What: the Flask test client against PostgreSQL (database ``PHONEIN_BENCH_DB``, default
``phonein_bench``, migrated if needed) with the server settings of
``bench/signup_throughput.py --verify``: Twilio Verify through the real SDK at the fake
Twilio (``bench/fake_twilio_server.py``, its own process) and ``PHONEIN_CHALLENGE=pow``.
Challenges are solved before the timed loop. For each of ``--n`` listeners it times
``GET /healthz``, the signup POST (202) and the code entry (201) with ``time.thread_time``
(the request thread's CPU; the fake's CPU is not counted) and counts the statements sent
(a ``before_cursor_execute`` listener). ``--off`` times today's one-POST signup instead
(``PHONEIN_VERIFY=off``, ``PHONEIN_CHALLENGE=off``). ``--profile FILE`` writes a cProfile
of the signup and code requests (timer ``time.thread_time``) for ``pstats``.

It clears ``code_sends`` in the bench database first, so the per-number limits of earlier
runs do not refuse this one's numbers.

Usage: ``python bench/signup_cost.py [--n 200] [--off] [--profile FILE]``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from common import DATABASE_URL, ROOT, Costs, prepare_database
from signup_throughput import BENCH_CODE, verify_env
from sms_common import fake_twilio

sys.path.insert(0, str(ROOT))

from phonein import create_app
from phonein.extensions import db
from tests.conftest import _config, make_forum


def _solve(c: dict[str, Any]) -> dict[str, Any]:
    for n in range(c["maxnumber"] + 1):
        if hashlib.sha256(f"{c['salt']}{n}".encode()).hexdigest() == c["challenge"]:
            return {k: c[k] for k in ("algorithm", "challenge", "salt", "signature")} | {
                "number": n
            }
    raise RuntimeError("a challenge without a solution")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=200, help="listeners timed (after 5 untimed)")
    parser.add_argument("--off", action="store_true", help="PHONEIN_VERIFY=off, CHALLENGE=off")
    parser.add_argument("--profile", help="write a cProfile of the timed requests here")
    args = parser.parse_args()
    prepare_database(fresh=False)
    with fake_twilio(0.0, 900.0, verify_code=BENCH_CODE) as fake:
        extra: dict[str, Any] = {"VERIFY": "off", "CHALLENGE": "off"}
        if not args.off:
            extra = {k.removeprefix("PHONEIN_"): v for k, v in verify_env(fake["url"]).items()}
        config = _config(DATABASE_URL, Path(ROOT / "bench" / "results" / "instance"), **extra)
        del config["SMS_BACKEND"], config["VERIFY_BACKEND"]  # derived, as in the server
        app = create_app(config)
        client = app.test_client()
        with app.app_context():
            db.session.execute(sa.text("DELETE FROM code_sends"))
            db.session.commit()
            slug = make_forum().slug
        total = args.n + 5
        solutions = (
            []
            if args.off
            else [_solve(client.get("/api/v1/challenge").get_json()) for _ in range(total)]
        )
        numbers = itertools.count(int(time.time()) % 900_000)
        costs = Costs(["healthz", "signup", "code"], args.profile)

        def timed(name: str, request: Any, profiled: bool) -> Any:
            return costs.timed(name, request, profiled, ok=(200, 201, 202))

        for i in range(total):
            body: dict[str, Any] = {
                "name": "Dana Whitfield",
                "location": "Newark, NJ, USA",
                "phone": f"+44 7400 {next(numbers) % 10**6:06d}",
                "question": "What about buses?",
                "sms_consent": True,
            }
            if not args.off:
                body["challenge"] = solutions[i]
            on = i >= 5
            timed("healthz", partial(client.get, "/healthz"), False)
            url = f"/api/v1/forums/{slug}/signups"
            signup = timed("signup", partial(client.post, url, json=body), on)
            if not args.off:
                vid = signup.get_json()["verification_id"]
                code = {"code": BENCH_CODE}
                timed("code", partial(client.post, f"/api/v1/verifications/{vid}", json=code), on)
            if i == 4:
                costs.restart()
        costs.report()


if __name__ == "__main__":
    main()
