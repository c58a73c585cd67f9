"""The database: engine set-up per dialect, the one commit path, and the health check.

Operations may flush but never commit. A view (or a CLI command, or a scheduler tick)
commits once through ``commit``, which then runs the work operations registered with
``after_commit`` during the unit of work: requests to Twilio that must follow the commit
of their cause, never precede it. A rollback forgets them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any, cast

import sqlalchemy as sa
from flask import Flask, g
from sqlalchemy.dialects import postgresql, sqlite

from .extensions import db

log = logging.getLogger("phonein.database")


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


def dialect() -> str:
    """Name the dialect of the database the session talks to: 'postgresql' or 'sqlite'."""
    return db.session.get_bind().dialect.name


def changed(statement: sa.Executable) -> int:
    """Run an INSERT, UPDATE or DELETE and return how many rows it changed."""
    result = db.session.execute(statement)
    return cast("sa.CursorResult[Any]", result).rowcount or 0


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


def healthy() -> bool:
    try:
        db.session.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        return False
