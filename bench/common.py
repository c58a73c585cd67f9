"""Shared plumbing for the phonein benchmarks: database, staff token, gunicorn, HTTP client.

Everything here talks to 127.0.0.1 only. The benchmarks use their own PostgreSQL database,
``phonein_bench`` (never ``test``, which belongs to the test suite), and start gunicorn in a
process group of its own so that ``serve`` can always stop every process it started.
"""

from __future__ import annotations

import contextlib
import cProfile
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
import urllib3

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# PHONEIN_BENCH_DB: another database name, so that benchmarks run side by side don't share one.
DB_NAME = os.environ.get("PHONEIN_BENCH_DB", "phonein_bench")
ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
BENCH_DSN = f"host=127.0.0.1 port=5432 user=postgres dbname={DB_NAME}"
DATABASE_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB_NAME}"


def app_env() -> dict[str, str]:
    """Return the environment the app, its CLI and gunicorn run with."""
    env = dict(os.environ)
    env.update(
        PHONEIN_DATABASE_URL=DATABASE_URL,
        PHONEIN_SECRET_KEY=_secret_key(),
        PHONEIN_RATELIMIT_ENABLED="false",
    )
    return env


_SECRET: list[str] = []


def _secret_key() -> str:
    """Return one random secret per benchmark process (64 characters)."""
    if not _SECRET:
        _SECRET.append(secrets.token_urlsafe(48))
    return _SECRET[0]


def prepare_database(*, fresh: bool) -> None:
    """Create ``phonein_bench`` if missing (dropping it first when ``fresh``), then migrate."""
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        if fresh:
            conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if not exists:
            conn.execute(f"CREATE DATABASE {DB_NAME}")
    run_cli(["db", "upgrade"])


def run_cli(args: list[str], stdin: str | None = None) -> str:
    """Run ``phonein ARGS`` from the project root with the benchmark environment."""
    done = subprocess.run(
        ["phonein", *args],
        cwd=ROOT,
        env=app_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"phonein {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def producer_token() -> str:
    """Create a producer with a random email and return a new API token for it."""
    email = f"bench-{secrets.token_hex(4)}@example.org"
    run_cli(["users", "add", email, "--role", "producer", "--password-stdin"], secrets.token_hex(8))
    return run_cli(["tokens", "create", email]).strip()


@contextlib.contextmanager
def serve(
    port: int,
    workers: int = 2,
    log_name: str = "gunicorn",
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Run ``gunicorn -w WORKERS wsgi:app`` on 127.0.0.1:PORT; yield its base URL.

    ``env`` adds to (or overrides) the benchmark environment of ``app_env``.

    gunicorn runs in a new session (its own process group); on exit the whole group gets
    SIGTERM, then SIGKILL if it has not stopped after 10 s.
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = (RESULTS / f"{log_name}-{port}.log").open("w")
    command = [
        shutil.which("gunicorn") or "gunicorn",
        "-w",
        str(workers),
        "-b",
        f"127.0.0.1:{port}",
        "wsgi:app",
    ]
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**app_env(), **(env or {})},
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(port, proc)
        yield base
    finally:
        _stop_group(proc)
        log.close()


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Poll GET /healthz until it answers 200; fail if gunicorn exits or time runs out."""
    http = urllib3.HTTPConnectionPool("127.0.0.1", port, retries=False, timeout=2.0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}; see bench/results/")
        with contextlib.suppress(urllib3.exceptions.HTTPError):
            if http.request("GET", "/healthz").status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer /healthz on port {port} within {timeout} s")


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop the process group that ``proc`` leads: SIGTERM, then SIGKILL after 10 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class Client:
    """A JSON client on one keep-alive connection (urllib3 reconnects when the server closes)."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.http = urllib3.HTTPConnectionPool(
            "127.0.0.1", port, maxsize=1, block=True, retries=False, timeout=30.0
        )
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Send one request; return (status, decoded JSON or None)."""
        data = None if body is None else json.dumps(body).encode()
        response = self.http.request(method, path, body=data, headers=self.headers)
        try:
            payload = json.loads(response.data) if response.data else None
        except ValueError:
            payload = None
        return response.status, payload

    def expect(self, status: int, method: str, path: str, body: Any = None) -> Any:
        """Send one request and fail unless it answers ``status``; return the JSON."""
        got, payload = self.call(method, path, body)
        if got != status:
            raise RuntimeError(f"{method} {path} answered {got}, wanted {status}: {payload}")
        return payload


def create_forum(client: Client, label: str, *, live: bool) -> str:
    """Create a forum starting tomorrow (and start it now when ``live``); return its slug."""
    starts = datetime.now(UTC) + timedelta(days=1)
    forum = client.expect(
        201,
        "POST",
        "/api/v1/forums",
        {
            "title": f"Bench {label} {secrets.token_hex(4)}",
            "starts_at": starts.isoformat(timespec="seconds"),
            "duration_minutes": 240,
            "timezone": "Europe/London",
        },
    )
    slug = forum["slug"]
    if live:
        client.expect(200, "PATCH", f"/api/v1/forums/{slug}", {"status": "live"})
    return slug


def forum_id(slug: str) -> int:
    """Return the database id of the forum ``slug``."""
    with psycopg.connect(BENCH_DSN) as conn:
        row = conn.execute("SELECT id FROM forums WHERE slug = %s", (slug,)).fetchone()
    if row is None:
        raise RuntimeError(f"no forum {slug}")
    return int(row[0])


def percentile(values: list[float], pct: float) -> float:
    """Return the ``pct`` percentile of ``values`` (nearest rank, like most load tools)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.4999)))
    return ordered[rank - 1]


