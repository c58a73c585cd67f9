"""The boards' poll: an unchanged queue answers 304 from its ETag, and anything the
boards show changing (queue, signups, lines, forum, the minute) gives a new answer."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import g

from phonein.api import queue as queue_api
from phonein.extensions import db
from phonein.live import board
from phonein.models import ApiToken, Call
from phonein.times import utcnow
from tests.conftest import (
    bearer,
    change_signup_elsewhere,
    login,
    make_forum,
    make_signup,
    make_user,
)


@pytest.fixture
def live_forum(app):  # type: ignore[no-untyped-def]
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=5), now=now)
    waiting = [make_signup(forum, status="queued") for _ in range(3)]
    return forum, waiting


@pytest.fixture
def still(monkeypatch):  # type: ignore[no-untyped-def]
    """Hold the views' clock: the minute is in the tag and must not turn mid-test."""
    from phonein.api import signups as signups_api

    now = utcnow()
    monkeypatch.setattr(queue_api, "utcnow", lambda: now)
    monkeypatch.setattr(signups_api, "utcnow", lambda: now)
    return now


def poll(client, headers, slug, tag=None, **query):  # type: ignore[no-untyped-def]
    extra = {"If-None-Match": tag} if tag else {}
    return client.get(
        f"/api/v1/forums/{slug}/queue", query_string=query, headers={**headers, **extra}
    )


def test_unchanged_queue_answers_304_without_a_body(client, presenter, live_forum):
    forum, _ = live_forum
    first = poll(client, presenter, forum.slug)
    assert first.status_code == 200
    tag = first.headers["ETag"]
    assert tag.startswith('W/"')
    again = poll(client, presenter, forum.slug, tag)
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == tag
    # The tag is checked only after the caller is: no token, no board, even unchanged.
    assert (
        client.get(f"/api/v1/forums/{forum.slug}/queue", headers={"If-None-Match": tag}).status_code
        == 401
    )


def count_statements(fn):  # type: ignore[no-untyped-def]
    statements: list[str] = []

    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = fn()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    return response, statements


def test_an_unchanged_poll_is_one_statement_the_token_with_its_user_and_the_tag(
    client, presenter, live_forum, still
):
    forum, _ = live_forum
    tag = poll(client, presenter, forum.slug).headers["ETag"]
    again, statements = count_statements(lambda: poll(client, presenter, forum.slug, tag))
    assert again.status_code == 304
    assert len(statements) == 1, statements
    assert all(table in statements[0] for table in ("api_tokens", "users", "forums", "calls"))
    # The list's poll rides the same way.
    url = f"/api/v1/forums/{forum.slug}/signups?status=queued"
    producer = bearer(make_user("producer")[1])
    client.get(url, headers=producer)  # the token's first use is written once
    listed = client.get(url, headers=producer).headers["ETag"]
    unchanged, statements = count_statements(
        lambda: client.get(url, headers={**producer, "If-None-Match": listed})
    )
    assert unchanged.status_code == 304 and len(statements) == 1, statements


def test_the_tag_read_with_the_token_is_the_tag_read_alone(client, presenter, live_forum, still):
    forum, _ = live_forum
    # A request whose caller was known before reads the tag alone: both ways must agree.
    tag = poll(client, presenter, forum.slug, limit=2).headers["ETag"]
    assert tag == f'W/"{board.etag(forum.slug, still, "queue", 2, False)}"'


def test_a_revoked_token_stops_at_once_even_for_an_unchanged_poll(client, app, live_forum, still):
    from phonein import accounts

    forum, _ = live_forum
    user, token = make_user("presenter")
    headers = bearer(token)
    tag = poll(client, headers, forum.slug).headers["ETag"]
    assert poll(client, headers, forum.slug, tag).status_code == 304
    [row] = db.session.scalars(sa.select(ApiToken).where(ApiToken.user_id == user.id))
    accounts.revoke_token(row.id, utcnow())
    db.session.commit()
    refused = poll(client, headers, forum.slug, tag)
    assert refused.status_code == 401 and refused.data != b""
    # A presenter may poll the board, not the producers' list: 403, tag or not.
    presenter = bearer(make_user("presenter")[1])
    url = f"/api/v1/forums/{forum.slug}/signups"
    assert client.get(url, headers={**presenter, "If-None-Match": tag}).status_code == 403
    # An unknown forum is a 404 whoever asks.
    assert poll(client, presenter, "no-such-forum", tag).status_code == 404


def test_a_logged_in_board_polls_with_one_statement_too(client, app, live_forum, still):
    forum, _ = live_forum
    login(client, "presenter")
    url = f"/api/v1/forums/{forum.slug}/queue"
    first = client.get(url)
    assert first.status_code == 200
    # Each request of a server has its own app context; the tests share one, where
    # Flask-Login would keep the first request's user.
    g.pop("_login_user", None)
    again, statements = count_statements(
        lambda: client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    )
    assert again.status_code == 304
    assert len(statements) == 1, statements
    assert "users" in statements[0] and "forums" in statements[0]


def test_a_queue_change_gives_a_new_answer(client, presenter, live_forum):
    forum, _ = live_forum
    tag = poll(client, presenter, forum.slug).headers["ETag"]
    make_signup(forum, status="queued")
    changed = poll(client, presenter, forum.slug, tag)
    assert changed.status_code == 200
    assert changed.get_json()["total_waiting"] == 4
    assert changed.headers["ETag"] != tag


