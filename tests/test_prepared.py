"""Statements stay prepared on PostgreSQL across transactions that only read.

psycopg prepares a statement on the server after five runs on a connection, and forgets
them all at every ROLLBACK. A transaction that only read ends with COMMIT instead
(``database._keep_prepared``); one that wrote, or failed, still rolls back.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from phonein.extensions import db
from phonein.models import Forum

from .conftest import make_forum

pytestmark = pytest.mark.postgres

MARK = "SELECT count(*) AS phonein_prepared_probe FROM forums WHERE id > :above"
PREPARED = sa.text("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE :like")


def prepared_probes(connection: sa.Connection) -> int:
    found = connection.execute(PREPARED, {"like": "%phonein_prepared_probe%"}).scalar_one()
    connection.rollback()
    return int(found)


def test_a_transaction_that_only_read_keeps_the_statements_prepared(app):
    with db.engine.connect() as connection:
        for above in range(8):
            connection.execute(sa.text(MARK), {"above": above}).scalar_one()
            connection.rollback()  # what every read-only request ends with
        # Prepared at the sixth run, and still there after the rollbacks that followed.
        assert prepared_probes(connection) == 1
        assert prepared_probes(connection) == 1


def test_a_transaction_that_wrote_still_rolls_back(app):
    make_forum(slug="kept")
    db.session.commit()
    with db.engine.connect() as connection:
        for above in range(8):
            connection.execute(sa.text(MARK), {"above": above}).scalar_one()
            connection.rollback()
        connection.execute(sa.update(Forum).where(Forum.slug == "kept").values(title="Changed"))
        connection.rollback()
        # It was rolled back: the title is as it was (and psycopg dropped what it had
        # prepared, as a rollback makes it).
        assert connection.scalar(sa.select(Forum.title).where(Forum.slug == "kept")) != "Changed"
        assert prepared_probes(connection) == 0


def test_a_failed_transaction_still_rolls_back_and_the_connection_goes_on(app):
    with db.engine.connect() as connection:
        with pytest.raises(sa.exc.DBAPIError):
            connection.execute(sa.text("SELECT 1 / 0"))
        connection.rollback()
        assert connection.execute(sa.text("SELECT 2")).scalar_one() == 2
        connection.rollback()


def test_a_read_only_check_ends_without_a_rollback(client, app):
    ended: list[str] = []

    def sent(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        ended.append(statement)

    def rolled(conn):  # type: ignore[no-untyped-def]
        dbapi = conn.connection.dbapi_connection
        ended.append(f"rollback, in transaction: {dbapi.info.transaction_status.name}")

    sa.event.listen(db.engine, "before_cursor_execute", sent)
    sa.event.listen(db.engine, "rollback", rolled)
    try:
        # Its probe reads SELECT 1 on a connection of its own, then ends the transaction.
        assert client.get("/healthz").status_code == 200
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", sent)
        sa.event.remove(db.engine, "rollback", rolled)
    # The request read, and the rollback the session ends with found its transaction
    # already committed.
    assert any(line.lstrip().upper().startswith("SELECT") for line in ended), ended
    assert "rollback, in transaction: IDLE" in ended, ended
    assert "rollback, in transaction: INTRANS" not in ended, ended
