"""The SMS outbox: what is written, for whom, once."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from phonein import forums, privacy, signups
from phonein.extensions import db
from phonein.live import queue
from phonein.models import Message
from phonein.sms import outbox
from phonein.times import utcnow

from .conftest import login, make_forum, make_signup


def messages(**where) -> list[Message]:  # type: ignore[no-untyped-def]
    stmt = sa.select(Message).order_by(Message.id)
    for key, value in where.items():
        stmt = stmt.where(getattr(Message, key) == value)
    return list(db.session.scalars(stmt))


def run_waves(now) -> int:  # type: ignore[no-untyped-def]
    total = 0
    for forum, offset, due in outbox.due_waves(now, timedelta(0)):
        total += outbox.fan_out_wave(forum, offset, due, now)
    db.session.commit()
    return total


def test_signup_with_consent_gets_one_confirmation_in_both_zones(client, app):
    forum = make_forum(timezone="Europe/London")
    body = {
        "name": "Dana",
        "location": "Newark",
        "phone": "(201) 555-0211",
        "timezone": "America/New_York",
        "question": "Q",
        "sms_consent": True,
    }
    created = client.post(f"/api/v1/forums/{forum.slug}/signups", json=body).get_json()
    client.post(f"/api/v1/forums/{forum.slug}/signups", json={**body, "question": "Q2"})
    [confirmation] = messages(kind="confirmation")
    assert confirmation.to == "+12015550211" and confirmation.status == "pending"
    london = forum.starts_at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/London"))
    new_york = forum.starts_at.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
    # Zones named by their city (never an ID or a bare offset), the listener's own time beside.
    assert f"{london:%H:%M} London time" in confirmation.body
    assert f"{new_york:%H:%M} your time)" in confirmation.body  # with its day when another
    # No private link (the listener saw it on the page; LINK texts it to them).
    assert "[your private link]" not in confirmation.body and "/manage/" not in confirmation.body
    assert "Reply LINK to change or cancel." in confirmation.body
    assert confirmation.body.endswith("Reply STOP to opt out.")
    assert created["manage_url"].rsplit("/", 1)[1] not in confirmation.body
    without = {**body, "phone": "(201) 555-0299", "sms_consent": False}
    client.post(f"/api/v1/forums/{forum.slug}/signups", json=without)
    assert len(messages(kind="confirmation")) == 1


def test_reminder_waves_fan_out_once_for_those_signed_up_in_time(app):
    now = utcnow()
    forum = make_forum(
        starts_at=now + timedelta(hours=2), now=now, reminder_offsets=[86400, 3600, 600]
    )
    early = [
        make_signup(forum, now=now, timezone=zone)
        for zone in ("Europe/London", "Asia/Tokyo", "America/New_York")
    ]
    no_consent = make_signup(forum, now=now, sms_consent=False)
    withdrawn = make_signup(forum, now=now, status="withdrawn")
    rejected = make_signup(forum, now=now, status="rejected")
    opted_out = make_signup(forum, now=now)
    outbox.opt_out(opted_out.phone, now)
    db.session.commit()
    # The 24-hour wave was due before anyone signed up: nobody gets it.
    assert run_waves(now) == 0
    hour_before = forum.starts_at - timedelta(hours=1)
    late = make_signup(forum, now=hour_before + timedelta(seconds=1))
    assert run_waves(hour_before) == 3
    assert run_waves(hour_before) == 0  # replaying the tick writes nothing
    reminders = messages(kind="reminder")
    assert {m.signup_id for m in reminders} == {s.id for s in early}
    excluded = {no_consent.id, withdrawn.id, rejected.id, opted_out.id, late.id}
    assert not excluded & {m.signup_id for m in reminders}
    bodies = {m.signup_id: m.body for m in reminders}
    assert "your time" in bodies[early[1].id] and "your time" not in bodies[early[0].id]
    assert all(
        "starts in 60 minutes" in b and b.endswith("Reply STOP to opt out.")
        for b in bodies.values()
    )
    ten_before = forum.starts_at - timedelta(minutes=10)
    assert run_waves(ten_before) == 4  # the late signup gets this one
    keys = {(m.signup_id, m.key) for m in messages(kind="reminder")}
    assert len(keys) == len(messages(kind="reminder"))


def test_overdue_waves_after_downtime_send_only_the_latest(app):
    now = utcnow()
    forum = make_forum(
        starts_at=now + timedelta(hours=30), now=now, reminder_offsets=[86400, 3600, 600]
    )
    make_signup(forum, now=now)
    # Everyone was down from now until 50 minutes before the start.
    later = forum.starts_at - timedelta(minutes=50)
    assert run_waves(later) == 1
    [reminder] = messages(kind="reminder")
    assert reminder.key.startswith("3600@") and "starts in 50 minutes" in reminder.body


def test_next_up_once_when_a_caller_reaches_the_head_of_a_live_queue(client, app, producer):
    now = utcnow()
    forum = make_forum(starts_at=now + timedelta(hours=1), now=now)
    first, second, third = (make_signup(forum, status="queued") for _ in range(3))
    assert messages(kind="next_up") == []  # not live yet: nobody is "next" an hour early
    client.patch(f"/api/v1/forums/{forum.slug}", json={"status": "live"}, headers=producer)
    assert [m.signup_id for m in messages(kind="next_up")] == [first.id]
    client.post(f"/api/v1/forums/{forum.slug}/queue/next", headers=producer)
    client.post(
        f"/api/v1/forums/{forum.slug}/queue",
        json={"signup_id": third.id, "position": 1},
        headers=producer,
    )
    client.post(
        f"/api/v1/forums/{forum.slug}/queue",
        json={"signup_id": second.id, "position": 1},
        headers=producer,
    )
    assert [m.signup_id for m in messages(kind="next_up")] == [first.id, second.id, third.id]
    assert all("next" in m.body for m in messages(kind="next_up"))


def test_moving_a_forum_moves_reminders_and_texts_the_new_time_once(client, app, producer):
    now = utcnow()
    forum = make_forum(starts_at=now + timedelta(hours=2), now=now)
    fan = make_signup(forum, now=now)
    gone = make_signup(forum, now=now)
    assert run_waves(forum.starts_at - timedelta(hours=1)) == 2  # written, not sent yet
    signups.withdraw(gone, now)
    db.session.commit()
    new_start = now + timedelta(days=3)
    client.patch(
        f"/api/v1/forums/{forum.slug}", json={"starts_at": new_start.isoformat()}, headers=producer
    )
    assert {m.status for m in messages(kind="reminder")} == {"cancelled"}
    [moved] = messages(kind="rescheduled")
    assert moved.signup_id == fan.id and "has moved to" in moved.body
    # The waves follow the new time.
    db.session.refresh(forum)
    assert run_waves(forum.starts_at - timedelta(hours=1)) == 1


def test_moving_a_forum_back_and_forth_texts_each_move(client, producer):
    f = make_forum()
    make_signup(f)
    a = f.starts_at
    b = a + timedelta(hours=1)
    for when in (b, a, b):
        r = client.patch(
            f"/api/v1/forums/{f.slug}", json={"starts_at": when.isoformat()}, headers=producer
        )
        assert r.status_code == 200, r.get_json()
    bodies = [
        m.key
        for m in db.session.scalars(
            sa.select(Message).where(Message.kind == "rescheduled").order_by(Message.id)
        )
    ]
    assert len(bodies) == 3  # the listener must learn of the third move


def test_cancelling_cancels_pending_and_texts_everyone(client, app, producer):
    now = utcnow()
    forum = make_forum(starts_at=now + timedelta(hours=2), now=now)
    make_signup(forum, now=now)
    make_signup(forum, now=now, status="approved")
    client.patch(f"/api/v1/forums/{forum.slug}", json={"status": "cancelled"}, headers=producer)
    assert {m.status for m in messages(kind="confirmation")} == {"cancelled"}
    assert len(messages(kind="cancelled", status="pending")) == 2


def test_the_cancellation_text_says_the_forum_is_cancelled(client, producer):
    f = make_forum()
    make_signup(f)
    r = client.patch(f"/api/v1/forums/{f.slug}", json={"status": "cancelled"}, headers=producer)
    assert r.status_code == 200
    m = db.session.scalars(sa.select(Message).where(Message.kind == "cancelled")).one()
    assert "cancel" in m.body.lower()


def test_withdraw_reject_and_stop_drop_pending_messages(app):
    forum = make_forum()
    kept, withdrawn, rejected, stopped = (make_signup(forum) for _ in range(4))
    now = utcnow()
    signups.withdraw(withdrawn, now)
    signups.screen(rejected, {"decision": "reject"}, now)
    outbox.opt_out(stopped.phone, now)
    db.session.commit()
    status = {m.signup_id: m.status for m in messages(kind="confirmation")}
    assert status == {
        kept.id: "pending",
        withdrawn.id: "cancelled",
        rejected.id: "cancelled",
        stopped.id: "cancelled",
    }


def test_going_live_by_the_clock_notifies_the_head(app):
    now = utcnow()
    forum = make_forum(starts_at=now + timedelta(minutes=5), now=now)
    head = make_signup(forum, status="queued")
    forums.sync_statuses(now + timedelta(minutes=6))
    db.session.commit()
    assert [m.signup_id for m in messages(kind="next_up")] == [head.id]
    assert queue.snapshot(forum).waiting[0].id == head.id


def test_producers_see_the_sms_log(client, app, producer, presenter):
    forum = make_forum()
    listener = make_signup(forum)
    make_signup(forum, sms_consent=False)
    url = f"/api/v1/forums/{forum.slug}/messages"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=presenter).status_code == 403
    body = client.get(url, headers=producer).get_json()
    assert body["total"] == 1
    [item] = body["items"]
    assert item["to"] == listener.phone and item["kind"] == "confirmation"
    assert item["status"] == "pending" and item["attempts"] == 0
    assert {"send_at", "provider_sid", "error_code", "body", "signup_id"} <= set(item)
    filtered = client.get(url + "?kind=reminder", headers=producer).get_json()
    assert filtered["total"] == 0
    assert client.get(url + "?status=bogus", headers=producer).status_code == 422
    login(client)
    page = client.get(f"/producer/forums/{forum.slug}/messages").get_data(as_text=True)
    assert "confirmation" in page and "Reply STOP to opt out." in page


def test_closing_drops_callers_still_waiting(client, app, producer):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=5), now=now)
    waiting = make_signup(forum, status="queued")
    client.patch(f"/api/v1/forums/{forum.slug}", json={"status": "closed"}, headers=producer)
    db.session.refresh(waiting)
    assert (waiting.status, waiting.queue_key) == ("dropped", None)


def test_a_reminder_for_a_start_since_moved_is_not_sent(app):
    from phonein.sms import dispatch

    now = utcnow()
    forum = make_forum(starts_at=now + timedelta(hours=1), now=now)
    make_signup(forum, now=now - timedelta(minutes=1), sms_consent=True)
    outbox.fan_out_wave(forum, 3600, now, now)
    db.session.commit()
    # The forum moves while the wave is being written (no cancel_pending saw it).
    forum.starts_at = now + timedelta(days=2)
    forum.ends_at = forum.starts_at + forum.duration
    forum.signup_closes_at = forum.ends_at
    db.session.commit()
    claimed = dispatch.claim("w", utcnow(), 10)
    assert [c.kind for c in claimed] == ["confirmation"]
    assert {m.status for m in messages(kind="reminder")} == {"cancelled"}


def test_purge_erases_the_numbers_texts_were_sent_to(app):
    now = utcnow()
    f = make_forum()
    s = make_signup(f)
    phone = s.phone
    f.status = "closed"
    f.closed_at = now - timedelta(days=100)
    f.ends_at = now - timedelta(days=100)
    db.session.commit()
    privacy.purge(now, 90)
    db.session.commit()
    left = db.session.scalars(sa.select(Message.to)).all()
    assert phone not in left