def test_a_waiting_callers_new_question_gives_a_new_answer(client, presenter, live_forum):
    forum, waiting = live_forum
    tag = poll(client, presenter, forum.slug).headers["ETag"]
    # The listener changed their text elsewhere: not a queue change, but the board shows it.
    db.session.commit()  # the poll ran in this test's session: end its transaction first
    change_signup_elsewhere(waiting[0].id, question="A new question")
    db.session.expire_all()
    changed = poll(client, presenter, forum.slug, tag)
    assert changed.status_code == 200
    assert changed.get_json()["waiting"][0]["question"] == "A new question"


def test_a_line_change_gives_a_new_answer(client, presenter, live_forum):
    forum, waiting = live_forum
    tag = poll(client, presenter, forum.slug).headers["ETag"]
    db.session.add(
        Call(forum_id=forum.id, signup_id=waiting[1].id, direction="inbound", state="ringing")
    )
    db.session.commit()
    ringing = poll(client, presenter, forum.slug, tag)
    assert ringing.status_code == 200
    assert ringing.get_json()["waiting"][1]["call"]["state"] == "ringing"
    tag = ringing.headers["ETag"]
    db.session.commit()  # the poll ran in this test's session: end its transaction first
    with db.engine.begin() as conn:
        conn.execute(sa.update(Call.__table__).values(state="holding", waiting_since=utcnow()))
    db.session.expire_all()
    holding = poll(client, presenter, forum.slug, tag)
    assert holding.status_code == 200
    assert holding.get_json()["waiting"][1]["call"]["state"] == "holding"


def test_the_forum_and_the_minute_change_the_answer(client, presenter, live_forum, monkeypatch):
    forum, _ = live_forum
    now = utcnow().replace(second=10)
    monkeypatch.setattr(queue_api, "utcnow", lambda: now)
    tag = poll(client, presenter, forum.slug).headers["ETag"]
    monkeypatch.setattr(queue_api, "utcnow", lambda: now + timedelta(seconds=40))
    assert poll(client, presenter, forum.slug, tag).status_code == 304  # same minute
    # The next minute: back-timing moves on, so the board is answered again.
    monkeypatch.setattr(queue_api, "utcnow", lambda: now + timedelta(seconds=60))
    assert poll(client, presenter, forum.slug, tag).status_code == 200
    # The forum's end: its status changes at ends_at, whatever the minute.
    at_end = forum.ends_at
    monkeypatch.setattr(queue_api, "utcnow", lambda: at_end - timedelta(microseconds=1))
    before = poll(client, presenter, forum.slug).headers["ETag"]
    monkeypatch.setattr(queue_api, "utcnow", lambda: at_end)
    after = poll(client, presenter, forum.slug, before)
    if at_end.second or at_end.microsecond:
        assert after.status_code == 200
    assert after.get_json()["status"] == "closed"


def test_the_tag_depends_on_who_asks_and_the_page(client, presenter, producer, live_forum):
    forum, _ = live_forum
    tag = poll(client, presenter, forum.slug).headers["ETag"]
    assert poll(client, producer, forum.slug, tag).status_code == 200
    assert poll(client, presenter, forum.slug, tag, limit=1).status_code == 200
    paged = poll(client, presenter, forum.slug, limit=1).get_json()
    assert len(paged["waiting"]) == 1 and paged["total_waiting"] == 3


def test_back_timing_is_to_the_coming_minute(client, producer, live_forum, monkeypatch):
    forum, _ = live_forum
    now = utcnow().replace(second=25, microsecond=0)
    monkeypatch.setattr(queue_api, "utcnow", lambda: now)
    waiting = poll(client, producer, forum.slug).get_json()["waiting"]
    head = waiting[0]["expected_on_air_at"]
    # Nobody on air: the head goes on at the coming minute, not at this very second.
    assert head.startswith(
        (now.replace(second=0) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:00")
    )


def test_the_signup_list_answers_304_until_a_signup_changes(client, producer, live_forum):
    forum, waiting = live_forum
    url = f"/api/v1/forums/{forum.slug}/signups?status=queued&per_page=2"
    first = client.get(url, headers=producer)
    assert first.status_code == 200 and first.get_json()["total"] == 3
    tag = first.headers["ETag"]
    assert client.get(url, headers={**producer, "If-None-Match": tag}).status_code == 304
    other = client.get(url + "&page=2", headers={**producer, "If-None-Match": tag})
    assert other.status_code == 200  # another page, another tag
    db.session.commit()  # the polls ran in this test's session: end its transaction first
    change_signup_elsewhere(waiting[1].id, notes="Sounds nervous")
    db.session.expire_all()
    changed = client.get(url, headers={**producer, "If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.get_json()["items"][1]["notes"] == "Sounds nervous"


def test_an_erased_signup_leaves_the_list_at_once(client, producer, live_forum):
    """Erasure deletes a row, which no maximum of ``updated_at`` sees: the tag must change."""
    forum, _ = live_forum
    pending = [make_signup(forum) for _ in range(3)]
    url = f"/api/v1/forums/{forum.slug}/signups?status=pending"
    first = client.get(url, headers=producer)
    assert first.status_code == 200 and first.get_json()["total"] == 3
    tag = first.headers["ETag"]
    db.session.commit()
    # The oldest of the three: not the newest update, so the tag's maximum stands.
    erased = pending[0]
    with client.application.test_request_context():
        from phonein import signups

        signups.erase(db.session.get(type(erased), erased.id), utcnow())
        db.session.commit()
    db.session.expire_all()
    after = client.get(url, headers={**producer, "If-None-Match": tag})
    assert after.status_code == 200
    assert after.get_json()["total"] == 2
    assert erased.id not in [item["id"] for item in after.get_json()["items"]]