def _proc_cpu(pid: int) -> float:
    """Return the CPU seconds (user + system) process ``pid`` has used; 0.0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _machine_busy() -> float:
    """Return the CPU seconds every core of the machine has been busy (from /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class CpuShares:
    """CPU used during a measurement window by the processes of a benchmark, from /proc.

    ``groups`` maps a name to a function returning the pids to count (asked at the start
    and at the end, so workers that appear in between count from their first sample);
    ``children`` adds the CPU of waited-for child processes (wrk, run to completion in the
    window) from getrusage. ``other`` is the rest of the machine's busy time: other
    sessions, and this script itself.
    """

    def __init__(self, groups: dict[str, Any]) -> None:
        self.groups = groups

    def _sample(self) -> dict[str, Any]:
        import resource

        pids = {name: set(find()) for name, find in self.groups.items()}
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "pids": pids,
            "cpu": {name: {pid: _proc_cpu(pid) for pid in found} for name, found in pids.items()},
            "children": children.ru_utime + children.ru_stime,
            "busy": _machine_busy(),
            "wall": time.monotonic(),
        }

    @contextlib.contextmanager
    def window(self) -> Iterator[dict[str, Any]]:
        """Measure the body's window; fill the yielded dict with CPU seconds by group."""
        found: dict[str, Any] = {}
        start = self._sample()
        yield found
        end = self._sample()
        for name in self.groups:
            before = start["cpu"][name]
            found[name] = sum(cpu - before.get(pid, 0.0) for pid, cpu in end["cpu"][name].items())
        found["load_generator"] = end["children"] - start["children"]
        found["machine_busy"] = end["busy"] - start["busy"]
        found["other"] = found["machine_busy"] - sum(
            found[name] for name in [*self.groups, "load_generator"]
        )
        found["wall"] = end["wall"] - start["wall"]


def gunicorn_pids(port: int) -> list[int]:
    """Return the pids of the gunicorn master and workers serving 127.0.0.1:``port``."""
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and "gunicorn" in (line := _cmdline(int(entry.name)))
        and f"127.0.0.1:{port}" in line
    ]


def postgres_pids(database: str = DB_NAME) -> list[int]:
    """Return the pids of the PostgreSQL backends connected to ``database``."""
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and (line := _cmdline(int(entry.name))).startswith("postgres: ")
        and f" {database} " in f" {line} "
    ]


def machine() -> dict[str, Any]:
    """Describe where the benchmark ran."""
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
    }


def write_json(name: str, data: dict[str, Any]) -> Path:
    """Write ``data`` to bench/results/NAME-TIMESTAMP.json and return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


class Costs:
    """What the in-process cost scripts (``signup_cost.py``, ``queue_cost.py``) measure of
    each request: the request thread's CPU (``time.thread_time``, so neither the
    database's time nor another process's counts) and the statements it sent; with
    ``profile_to``, a cProfile of the requests timed as ``profiled``."""

    def __init__(self, names: list[str], profile_to: str | None = None) -> None:
        self.cpu: dict[str, list[float]] = {name: [] for name in names}
        self.statements: dict[str, list[int]] = {name: [] for name in names}
        self.profile_to = profile_to
        self.profile = cProfile.Profile(time.thread_time) if profile_to else None
        self.sent = 0
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", self._count)

    def _count(self, *_: Any, **__: Any) -> None:
        self.sent += 1

    def timed(self, name: str, request: Any, profiled: bool, ok: tuple[int, ...] = (200,)) -> Any:
        """Run ``request`` (a test-client call), note its CPU and statements; return it."""
        self.sent = 0
        if profiled and self.profile:
            self.profile.enable()
        started = time.thread_time()
        response = request()
        spent = time.thread_time() - started
        if profiled and self.profile:
            self.profile.disable()
        if response.status_code not in ok:
            raise RuntimeError(f"{name}: {response.status_code} {response.get_data()!r}")
        self.cpu[name].append(spent * 1000)
        self.statements[name].append(self.sent)
        return response

    def restart(self) -> None:
        """Forget what the warm-up measured."""
        for name in self.cpu:
            self.cpu[name].clear()
            self.statements[name].clear()

    def report(self) -> None:
        """Print each request's statements and CPU (median, p10, min); write the profile."""
        for name, times in self.cpu.items():
            if not times:
                continue
            # The 10th percentile moves least when other processes share the cores.
            p10 = statistics.quantiles(times, n=10)[0] if len(times) > 1 else times[0]
            print(
                f"{name:8s} statements {statistics.median(self.statements[name]):g}  CPU ms "
                f"median {statistics.median(times):.2f}  p10 {p10:.2f}  "
                f"min {min(times):.2f}  (n={len(times)})"
            )
        if self.profile and self.profile_to:
            self.profile.dump_stats(self.profile_to)
