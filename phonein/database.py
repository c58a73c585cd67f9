"""The database: engine set-up per dialect, the one commit path, and the health check.

Operations may flush but never commit. A view (or a CLI command, or a scheduler tick)
commits once through ``commit``, which then runs the work operations registered with
``after_commit`` during the unit of work: requests to Twilio that must follow the commit
of their cause, never precede it. A rollback forgets them.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from flask import Flask, current_app, g
from psycopg.pq import TransactionStatus
from sqlalchemy.dialects import postgresql, sqlite

from .extensions import db
from .times import UTCDateTime, utcnow

log = logging.getLogger("phonein.database")
ACTIVE = TransactionStatus.ACTIVE
ZERO = timedelta(0)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the boards read while a producer writes; the busy timeout makes a second
    # writer wait its turn instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def init_app(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        elif engine.dialect.name == "postgresql":
            _postgresql_timeouts(
                engine,
                connect=float(app.config["DATABASE_CONNECT_TIMEOUT"]),
                statement=float(app.config["DATABASE_STATEMENT_TIMEOUT"]),
            )
            _keep_prepared(engine)
    app.extensions["phonein_probe"] = _Probe(app)


def _postgresql_timeouts(engine: sa.Engine, *, connect: float, statement: float) -> None:
    """Bound every wait on PostgreSQL: connecting, and each statement and commit.

    The server cancels a statement that runs past ``statement_timeout``; that cannot help
    when the server (or the network to it) does not answer at all, so a watchdog thread
    also cuts, from this side, a connection stuck in one request for longer than that
    plus ``WATCHDOG_GRACE``: the request fails at once (503), the pool drops the
    connection, and the next request connects afresh once the database is back.
    """

    def parameters(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        # libpq counts whole seconds, and at least 2.
        cparams.setdefault("connect_timeout", max(2, math.ceil(connect)))
        options = f"-c statement_timeout={int(statement * 1000)}"
        cparams["options"] = f"{cparams.get('options', '')} {options}".strip()

    sa.event.listen(engine, "do_connect", parameters)
    limit = statement + WATCHDOG_GRACE

    def watched(dbapi_connection: Any, _record: Any) -> None:
        _watchdog().watch(dbapi_connection, limit)

    def step(connection: sa.Connection, *_args: Any) -> None:
        try:
            dbapi_connection = connection.connection.dbapi_connection
        except sa.exc.SQLAlchemyError:  # invalidated: nothing left to watch
            return
        _watchdog().step(dbapi_connection)

    def pooled(dbapi_connection: Any, *_args: Any) -> None:
        _watchdog().step(dbapi_connection)

    sa.event.listen(engine, "connect", watched)
    for event in ("checkout", "checkin"):
        sa.event.listen(engine.pool, event, pooled)
    for event in ("before_cursor_execute", "commit", "rollback"):
        sa.event.listen(engine, event, step)


# A statement's client-side limit is the server's statement_timeout plus this: the
# server's own cancel, which keeps the connection, gets the first chance.
WATCHDOG_GRACE = 1.0


# What a statement that only reads starts with; anything else (INSERT, UPDATE, DELETE, a
# data-modifying WITH, SET) counts as a write.
_READS = ("SELECT", "SHOW")
_WROTE = "phonein_wrote"


def _keep_prepared(engine: sa.Engine) -> None:
    """End a transaction that only read with COMMIT, not ROLLBACK.

    psycopg prepares a statement on the server once it has run five times on a connection
    (planned once, then only bound and run), but forgets every prepared statement at each
    ROLLBACK, and sends DEALLOCATE ALL: a rollback may undo what they refer to. Every
    request that only reads (the boards' polls, healthz) ends with a rollback, so no
    statement stayed prepared: each was parsed and planned anew on every request.

    For a transaction that wrote nothing, COMMIT and ROLLBACK end it the same way (locks
    released, nothing kept); one that wrote, or failed, still rolls back. Whether it
    wrote is read from the statements this connection sent since it began.
    """

    def began(connection: sa.Connection) -> None:
        connection.info[_WROTE] = False

    def sent(connection: sa.Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if not connection.info.get(_WROTE) and not statement.lstrip().upper().startswith(_READS):
            connection.info[_WROTE] = True

    def ending(connection: sa.Connection) -> None:
        if connection.info.get(_WROTE, True):
            return
        try:
            dbapi_connection = connection.connection.dbapi_connection
        except sa.exc.SQLAlchemyError:  # invalidated: nothing to end
            return
        if dbapi_connection is not None and (
            dbapi_connection.info.transaction_status == TransactionStatus.INTRANS
        ):
            # psycopg's rollback, which follows, then finds no transaction to end.
            dbapi_connection.commit()

    sa.event.listen(engine, "begin", began)
    sa.event.listen(engine, "before_cursor_execute", sent)
    sa.event.listen(engine, "rollback", ending)


class _Watchdog:
    """Cut PostgreSQL connections that wait on one request longer than their limit.

    Each connection has a step counter, bumped by every statement, commit, rollback and
    pool checkout/checkin. A connection seen busy (libpq: a command in progress) under
    the same step for longer than its limit is stuck: its socket is shut down, which
    ends the wait with an error in the thread that waits.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.watched: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()
        self.pid = os.getpid()
        self.thread = threading.Thread(target=self.run, name="phonein-db-watchdog", daemon=True)
        self.thread.start()

    def watch(self, connection: Any, limit: float) -> None:
        with self.lock:
            # [limit, step, step seen busy, busy since]
            self.watched[connection] = [limit, 0, -1, 0.0]

    def step(self, connection: Any) -> None:
        if connection is None:  # a connection that failed on its way out of the pool
            return
        entry = self.watched.get(connection)
        if entry is not None:
            entry[1] += 1

    def run(self) -> None:
        while True:
            time.sleep(0.25)
            with self.lock:
                items = list(self.watched.items())
            now = time.monotonic()
            for connection, entry in items:
                limit, step, seen, since = entry
                try:
                    busy = connection.pgconn.transaction_status == ACTIVE
                except Exception:  # closed, or closing in another thread
                    continue
                if not busy:
                    entry[2] = -1
                elif seen != step:
                    entry[2], entry[3] = step, now
                elif now - since > limit:
                    entry[2] = -1
                    self.cut(connection, now - since)

    @staticmethod
    def cut(connection: Any, waited: float) -> None:
        log.warning("database: no answer for %.1fs; dropping the connection", waited)
        try:
            duplicate = socket.socket(fileno=os.dup(connection.pgconn.socket))
        except Exception:
            return
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            duplicate.close()


_watchdogs: dict[int, _Watchdog] = {}
_watchdog_lock = threading.Lock()


def _watchdog() -> _Watchdog:
    """The process's watchdog, started on first use (and again in a forked child)."""
    pid = os.getpid()
    with _watchdog_lock:
        if pid not in _watchdogs:
            _watchdogs[pid] = _Watchdog()
        return _watchdogs[pid]


def dialect() -> str:
    """Name the dialect of the database the session talks to: 'postgresql' or 'sqlite'."""
    return db.session.get_bind().dialect.name


def now() -> datetime:
    """Read the time from the database's clock: the one clock every process agrees on.

    Everything decided between processes (is a message due, is a lease expired, is a
    worker alive) is decided on this clock, so a machine whose clock is off neither sends
    early nor makes another process look dead. SQLite serves one process on one machine:
    there the process's own clock is the database's clock.
    """
    if dialect() == "postgresql":
        moment: datetime | None = db.session.scalar(sa.select(sa.func.clock_timestamp()))
        assert moment is not None
        return moment.astimezone(UTC)
    return utcnow()


def clock(offset: timedelta = ZERO) -> sa.ColumnElement[datetime]:
    """Return the database's clock (plus ``offset``) as SQL, read when the statement runs."""
    if dialect() == "postgresql":
        moment = sa.func.clock_timestamp() + sa.literal(offset, type_=sa.Interval())
        return sa.type_coerce(moment, UTCDateTime())
    return sa.literal(utcnow() + offset, type_=UTCDateTime())


def changed(statement: sa.Executable) -> int:
    """Run an INSERT, UPDATE or DELETE and return how many rows it changed."""
    result = db.session.execute(statement)
    return cast("sa.CursorResult[Any]", result).rowcount or 0


@dataclass(frozen=True)
class Ride:
    """What a view has the query that checks its caller read as well
    (``accounts.require_api(along=…)``): ``extend`` adds a LEFT JOIN and columns, with
    bound parameters so that the statement is built once per process; ``params`` gives
    their values for this request.

    ``writes``: the ride changes something (a data-modifying CTE, PostgreSQL only). Then
    ``extend(stmt, allowed)`` also gets an SQL condition that holds only for a caller who
    passes the check (credentials and role), which the write must be conditional on: the
    statement runs whoever asks, and a caller who fails it must change nothing. What it
    read is handed out only after the caller passed, as for any ride."""

    extend: Callable[..., Any]
    params: tuple[tuple[str, Any], ...] = ()
    writes: bool = False


@dataclass(frozen=True)
class Write:
    """One statement that changes something (with RETURNING), built once, and its bind
    parameters for this call: run alone, or folded with others into one PostgreSQL
    statement (data-modifying CTEs) where a hot path needs fewer round trips. Each
    module's parameter names carry its own prefix, so folded ones never collide."""

    statement: Any
    params: dict[str, Any]

    def run(self) -> list[Any]:
        """Run it alone; return what its RETURNING gave (one value a row)."""
        return list(db.session.scalars(self.statement, self.params))


def per_dialect(build: Callable[..., Any]) -> Callable[..., Any]:
    """Build a statement once per dialect (and arguments), not on every call.

    On hot paths a statement built anew (its literals and clauses) and its cache key cost
    more CPU than running it; callers give their values as bind parameters instead. The
    dialect is part of the key: ``upsert_insert`` and ``clock`` differ between PostgreSQL
    and SQLite, and one process may talk to both (the tests).
    """
    built: dict[tuple[Any, ...], Any] = {}

    @functools.wraps(build)
    def statement(*args: Any) -> Any:
        key = (dialect(), *args)
        found = built.get(key)
        if found is None:
            found = built[key] = build(*args)
        return found

    return statement


def upsert_insert(table: Any) -> Any:
    """Return the dialect's INSERT for ``table``, which has ``on_conflict_do_nothing``.

    Both supported databases have INSERT … ON CONFLICT; SQLAlchemy exposes it per dialect.
    """
    return (postgresql.insert if dialect() == "postgresql" else sqlite.insert)(table)


def after_commit(key: Hashable, action: Callable[[], object]) -> None:
    """Run ``action`` once the current unit of work has committed; once per ``key``."""
    pending: dict[Hashable, Callable[[], object]] = g.setdefault("phonein_after_commit", {})
    pending.setdefault(key, action)


def commit() -> None:
    """Commit the unit of work, then run the work registered to follow it.

    That work is idempotent and re-checked when it runs; one that fails is logged and
    left to the scheduler, which retries whatever a request left undone.
    """
    db.session.commit()
    pending: dict[Hashable, Callable[[], object]] = g.pop("phonein_after_commit", {})
    for key, action in pending.items():
        try:
            action()
        except Exception:
            log.exception("after-commit work %r failed; the scheduler will retry it", key)
            db.session.rollback()


def rollback() -> None:
    """Roll the unit of work back, and forget the work registered to follow it."""
    db.session.rollback()
    g.pop("phonein_after_commit", None)


class _Probe:
    """Ask the database for ``SELECT 1`` in a thread of its own, one question at a time.

    The health check must answer quickly even while the database hangs: it waits a
    bounded time for the probe, and while one is still out it does not send another.
    """

    def __init__(self, app: Flask):
        self.app = app
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.done.set()
        self.ok = False

    def ask(self, within: float) -> bool:
        with self.lock:
            if self.done.is_set():
                self.done = threading.Event()
                threading.Thread(target=self._run, args=(self.done,), daemon=True).start()
            done = self.done
        return done.wait(within) and self.ok

    def _run(self, done: threading.Event) -> None:
        ok = False
        try:
            with self.app.app_context(), db.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
                ok = True
        except Exception:
            log.warning("health check: the database did not answer", exc_info=True)
        finally:
            self.ok = ok
            done.set()


def healthy(within: float = 1.5) -> bool:
    """Say whether the database answers ``SELECT 1`` within ``within`` seconds."""
    probe: _Probe = current_app.extensions["phonein_probe"]
    return probe.ask(within)


# Errors that mean the database is away, slow or refusing: answered with 503, not 500.
UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)
