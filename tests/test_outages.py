"""Nothing lost to a long outage: retry while a text is useful, then `expired`, never `failed`.

Twilio answering 503 is injected in the fake Twilio; the rate cap is measured at the fake.
"""

from __future__ import annotations

import collections
import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from phonein import database, worker
from phonein.extensions import db
from phonein.live import queue
from phonein.models import Forum, Message, Signup
from phonein.sms import dispatch, outbox, rate, wanted
from phonein.sms.sender import Sender
from phonein.times import utcnow

from .conftest import bearer, make_forum, make_signup, make_user
from .fake_twilio import settings
from .processes import Outage

OLD_MAX_ATTEMPTS = 8  # after this many, retryable failures used to fail texts for good


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(dispatch, "backoff", lambda attempts: timedelta(milliseconds=20))


def statuses(app) -> collections.Counter:  # type: ignore[no-untyped-def]
    with app.app_context():
        found = collections.Counter(db.session.scalars(sa.select(Message.status)))
        db.session.rollback()
        return found


def fewest_attempts(app) -> int:  # type: ignore[no-untyped-def]
    with app.app_context():
        found = db.session.scalar(sa.select(sa.func.min(Message.attempts)))
        db.session.rollback()
        return found or 0


def wait_for(condition, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_twilio_down_past_the_old_retry_budget_loses_nothing_and_sends_once(make_app):
    with Outage() as fake:
        app = make_app(**settings(fake, SMS_RATE=200))
        with app.app_context():
            forum = make_forum()
            listeners = [make_signup(forum).phone for _ in range(20)]
        fake.down = True
        sender = Sender(app, "outage-test", threads=4)
        sender.start()
        try:
            wait_for(
                lambda: fewest_attempts(app) > OLD_MAX_ATTEMPTS + 2,
                60,
                "every text to be retried past the old budget",
            )
            assert statuses(app).keys() <= {"pending", "sending"}  # none failed
            fake.down = False
            wait_for(
                lambda: len(fake.messages) >= 20 and statuses(app) == {"queued": 20},
                60,
                "delivery after the outage",
            )
        finally:
            sender.close()
        assert collections.Counter(m["to"] for m in fake.messages) == {p: 1 for p in listeners}
        assert len(fake.rejected) > 20 * OLD_MAX_ATTEMPTS


def test_a_reminder_that_missed_its_forum_expires_with_the_reason(make_app):
    with Outage() as fake:
        app = make_app(**settings(fake, SMS_RATE=1000))
        with app.app_context():
            now = utcnow()
            forum = make_forum(starts_at=now + timedelta(hours=1), now=now)
            make_signup(forum, now=now - timedelta(minutes=1))
            outbox.fan_out_wave(forum, 3600, now, now)
            db.session.commit()
            fake.down = True
            for message in dispatch.claim("w", database.now(), 10):
                dispatch.deliver(app, message, "w")
            assert statuses(app) == {"pending": 2}  # retried, not failed
            # The outage outlasts the reminder's use: by the next try, the show has started.
            fake.down = False
            time.sleep(0.05)  # the 20 ms backoff
            later = forum.starts_at + timedelta(seconds=1)
            for message in dispatch.claim("w", later, 10):
                dispatch.deliver(app, message, "w")
            rows = {m.kind: m for m in db.session.scalars(sa.select(Message))}
            assert rows["reminder"].status == "expired"
            assert rows["reminder"].error_message == wanted.FORUM_STARTED
            assert rows["confirmation"].status == "queued"  # still useful: it went
            # Producers see it, with why, in the SMS log (API and page).
            token = make_user("producer")[1]
            client = app.test_client()
            response = client.get(
                f"/api/v1/forums/{forum.slug}/messages?status=expired", headers=bearer(token)
            )
            [item] = response.get_json()["items"]
            assert (item["kind"], item["error_message"]) == ("reminder", wanted.FORUM_STARTED)
        assert not any(m["body"].startswith("Reminder") for m in fake.messages)


def test_the_tick_expires_texts_waiting_out_a_backoff(app):
    now = utcnow()
    forum = make_forum(starts_at=now + timedelta(hours=1), now=now)
    make_signup(forum, now=now - timedelta(minutes=1))
    outbox.fan_out_wave(forum, 3600, now, now)
    db.session.execute(sa.update(Message).values(send_at=now + timedelta(minutes=5)))
    forum.starts_at = now - timedelta(seconds=1)
    forum.ends_at = forum.starts_at + forum.duration
    db.session.commit()
    assert worker.tick(app, "test-worker")["expired"] == 1
    reminder = db.session.scalars(sa.select(Message).where(Message.kind == "reminder")).one()
    assert (reminder.status, reminder.error_message) == ("expired", wanted.FORUM_STARTED)


def test_a_you_are_next_for_a_caller_who_left_the_queue_expires(app):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=5), now=now, status="live")
    caller = make_signup(forum, status="queued")
    outbox.notify_head(db.session.get(Forum, forum.id), now)  # once: placing may have
    db.session.commit()
    queue.advance(forum.slug, utcnow())  # on air before the text could go
    db.session.commit()
    assert db.session.get(Signup, caller.id).status == "on_air"
    db.session.execute(sa.update(Message).where(Message.kind != "next_up").values(status="sent"))
    db.session.commit()
    assert dispatch.claim("w", database.now(), 10) == []
    next_up = db.session.scalars(sa.select(Message).where(Message.kind == "next_up")).one()
    assert (next_up.status, next_up.error_message) == ("expired", wanted.LEFT_QUEUE)


def test_a_stall_before_the_send_takes_another_slot(make_app, monkeypatch):
    """A slot gone stale while the database stalled is not used: the send waits again.

    At one text every two seconds, the second text's slot is far off: its sender sleeps
    towards it, re-checks and confirms just before it, and that re-check stalls.
    """
    app = make_app(SMS_RATE=0.5)
    taken: list[rate.Slot] = []
    real_take = rate.take

    def take(per_second: float, lead: float = 0.0) -> rate.Slot:
        slot = real_take(per_second, lead)
        taken.append(slot)
        return slot

    real_unwanted = wanted.unwanted
    stalls = iter([0.0, 0.0, 0.3])

    def stalling(ids: list[int], now: Any) -> Any:
        time.sleep(next(stalls, 0.0))  # the re-check before the far slot stalls past it
        return real_unwanted(ids, now)

    with app.app_context():
        forum = make_forum()
        make_signup(forum)
        make_signup(forum)
        claimed = dispatch.claim("w", database.now(), 10)
        monkeypatch.setattr(rate, "take", take)
        monkeypatch.setattr(wanted, "unwanted", stalling)
        for message in claimed:
            dispatch.deliver(app, message, "w")
    assert len(taken) >= 3  # the second text's stale slot was given up
    assert statuses(app) == {"sent": 2}
