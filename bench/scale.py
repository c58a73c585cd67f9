"""Benchmark 7: one forum of 100,000 signups, relative to GET /healthz.

What: phonein under ``gunicorn -w 2`` on PostgreSQL, in this benchmark's own database
(``phonein_scale`` by default, created or migrated first; ``--fresh`` drops it). One forum
gets 100,000 signups in one ``INSERT ... SELECT generate_series`` (5,000 queued, 20,000
approved, 10,000 rejected, the rest pending; stances, ratings and consents spread over
the screened ones; names from 50 first names, some accented, and 50 surnames; 40
cities; a question with a random part), then ``VACUUM ANALYZE``. One client sends sequential
requests (urllib3; gunicorn's sync workers close the connection after each answer, so
every request pays a loopback connect, all kinds alike).

Phase 1, the forum live, rounds of (shuffled):

* ``healthz``: ``GET /healthz``, the baseline;
* ``search``: ``GET /api/v1/forums/SLUG/signups?q=…`` with a producer's kind of query:
  a first name without its accents ("joao"), a full name, a city, or a phone number
  typed nationally with spaces ("07400 012345");
* ``list``: ``GET …/signups?page=N`` (N in 1..20, 50 a page), half with ``status=approved``;
* ``list_after``: the same pages reached by keyset, ``GET …/signups?after=ID`` (the
  ``next_after`` cursors of pages 1..19, collected untimed before the rounds), half with
  ``status=approved``;
* ``queue``: ``GET …/queue?limit=50``, what the producers' board asks for (5,000 queued);
* ``queue_304``: the same with ``If-None-Match`` of the last answer: the unchanged poll.
  When the minute turns the tag changes (back-timing runs on the minute): that answer
  is a 200, not counted, and its tag is used from then on.

Phase 2, the forum closed and published (its page shows the selection and the balance
of opinion), rounds of ``healthz`` and ``balance``: ``GET /forums/SLUG``, the public page.

Also, for reference and outside the goals: ``GET …/queue`` without ``limit`` (all 5,000).

Figures of merit: p95 of each ÷ p95 of healthz in the same phase; goal <= 5, and
``queue_304`` <= 1.5.

Usage: ``python bench/scale.py [--count 300] [--json]``;
``python bench/scale.py --queue-ops [queue_ops.py's options]`` runs bench/queue_ops.py
against this benchmark's database instead of ``phonein_bench``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import unicodedata
from statistics import mean
from typing import Any
from urllib.parse import urlencode

import common
import psycopg

GOAL = 5.0
GOAL_304 = 1.5
SIGNUPS = 100_000
PHASE1 = ("healthz", "search", "list", "list_after", "queue", "queue_304")
PHASE2 = ("healthz", "balance")
SEARCH_KINDS = ("first_name", "full_name", "city", "phone")

FIRST = [
    "João", "Anna", "Änna", "José", "Zoë", "Chloé", "Renée", "Søren", "Maria", "Mária",
    "Ana", "Björn", "Émile", "François", "Núria", "Łukasz", "Jürgen", "Inès", "Siân", "Aoife",
    "Oliver", "Amelia", "Noah", "Isla", "Jack", "Ava", "Leo", "Mia", "Arthur", "Ivy",
    "Oscar", "Lily", "Harry", "Rosie", "George", "Freya", "Theo", "Grace", "Alfie", "Emily",
    "Muhammad", "Aisha", "Kwame", "Ngozi", "Hiroshi", "Yuki", "Priya", "Arjun", "Chen", "Mei",
]  # fmt: skip
LAST = [
    "Silva", "Pereira", "Müller", "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson",
    "Johnson", "Davies", "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts",
    "Green", "Hall", "Wood", "Jackson", "Clarke", "Patel", "Khan", "Lewis", "James", "Phillips",
    "Mason", "Mitchell", "Rose", "Davis", "Rodríguez", "Cox", "Alexander", "Garden", "Campbell",
    "Johnston", "Moore", "Smyth", "O'Neill", "Doherty", "Stewart", "Quinn", "Murphy", "Graham",
    "Mclaughlin", "Hamilton", "Murray", "Hughes",
]  # fmt: skip
CITIES = [
    "Leeds", "London", "Glasgow", "Cardiff", "Belfast", "Lisbon", "Porto", "São Paulo", "Zürich",
    "Malmö", "Kraków", "Reykjavík", "Montréal", "Bogotá", "Córdoba", "Nairobi", "Lagos", "Accra",
    "Mumbai", "Delhi", "Osaka", "Tokyo", "Seoul", "Sydney", "Perth", "Auckland", "Boston",
    "Chicago", "Austin", "Denver", "Seattle", "Toronto", "Dublin", "Cork", "Galway", "Bristol",
    "York", "Bath", "Oxford", "Cambridge",
]  # fmt: skip
TOPICS = [
    "night buses", "rents", "the river", "schools", "trams", "cycle lanes", "parks", "libraries",
    "hospitals", "the stadium", "street lights", "markets", "bins", "trains", "the airport",
    "housing", "noise", "flooding", "the high street", "the bridge",
]  # fmt: skip


def folded(values: list[str]) -> list[str]:
    """Fold ``values`` as phonein stores them for search (``signups.search_text``)."""
    from phonein.search import fold

    return [fold(value) for value in values]


def sql_array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def use_database(name: str) -> None:
    """Point bench/common.py (and modules that imported its names) at database ``name``."""
    common.DB_NAME = name
    common.BENCH_DSN = f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
    common.DATABASE_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    for module in list(sys.modules.values()):
        if getattr(module, "BENCH_DSN", None) is not None and module is not common:
            module.BENCH_DSN = common.BENCH_DSN


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=300, help="requests of each kind")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds first")
    parser.add_argument("--full-queue", type=int, default=20, help="unlimited queue GETs")
    parser.add_argument("--signups", type=int, default=SIGNUPS)
    parser.add_argument("--database", default="phonein_scale")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--port", type=int, default=8777)
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the database")
    parser.add_argument("--json", action="store_true", help="write bench/results/*.json")
    return parser.parse_args(argv)


def load_signups(slug: str, total: int) -> None:
    """Insert ``total`` signups into forum ``slug`` (see the module's docstring)."""
    fid = common.forum_id(slug)
    started = time.perf_counter()
    with psycopg.connect(common.BENCH_DSN) as conn:
        conn.execute(
            f"""
            INSERT INTO signups (
                forum_id, name, location, phone, country, question, sms_consent,
                publish_consent, timezone, status, stance, rating, queue_key, published,
                publish_order, created_at, updated_at, screened_at, search_text)
            SELECT %(forum)s,
                   ({sql_array(FIRST)})[1 + (i * 7) %% 50] || ' '
                       || ({sql_array(LAST)})[1 + (i * 13) %% 50],
                   ({sql_array(CITIES)})[1 + (i * 11) %% 40] || ', somewhere',
                   '+447400' || lpad(i::text, 6, '0'), 'GB',
                   'Question ' || i || ' about ' || ({sql_array(TOPICS)})[1 + i %% 20]
                       || ': ' || md5(i::text) || ' ' || md5((i * 31)::text),
                   true, i %% 2 = 0, 'Europe/London',
                   CASE WHEN i <= 5000 THEN 'queued' WHEN i <= 25000 THEN 'approved'
                        WHEN i <= 35000 THEN 'rejected' ELSE 'pending' END,
                   CASE WHEN i <= 35000
                        THEN (ARRAY['for', 'against', 'neutral', 'other'])[1 + i %% 4] END,
                   CASE WHEN i <= 35000 AND i %% 3 <> 0 THEN 1 + i %% 5 END,
                   CASE WHEN i <= 5000 THEN i::bigint << 20 END,
                   i <= 35000 AND i %% 1000 = 0,
                   CASE WHEN i <= 35000 AND i %% 1000 = 0 THEN i / 1000 END,
                   now() - (%(total)s - i) * interval '1 second',
                   now() - (%(total)s - i) * interval '1 second',
                   CASE WHEN i <= 35000 THEN now() END,
                   -- What phonein.search.searchable stores (the question is ASCII).
                   ({sql_array(folded(FIRST))})[1 + (i * 7) %% 50] || ' '
                       || ({sql_array(folded(LAST))})[1 + (i * 13) %% 50] || ' '
                       || ({sql_array(folded(CITIES))})[1 + (i * 11) %% 40] || ', somewhere '
                       || 'question ' || i || ' about ' || ({sql_array(TOPICS)})[1 + i %% 20]
                       || ': ' || md5(i::text) || ' ' || md5((i * 31)::text)
            FROM generate_series(1, %(total)s) AS i
            """,
            {"forum": fid, "total": total},
        )
        conn.commit()
    with psycopg.connect(common.BENCH_DSN, autocommit=True) as conn:
        # What autovacuum does to a table that filled over days: statistics, and the
        # visibility map that lets counts read only the index.
        conn.execute("VACUUM ANALYZE signups")
    print(f"loaded {total} signups in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    from phonein.search import searchable

    with psycopg.connect(common.BENCH_DSN) as conn:
        rows = conn.execute(
            "SELECT name, location, question, search_text FROM signups WHERE forum_id = %s "
            "ORDER BY random() LIMIT 200",
            (fid,),
        ).fetchall()
    for name, location, question, stored in rows:
        wanted = searchable({"name": name, "location": location, "question": question})
        if stored != wanted:
            raise RuntimeError(f"search_text {stored!r} is not what phonein stores: {wanted!r}")


class Driver:
    """Sends one request of a kind and returns its latency in milliseconds."""

    def __init__(self, client: common.Client, slug: str, rng: random.Random) -> None:
        self.client = client
        self.slug = slug
        self.rng = rng
        self.tag: str | None = None
        self.refreshed = 0  # queue_304 rounds that met a new minute (200, not counted)
        self.search_kinds: dict[str, list[float]] = {}  # every search, warm-up too
        self.cursors: list[str] = []  # "after=ID[&status=approved]" of pages 2..20

    def walk(self) -> None:
        """Follow ``next_after`` through 20 pages, with and without a status (untimed)."""
        api = f"/api/v1/forums/{self.slug}/signups?per_page=50"
        for extra in ("", "&status=approved"):
            after = None
            for _ in range(19):
                cursor = f"&after={after}" if after else ""
                _, response, _ = self._get(api + extra + cursor)
                after = json.loads(response.data)["next_after"]
                self.cursors.append(f"after={after}{extra}")

    def _get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, float]:
        start = time.perf_counter()
        response = self.client.http.request(
            "GET", path, headers={**self.client.headers, **(headers or {})}
        )
        elapsed = (time.perf_counter() - start) * 1000
        return response.status, response, elapsed

    def search_query(self) -> tuple[str, str]:
        """Return (kind, query): a producer's kind of search."""
        kind = self.rng.choice(SEARCH_KINDS)
        if kind == "first_name":  # typed without its accents: 2% of the forum match
            first = self.rng.choice(FIRST)
            folded = unicodedata.normalize("NFKD", first)
            return kind, "".join(c for c in folded if not unicodedata.combining(c)).lower()
        if kind == "full_name":
            return kind, f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"
        if kind == "city":  # 2.5% of the forum match
            return kind, self.rng.choice(CITIES)
        n = self.rng.randint(1, SIGNUPS)
        return kind, f"07400 {n:06d}"

    def run(self, op: str) -> float | None:
        """Send ``op``; return its latency in ms, or None when it is not a sample."""
        api = f"/api/v1/forums/{self.slug}"
        if op == "healthz":
            status, _, ms = self._get("/healthz")
        elif op == "search":
            kind, q = self.search_query()
            status, _, ms = self._get(f"{api}/signups?" + urlencode({"q": q}))
            self.search_kinds.setdefault(kind, []).append(ms)
        elif op == "list":
            page = self.rng.randint(1, 20)
            extra = "&status=approved" if self.rng.random() < 0.5 else ""
            status, _, ms = self._get(f"{api}/signups?page={page}&per_page=50{extra}")
        elif op == "list_after":
            cursor = self.rng.choice(self.cursors)
            status, _, ms = self._get(f"{api}/signups?per_page=50&{cursor}")
        elif op == "queue":
            status, response, ms = self._get(f"{api}/queue?limit=50")
            self.tag = response.headers.get("ETag")
        elif op == "queue_full":
            status, _, ms = self._get(f"{api}/queue")
        elif op == "queue_304":
            if self.tag is None:
                self.run("queue")
            status, response, ms = self._get(
                f"{api}/queue?limit=50", {"If-None-Match": self.tag or ""}
            )
            if status == 200:  # the minute turned: a new tag, not an unchanged poll
                self.tag = response.headers.get("ETag")
                self.refreshed += 1
                return None
            if status != 304:
                raise RuntimeError(f"queue_304 answered {status}")
            return ms
        elif op == "balance":
            status, response, ms = self._get(f"/forums/{self.slug}")
            if b"balance" not in response.data.lower():
                raise RuntimeError("the published page shows no balance of opinion")
        else:
            raise ValueError(op)
        if status != 200:
            raise RuntimeError(f"{op} answered {status}")
        return ms


def measure(
    driver: Driver, ops: tuple[str, ...], count: int, warmup: int
) -> dict[str, list[float]]:
    """Run ``warmup`` untimed rounds, then ``count`` shuffled rounds of ``ops``."""
    samples: dict[str, list[float]] = {op: [] for op in ops}
    for _ in range(warmup):
        for op in ops:
            driver.run(op)
    while min(len(v) for v in samples.values()) < count:
        order = list(ops)
        driver.rng.shuffle(order)
        for op in order:
            if len(samples[op]) < count:
                ms = driver.run(op)
                if ms is not None:
                    samples[op].append(ms)
    return samples


def summarize(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    stats = {
        op: {
            "n": len(values),
            "p50": common.percentile(values, 50),
            "p95": common.percentile(values, 95),
            "mean": mean(values),
            "max": max(values),
        }
        for op, values in samples.items()
    }
    for op, s in stats.items():
        if op != "healthz" and "healthz" in stats:
            s["ratio_p95"] = s["p95"] / stats["healthz"]["p95"]
    return stats


def print_table(title: str, stats: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    header = (
        f"{'request':<11} {'n':>4} {'p50 ms':>7} {'p95 ms':>7} {'mean ms':>7} "
        f"{'max ms':>8} {'p95/healthz':>11}  goal"
    )
    print(header)
    print("-" * len(header))
    for op, s in stats.items():
        ratio = s.get("ratio_p95")
        goal = GOAL_304 if op == "queue_304" else GOAL
        verdict = (
            "" if ratio is None else (f"<= {goal}: " + ("met" if ratio <= goal else "NOT met"))
        )
        if op == "queue_full":
            verdict = "(reference, no goal)"
        ratio_text = "" if ratio is None else f"{ratio:.2f}"
        print(
            f"{op:<11} {s['n']:>4} {s['p50']:>7.2f} {s['p95']:>7.2f} {s['mean']:>7.2f} "
            f"{s['max']:>8.2f} {ratio_text:>11}  {verdict}"
        )


def main(argv: list[str]) -> None:
    if argv[:1] == ["--queue-ops"]:
        rest = argv[1:]
        database = "phonein_scale"
        if "--database" in rest:
            i = rest.index("--database")
            database = rest[i + 1]
            del rest[i : i + 2]
        import queue_ops

        use_database(database)
        sys.argv = ["queue_ops.py", *rest]
        queue_ops.main()
        return
    args = parse_args(argv)
    use_database(args.database)
    where = common.machine()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    common.prepare_database(fresh=args.fresh)
    token = common.producer_token()
    with common.serve(args.port, log_name="scale"):
        client = common.Client(args.port, token)
        slug = common.create_forum(client, "scale", live=True)
        load_signups(slug, args.signups)
        driver = Driver(client, slug, rng)
        driver.walk()
        live = measure(driver, PHASE1, args.count, args.warmup)
        full = [driver.run("queue_full") or 0.0 for _ in range(args.full_queue)]
        client.expect(200, "PATCH", f"/api/v1/forums/{slug}", {"status": "closed"})
        client.expect(200, "PATCH", f"/api/v1/forums/{slug}", {"status": "published"})
        published = measure(driver, PHASE2, args.count, args.warmup)
    stats1 = summarize({**live, "queue_full": full})
    stats2 = summarize(published)
    print(
        f"forum {slug}; seed {seed}; new minutes met by queue_304: {driver.refreshed}",
        file=sys.stderr,
    )
    title = (
        f"{args.count} sequential requests of each kind, one client, gunicorn -w 2, "
        f"PostgreSQL; one forum of {args.signups} signups (5,000 queued)"
    )
    print_table(title + "\nphase 1: the forum live", stats1)
    print_table("phase 2: the forum published (public page: selection and balance)", stats2)
    print("\nsearch by kind of query (all searches, warm-up included):")
    for kind, values in sorted(driver.search_kinds.items()):
        print(
            f"  {kind:<11} n={len(values):>4}  p50 {common.percentile(values, 50):7.2f} ms"
            f"  p95 {common.percentile(values, 95):7.2f} ms"
        )
    if args.json:
        path = common.write_json(
            "scale",
            {
                "args": vars(args),
                "seed": seed,
                "machine": where,
                "forum": slug,
                "live": stats1,
                "published": stats2,
                "samples_ms": {"live": live, "queue_full": full, "published": published},
                "search_by_kind_ms": driver.search_kinds,
            },
        )
        print(f"\nwrote {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
