"""Benchmark: how fast "next" puts a holding caller on air, relative to GET /healthz.

What: phonein under ``gunicorn -w 2`` on PostgreSQL (database ``phonein_bench``), one live
forum, ``--callers`` listeners queued and holding on the line in the fake Twilio's queue
(``tests/fake_twilio.py``, in this process, talking to gunicorn over loopback exactly as
Twilio would: signed webhooks, TwiML, REST). For each caller in turn the benchmark sends
``POST …/queue/next`` and measures until the fake has that caller in the on-air conference:
phonein's request (queue change, commit, the REST update of the call, the thanks for the
caller before), then the fake fetching ``/on-air`` from gunicorn and joining the conference.
Interleaved ``GET /healthz`` requests give the baseline. The fake answers REST requests at
once, so the figure is phonein's own cost plus two loopback webhook round trips; Twilio's own
latency comes on top in production.

Figures: p50/p95 of next-to-on-air, of the ``next`` request alone, and of healthz; the ratio
p95(next-to-on-air) / p95(healthz). The product's need is the boards' 2 s; the goal here is
p95 next-to-on-air under 0.5 s on this machine.

Usage: ``python bench/voice_switchboard.py [--callers 100] [--json] [--fresh]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from statistics import mean

from common import (
    ROOT,
    Client,
    create_forum,
    machine,
    percentile,
    prepare_database,
    producer_token,
    serve,
    write_json,
)

sys.path.insert(0, str(ROOT))
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

GOAL_SECONDS = 0.5
SHOW = "+15005550006"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callers", type=int, default=100)
    parser.add_argument("--port", type=int, default=8771)
    parser.add_argument("--fresh", action="store_true", help="recreate the bench database")
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    return parser.parse_args()


def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for the fake Twilio")
        time.sleep(0.001)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 50) * 1000, 2),
        "p95_ms": round(percentile(values, 95) * 1000, 2),
        "mean_ms": round(mean(values) * 1000, 2),
    }


def main() -> None:
    args = parse_args()
    base = f"http://127.0.0.1:{args.port}"
    with FakeTwilio() as fake:
        os.environ.update(
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            TWILIO_FROM_NUMBER=SHOW,
            PHONEIN_TWILIO_API_URL=fake.url,
            PHONEIN_PUBLIC_URL=base,
            PHONEIN_SMS_BACKEND="console",
        )
        prepare_database(fresh=args.fresh)
        token = producer_token()
        with serve(args.port, workers=2, log_name="voice") as url:
            assert url == base
            client = Client(args.port, token)
            slug = create_forum(client, "voice", live=True)
            sids = []
            for i in range(args.callers):
                phone = f"+4474009{i:05d}"
                signup = client.expect(
                    201,
                    "POST",
                    f"/api/v1/forums/{slug}/signups",
                    {
                        "name": f"Caller {i}",
                        "location": "Leeds, UK",
                        "phone": phone,
                        "question": "A question for the bench?",
                    },
                )
                client.expect(
                    200, "POST", f"/api/v1/signups/{signup['id']}/screen", {"decision": "approve"}
                )
                queued = {"signup_id": signup["id"]}
                client.expect(200, "POST", f"/api/v1/forums/{slug}/queue", queued)
                voice_url = f"{base}/webhooks/twilio/voice"
                sids.append(fake.incoming_call(phone, SHOW, voice_url=voice_url))
            fake.settle(timeout=60)
            room = f"phonein-{slug}-on-air"
            on_air, requests_only, health = [], [], []
            for sid in sids:
                started = time.perf_counter()
                client.expect(200, "POST", f"/api/v1/forums/{slug}/queue/next")
                requests_only.append(time.perf_counter() - started)
                try:
                    wait_for(lambda sid=sid: sid in fake.conference_participants(room))
                except RuntimeError as error:
                    raise RuntimeError(f"{sid} never went on air: {fake.call(sid)}") from error
                on_air.append(time.perf_counter() - started)
                started = time.perf_counter()
                client.expect(200, "GET", "/healthz")
                health.append(time.perf_counter() - started)
            # Close the forum (so later runs find no stale live forum): nobody is left.
            client.expect(200, "PATCH", f"/api/v1/forums/{slug}", {"status": "closed"})
            fake.settle(timeout=60)
            left_holding = len(fake.queue_members(f"phonein-{slug}"))
    result = {
        "benchmark": "voice_switchboard",
        "callers": args.callers,
        "next_to_on_air": summary(on_air),
        "next_request": summary(requests_only),
        "healthz": summary(health),
        "ratio_p95_on_air_to_healthz": round(percentile(on_air, 95) / percentile(health, 95), 2),
        "goal_p95_on_air_s": GOAL_SECONDS,
        "met": percentile(on_air, 95) < GOAL_SECONDS,
        "left_holding": left_holding,
        "machine": machine(),
    }
    path = write_json("voice_switchboard", result)
    print(
        f"next→on air p50 {result['next_to_on_air']['p50_ms']} ms, "
        f"p95 {result['next_to_on_air']['p95_ms']} ms (goal < {GOAL_SECONDS * 1000:.0f} ms); "
        f"next request p95 {result['next_request']['p95_ms']} ms; "
        f"healthz p95 {result['healthz']['p95_ms']} ms; "
        f"ratio {result['ratio_p95_on_air_to_healthz']}; left holding {left_holding}; {path}"
    )
    if args.json:
        import json

        print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
