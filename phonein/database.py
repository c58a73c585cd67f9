"""Engine set-up per dialect, and the database health check."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.dialects import postgresql, sqlite

from .extensions import db


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


def upsert_insert(table: Any) -> Any:
    """Return the dialect's INSERT for ``table``, which has ``on_conflict_do_nothing``.

    Both supported databases have INSERT … ON CONFLICT; SQLAlchemy exposes it per dialect.
    """
    return (postgresql.insert if dialect() == "postgresql" else sqlite.insert)(table)


def healthy() -> bool:
    try:
        db.session.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        return False
