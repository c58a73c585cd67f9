"""CPU and SQL statements of the queue's busiest writes, in process (issue 10, §7).

What: the Flask test client against PostgreSQL (database ``PHONEIN_BENCH_DB``, default
``phonein_bench``, migrated if needed), a live forum with 4,000 queued and 1,000 approved
signups inserted as ``bench/queue_ops.py`` does. For each of ``--n`` rounds it times
``GET /healthz``, ``POST …/queue/next`` and a move (``POST …/queue`` with a random queued
``signup_id`` and a random position) with ``time.thread_time`` (the request thread's CPU:
what the server spends, without the database's or the client's wait), and counts the
statements sent. ``--finish`` times ``POST …/queue/finish`` as well (each after a next).
``--profile FILE`` writes a cProfile of the timed queue requests (timer
``time.thread_time``) for ``pstats``.

To compare two trees, run each tree's copy of this script in turn, several times
(the medians move with what else runs on the machine).

Usage: ``python bench/queue_cost.py [--n 200] [--finish] [--profile FILE]``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import timedelta
from functools import partial
from pathlib import Path

from common import DATABASE_URL, ROOT, Costs, prepare_database
from queue_ops import load_signups, queued_ids

sys.path.insert(0, str(ROOT))

from phonein import create_app
from phonein.times import utcnow
from tests.conftest import _config, bearer, make_forum, make_user


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=200, help="rounds timed (after 10 untimed)")
    parser.add_argument("--queued", type=int, default=4000)
    parser.add_argument("--approved", type=int, default=1000)
    parser.add_argument("--finish", action="store_true", help="time a finish after each next")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", help="write a cProfile of the timed requests here")
    args = parser.parse_args()
    warmup = 10
    if (args.n + warmup) > args.queued:
        raise SystemExit("--queued must exceed --n + 10: each round takes one caller")
    prepare_database(fresh=False)
    config = _config(DATABASE_URL, Path(ROOT / "bench" / "results" / "instance"))
    app = create_app(config)
    client = app.test_client()
    with app.app_context():
        now = utcnow()
        forum = make_forum(starts_at=now - timedelta(minutes=5), now=now)
        slug = forum.slug
        headers = bearer(make_user("producer", f"queue-cost-{time.time_ns()}@example.org")[1])
    load_signups(slug, args.queued, args.approved)
    rng = random.Random(args.seed)
    queued = queued_ids(slug)
    ops = ["healthz", "next", "move"] + (["finish"] if args.finish else [])
    costs = Costs(ops, args.profile)
    timed = costs.timed
    url = f"/api/v1/forums/{slug}/queue"

    for i in range(args.n + warmup):
        on = i >= warmup
        timed("healthz", partial(client.get, "/healthz"), False)
        stepped = timed("next", partial(client.post, f"{url}/next", headers=headers), on)
        up = stepped.get_json()["on_air"]
        if up is not None:
            queued.remove(up["id"])
        target, position = rng.choice(queued), rng.randint(1, len(queued))
        body = {"signup_id": target, "position": position}
        moved = timed("move", partial(client.post, url, json=body, headers=headers), on)
        if moved.get_json()["position"] != position:
            raise RuntimeError(f"move to {position} landed at {moved.get_json()['position']}")
        if args.finish:
            timed("finish", partial(client.post, f"{url}/finish", headers=headers), on)
        if i == warmup - 1:
            costs.restart()
    costs.report()


if __name__ == "__main__":
    main()
