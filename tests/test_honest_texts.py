"""Texts say what will happen: a reminder is promised only when one will come (a catch-up
for late signups), and listeners not reached hear once that the forum closed."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from phonein import forums
from phonein.extensions import db
from phonein.live import queue
from phonein.models import Message, MessageKind, Signup
from phonein.sms import dispatch, outbox
from phonein.sms.texts import body
from phonein.times import utcnow

from .conftest import login, make_forum, make_signup, manage_token
from .processes import drain

PROMISE = "We'll text you a reminder."


def texts(**where) -> list[Message]:  # type: ignore[no-untyped-def]
    stmt = sa.select(Message).order_by(Message.id)
    for key, value in where.items():
        stmt = stmt.where(getattr(Message, key) == value)
    return list(db.session.scalars(stmt))


def sent_to(app) -> list[dict]:  # type: ignore[no-untyped-def]
    return list(app.extensions["phonein_sms"].sent)


# The catch-up reminder.


def test_a_signup_after_the_last_wave_gets_one_catch_up_reminder_before_the_start(app):
    now = utcnow()
    # A forum that reminds a day before only, three hours away: its wave is long past.
    forum = make_forum(starts_at=now + timedelta(hours=3), reminder_offsets=[86400], now=now)
    signup = make_signup(forum, now=now)
    [confirmation] = texts(kind="confirmation")
    assert PROMISE in confirmation.body
    [catch_up] = texts(kind="reminder")
    assert catch_up.signup_id == signup.id
    assert catch_up.send_at == forum.starts_at - outbox.CATCH_UP_BEFORE
    assert "starts in 10 minutes" in catch_up.body
    # Not before its time, then once at it.
    early = dispatch.claim("w", catch_up.send_at - timedelta(seconds=1), 10)
    assert [c.kind for c in early] == ["confirmation"]
    [claimed] = dispatch.claim("w", catch_up.send_at, 10)
    assert claimed.id == catch_up.id


def test_the_catch_up_and_its_wave_never_both_reach_a_listener(app):
    """Signed up while the day-before wave was being written: the catch-up stands in for
    that wave, under its key, and the wave then writes nothing more for this listener."""
    now = utcnow()
    forum = make_forum(starts_at=now + timedelta(hours=3), reminder_offsets=[86400], now=now)
    make_signup(forum, now=now)
    due = forum.starts_at - timedelta(days=1)
    assert outbox.fan_out_wave(forum, 86400, due, now) == 0
    db.session.commit()
    assert len(texts(kind="reminder")) == 1


def test_no_catch_up_while_a_wave_will_still_come(app):
    now = utcnow()
    forum = make_forum(starts_at=now + timedelta(hours=2), now=now)  # 1 day, 1 hour, 10 min
    make_signup(forum, now=now)
    assert PROMISE in texts(kind="confirmation")[0].body
    assert texts(kind="reminder") == []


def test_too_close_to_the_start_no_reminder_and_no_promise(app):
    now = utcnow()
    forum = make_forum(starts_at=now + timedelta(minutes=8), now=now)  # the 10-min wave passed
    make_signup(forum, now=now)
    [confirmation] = texts(kind="confirmation")
    assert PROMISE not in confirmation.body and "reminder" not in confirmation.body
    assert texts(kind="reminder") == []


def test_a_wave_being_written_counts_as_missed(app):
    """Within WAVE_AHEAD_SECONDS of the last wave's due time, the wave may be written
    without the new listener; 15 minutes from the start is too close for a catch-up, so
    nothing is promised."""
    now = utcnow()
    forum = make_forum(starts_at=now + timedelta(minutes=10, seconds=2), now=now)
    make_signup(forum, now=now)
    assert PROMISE not in texts(kind="confirmation")[0].body


def test_no_promise_during_the_show_or_for_a_forum_without_reminders(app):
    now = utcnow()
    live = make_forum(starts_at=now - timedelta(minutes=5), status="live", now=now)
    silent = make_forum(title="No reminders", reminder_offsets=[], now=now)
    make_signup(live, now=now)
    make_signup(silent, now=now)
    assert all(PROMISE not in m.body for m in texts(kind="confirmation"))
    assert len(texts(kind="confirmation")) == 2
    assert texts(kind="reminder") == []


def test_a_catch_up_for_a_start_since_moved_is_not_sent(app, client):
    now = utcnow()
    forum = make_forum(starts_at=now + timedelta(hours=3), reminder_offsets=[86400], now=now)
    make_signup(forum, now=now)
    forums.update(forum, {"starts_at": now + timedelta(hours=5)}, now)
    db.session.commit()
    [catch_up] = texts(kind="reminder")
    assert catch_up.status == "cancelled"


# The forum closed before they were reached.


def _closing_cast(forum):  # type: ignore[no-untyped-def]
    return {
        "queued": make_signup(forum, status="queued"),
        "approved": make_signup(forum, status="approved"),
        "quiet": make_signup(forum, status="approved", sms_consent=False),
        "pending": make_signup(forum),
        "rejected": make_signup(forum, status="rejected"),
        "done": make_signup(forum, status="done"),
        "withdrawn": make_signup(forum, status="withdrawn"),
    }


def test_closing_texts_approved_and_queued_listeners_once(app, client, producer):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=5), status="live", now=now)
    cast = _closing_cast(forum)
    response = client.patch(
        f"/api/v1/forums/{forum.slug}", json={"status": "closed"}, headers=producer
    )
    assert response.status_code == 200, response.get_json()
    closed = texts(kind="closed")
    assert sorted(m.signup_id for m in closed) == sorted([cast["queued"].id, cast["approved"].id])
    assert all("has now closed" in m.body and m.body.endswith("opt out.") for m in closed)
    # The clock's own close afterwards, and a second tick, add nothing.
    forums.sync_statuses(forum.ends_at + timedelta(seconds=1))
    db.session.commit()
    assert len(texts(kind="closed")) == 2
    # And they really go, though closing dropped the queued listener from the queue.
    status = sa.select(Signup.status).where(Signup.id == cast["queued"].id)
    assert db.session.scalar(status) == "dropped"
    drain(app)
    sent = {m["to"] for m in sent_to(app) if "has now closed" in m["body"]}
    assert sent == {cast["queued"].phone, cast["approved"].phone}


def test_the_clock_closing_a_forum_texts_those_not_reached(app):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=5), status="live", now=now)
    waiting = make_signup(forum, status="queued")
    forums.sync_statuses(forum.ends_at + timedelta(seconds=1))
    db.session.commit()
    [closed] = texts(kind="closed")
    assert closed.signup_id == waiting.id


def test_cancelling_sends_the_cancellation_not_the_closed_text(app, client, producer):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=5), status="live", now=now)
    make_signup(forum, status="queued")
    client.patch(f"/api/v1/forums/{forum.slug}", json={"status": "cancelled"}, headers=producer)
    assert texts(kind="closed") == []
    # The queued listener, dropped by the cancellation, is still told (it was lost before).
    assert len(texts(kind="cancelled")) == 1
    drain(app)
    assert [m["body"] for m in sent_to(app) if "cancelled" in m["body"]]


def test_an_opted_out_listener_gets_no_closed_text(app):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=5), status="live", now=now)
    listener = make_signup(forum, status="approved")
    outbox.opt_out(listener.phone, now)
    forums.set_status(forum, "closed", now)
    db.session.commit()
    assert texts(kind="closed") == []


def test_the_manage_page_says_the_forum_closed_before_they_were_reached(app, client):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=5), status="live", now=now)
    listener = make_signup(forum)
    token = manage_token(forum, listener)
    listener.status = "approved"
    db.session.flush()
    queue.place(forum.slug, listener.id, None, now)
    db.session.commit()
    forums.set_status(forum, "closed", now)
    db.session.commit()
    db.session.expire_all()  # as a new request would find them (no expiry on commit)
    page = client.get(f"/manage/{token}", follow_redirects=True).get_data(as_text=True)
    assert "This phone-in has closed. We could not put you on air this time." in page
    assert "Not reached: the phone-in has closed" in page
    assert "In the queue to go on air" not in page


def test_the_manage_page_of_a_caller_who_was_on_air_says_nothing_of_the_kind(app, client):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=5), status="live", now=now)
    listener = make_signup(forum)
    token = manage_token(forum, listener)
    listener.status = "done"
    forums.set_status(forum, "closed", now)
    db.session.commit()
    db.session.expire_all()  # as a new request would find them (no expiry on commit)
    page = client.get(f"/manage/{token}", follow_redirects=True).get_data(as_text=True)
    assert "We could not put you on air" not in page


def test_producers_close_from_the_settings_page_and_the_text_is_logged(app, client):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=5), status="live", now=now)
    make_signup(forum, status="approved")
    login(client)
    client.post(f"/producer/forums/{forum.slug}/status", data={"status": "closed"})
    log = client.get(f"/producer/forums/{forum.slug}/messages?kind=closed")
    assert "has now closed" in log.get_data(as_text=True)


@pytest.mark.browser
def test_a_late_signup_through_the_page_gets_the_catch_up(live_app, browser):
    """The form, in headless Chromium, three hours before a forum that reminds a day
    before only: the confirmation promises a reminder and the catch-up is written for 10
    minutes before the start, in the listener's own zone too."""
    from .test_browser import _sign_up

    app, base = live_app
    with app.app_context():
        now = utcnow()
        forum = make_forum(starts_at=now + timedelta(hours=3), reminder_offsets=[86400], now=now)
        slug, start = forum.slug, forum.starts_at
    _sign_up(browser, f"{base}/forums/{slug}", "What about delivery vans?")
    with app.app_context():
        [confirmation] = texts(kind="confirmation")
        [catch_up] = texts(kind="reminder")
        # Written with the promise; with both times it may have cost a segment, and then
        # the text leaves it out (texts.body): whether it does depends on the hour.
        signup = db.session.get(Signup, confirmation.signup_id)
        assert confirmation.body == body(
            MessageKind.CONFIRMATION,
            signup.forum,
            signup.timezone,
            confirmation.created_at,
            language=signup.reads_in,
            reminder=True,
        )
        assert catch_up.to == "+12015550211" and catch_up.signup_id == confirmation.signup_id
        assert catch_up.send_at == start - outbox.CATCH_UP_BEFORE
        assert "starts in 10 minutes" in catch_up.body and "your time" in catch_up.body


def test_a_signup_just_before_a_wave_is_written_is_in_it_or_promised_nothing(app):
    """Near the last wave the decision reads which waves are written: a minute before the
    10-minute wave of a forum starting in 11 minutes, the wave is still to come."""
    now = utcnow()
    forum = make_forum(starts_at=now + timedelta(minutes=11), now=now)
    make_signup(forum, now=now)
    assert PROMISE in texts(kind="confirmation")[0].body
    # Once that wave is recorded as written, the next listener is told nothing.
    outbox.fan_out_wave(forum, 600, forum.starts_at - timedelta(minutes=10), now)
    db.session.commit()
    make_signup(forum, now=now)
    assert PROMISE not in texts(kind="confirmation")[1].body
    assert [m.signup_id for m in texts(kind="reminder")] == [
        texts(kind="confirmation")[0].signup_id
    ]
