"""The queue lock taken by the caller's check (``queue.lock_ride``, PostgreSQL).

On PostgreSQL a next or a finish takes the forum's queue lock in the statement that checks
the caller's token or session. The lock is a write, so it must be conditional on the
check itself: a caller who fails it must never hold the lock, not even for a moment (an
anonymous flood would otherwise stall the live show). These tests hold the lock in a
connection of their own and show that callers who fail the check are answered at once
while a producer who passes waits for it.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from phonein import accounts
from phonein.extensions import db
from phonein.models import ApiToken, Forum
from phonein.times import utcnow

from .conftest import bearer, make_forum, make_signup, make_user

pytestmark = pytest.mark.postgres

# Far longer than any answer that does not wait for the lock; a request that did wait
# would be answered 503 by the statement timeout (15 s) or still be waiting.
BOUND = 10.0


def _live_forum() -> Forum:
    now = utcnow()
    forum: Forum = make_forum(starts_at=now - timedelta(minutes=5), now=now)
    for _ in range(3):
        make_signup(forum, status="queued")
    return forum


def _session_client(app: Flask, role: str) -> tuple[FlaskClient, str]:
    """A client logged in to the producer pages as a new ``role``, and its CSRF token.

    Not inside the test's app context: Flask-Login and Flask-WTF keep the user and the
    token on ``g``, which a shared app context would carry from one client to another.
    """
    with app.app_context():
        user, _ = make_user(role)
        email = user.email
    client = app.test_client()
    page = client.get("/producer/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token is not None
    answer = client.post(
        "/producer/login",
        data={"email": email, "password": "correct horse battery", "csrf_token": token[1]},
    )
    assert answer.status_code == 302
    # The producer pages carry the log-out form, with the session's token; a presenter
    # gets it on the page that refuses them.
    home = client.get("/producer/").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', home)
    assert csrf is not None
    return client, csrf[1]


class _Request(threading.Thread):
    def __init__(self, client: FlaskClient, path: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.client, self.path, self.headers = client, path, headers
        self.status: int | None = None

    def run(self) -> None:
        self.status = self.client.post(self.path, headers=self.headers).status_code


def _waiting_on_a_lock() -> int:
    with db.engine.connect() as connection:
        waiting: int = connection.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return waiting


def test_callers_who_fail_the_check_never_wait_for_the_queue_lock(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        forum = _live_forum()
        slug, forum_id, version = forum.slug, forum.id, forum.queue_version
        _, good = make_user("producer")
        _, presenter = make_user("presenter")
        disabled, disabled_token = make_user("producer")
        disabled.is_active_user = False
        revoked_user, _ = make_user("producer")
        revoked = accounts.create_token(revoked_user)
        db.session.commit()
        newest = sa.select(ApiToken.id).order_by(ApiToken.id.desc()).limit(1)
        accounts.revoke_token(db.session.scalars(newest).one(), utcnow())
        expired = accounts.create_token(revoked_user, utcnow() - timedelta(seconds=1))
        db.session.commit()
    session_presenter, presenter_csrf = _session_client(app, "presenter")
    session_producer, _ = _session_client(app, "producer")
    path = f"/api/v1/forums/{slug}/queue/next"
    refused = [
        (app.test_client(), bearer("pi_not-a-token"), 401),
        (app.test_client(), bearer(revoked), 401),
        (app.test_client(), bearer(expired), 401),
        (app.test_client(), bearer(disabled_token), 401),
        (app.test_client(), bearer(presenter), 403),
        (session_presenter, {"X-CSRFToken": presenter_csrf}, 403),
        (session_producer, {}, 400),  # a forged request: no CSRF token
        (app.test_client(), {}, 401),
    ]
    with app.app_context(), db.engine.connect() as holder:
        holder.execute(sa.select(Forum.id).where(Forum.id == forum_id).with_for_update())
        for client, headers, expected in refused:
            request = _Request(client, path, headers)
            request.start()
            request.join(BOUND)
            assert not request.is_alive(), f"{headers} waited for the queue lock"
            assert request.status == expected, (headers, request.status)
        # The control: a producer who passes the check does wait for the lock.
        passing = _Request(app.test_client(), path, bearer(good))
        passing.start()
        deadline = time.monotonic() + BOUND
        while _waiting_on_a_lock() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _waiting_on_a_lock() == 1 and passing.is_alive()
        holder.rollback()
    passing.join(BOUND)
    assert passing.status == 200
    with app.app_context():
        after = db.session.get(Forum, forum_id)
        assert after is not None and after.queue_version == version + 1


def test_a_session_next_with_its_csrf_token_takes_the_lock_with_the_check(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        path = f"/api/v1/forums/{_live_forum().slug}/queue/next"
        engine = db.engine
    client, csrf = _session_client(app, "producer")
    # Outside the test's app context, as in production (see ``_session_client``).
    statements: list[str] = []

    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        step = client.post(path, headers={"X-CSRFToken": csrf})
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert step.status_code == 200, step.get_json()
    # the check and the lock; the step's read (it finishes nobody); the rest.
    assert len(statements) == 3, statements
    first = statements[0].upper()
    assert "UPDATE FORUMS" in first and "FROM USERS" in first


def test_a_next_for_no_such_forum_is_404_and_a_closed_one_409(app, producer):
    client = app.test_client()
    missing = client.post("/api/v1/forums/nothing-here/queue/next", headers=producer)
    assert missing.status_code == 404
    now = utcnow()
    closed = make_forum(starts_at=now - timedelta(minutes=5), now=now, status="closed")
    answer = client.post(f"/api/v1/forums/{closed.slug}/queue/finish", headers=producer)
    assert answer.status_code == 409, answer.get_json()
