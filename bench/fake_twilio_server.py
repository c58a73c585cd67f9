"""Run tests/fake_twilio.py's FakeTwilio in a process of its own, for the SMS benchmarks.

Prints its base URL (``http://127.0.0.1:PORT``) on the first line of stdout, serves until
SIGTERM or SIGINT (or ``--max-seconds``, a safety bound), then writes every accepted
message to ``--out`` as JSON: ``to``, ``wall`` (time.time() on arrival, comparable
with other processes' clocks on this machine) and ``mono`` (time.monotonic() in this
process, the fake's own ``_created``), plus the list of rejected attempts and every code
Verify sent (``verify_sends``: to, channel, wall).

Running the fake apart from the benchmark keeps its timestamps free of the benchmark's own
Python work (the GIL), which would otherwise delay the fake's request threads.

Usage: ``python bench/fake_twilio_server.py --latency 0.15 --out FILE [--max-seconds 900]
[--verify-code 123456]``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.fake_twilio import FakeTwilio, Faults  # noqa: E402


def main() -> None:
    """Serve until told to stop, then dump what was accepted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to a create")
    parser.add_argument("--out", type=Path, required=True, help="JSON file written at the end")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="stop after this long")
    parser.add_argument(
        "--verify-code", default=None, help="the code Verify sends every number (default: random)"
    )
    args = parser.parse_args()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    faults = Faults(latency=args.latency, verify_code=args.verify_code)
    with FakeTwilio(faults=faults) as fake:
        print(fake.url, flush=True)
        stop.wait(args.max_seconds)
        with fake.lock:
            messages = [
                {"to": m["to"], "wall": m["_arrived_wall"], "mono": m["_created"]}
                for m in fake.messages
            ]
            rejected = list(fake.rejected)
            # Verify's sends (codes by text or call), each with its wall-clock time.
            verify_sends = [
                {"to": c["to"], "channel": c["channel"], "wall": c["wall"]} for c in fake.codes_sent
            ]
            attempts = fake.attempts
    args.out.write_text(
        json.dumps(
            {
                "messages": messages,
                "rejected": rejected,
                "attempts": attempts,
                "verify_sends": verify_sends,
            }
        )
    )


if __name__ == "__main__":
    main()
