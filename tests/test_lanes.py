"""Lanes: reminders, "you're next" and codes never wait behind confirmations or other bulk
texts, which a flood of signups writes by the hundred."""

from __future__ import annotations

import time
from datetime import timedelta

from phonein.extensions import db
from phonein.models import Message, MessageKind, MessageStatus
from phonein.sms import codes, dispatch, outbox, wanted
from phonein.sms.sender import Sender
from phonein.times import utcnow

from .conftest import make_forum, make_signup
from .fake_twilio import FakeTwilio, settings


def _wave(forum, now):  # type: ignore[no-untyped-def]
    """Write the forum's next reminder wave, due now."""
    offset = forum.reminder_offsets[0]
    return outbox.fan_out_wave(forum, offset, now, now)


def test_a_claim_takes_the_fast_lane_first_and_bulk_only_up_to_its_room(app) -> None:  # type: ignore[no-untyped-def]
    flooded, waiting = make_forum(), make_forum()
    for _ in range(30):
        make_signup(flooded)  # 30 confirmations, due first
    for _ in range(5):
        make_signup(waiting)
    db.session.query(Message).delete()  # only the flood's confirmations, written again below
    db.session.commit()
    for signup in flooded.signups:
        outbox.confirmation(signup, utcnow() - timedelta(minutes=5))
    assert _wave(waiting, utcnow()) == 5
    db.session.commit()

    claimed = dispatch.claim("lane-test", utcnow() + timedelta(seconds=1), 8, bulk_limit=2)

    kinds = [c.kind for c in claimed]
    assert kinds.count(MessageKind.REMINDER) == 5
    assert kinds.count(MessageKind.CONFIRMATION) == 2
    assert kinds[:5] == [MessageKind.REMINDER] * 5


def test_a_code_for_a_number_without_a_signup_is_sent_and_expires_with_the_code(app) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    assert codes.enqueue("+447400123456", "Your phonein code is 123456", "v1@1", now)
    assert codes.enqueue("+447400654321", "Your phonein code is 654321", "v2@1", now)
    db.session.commit()
    stale = db.session.query(Message).filter_by(to="+447400654321").one()
    stale.created_at = now - timedelta(minutes=int(app.config["VERIFY_CODE_MINUTES"]) + 1)
    db.session.commit()

    claimed = dispatch.claim("lane-test", now + timedelta(seconds=1), 8)

    assert [c.to for c in claimed] == ["+447400123456"]
    db.session.refresh(stale)
    assert stale.status == MessageStatus.EXPIRED
    assert stale.error_message == wanted.CODE_EXPIRED


def test_a_reminder_wave_during_a_flood_of_signups_overtakes_the_flood(make_app) -> None:  # type: ignore[no-untyped-def]
    """Counted at the fake Twilio: while the wave goes out, at most one sender's worth of
    confirmations already claimed is sent ahead of it, not the flood's hundreds."""
    threads = 6
    with FakeTwilio() as fake:
        app = make_app(**settings(fake, SMS_RATE=20))
        with app.app_context():
            flooded, waiting = make_forum(), make_forum()
            for _ in range(160):
                make_signup(flooded)
            for _ in range(10):
                make_signup(waiting, sms_consent=False)  # the wave alone for these
            for signup in waiting.signups:
                signup.sms_consent = True
            db.session.commit()
        sender = Sender(app, "lane-test", threads=threads)
        sender.start()
        try:
            deadline = time.monotonic() + 30
            while len(fake.messages) < 20 and time.monotonic() < deadline:
                time.sleep(0.02)
            with app.app_context():
                assert _wave(waiting, utcnow()) == 10
                db.session.commit()
            ahead_of_wave = len(fake.messages)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                bodies = [m["body"] for m in fake.messages]
                if sum(b.startswith("Reminder") for b in bodies) == 10:
                    break
                time.sleep(0.02)
        finally:
            sender.close()
    bodies = [m["body"] for m in fake.messages]
    last_reminder = max(i for i, b in enumerate(bodies) if b.startswith("Reminder"))
    overtaken_by = [b for b in bodies[ahead_of_wave:last_reminder] if not b.startswith("Reminder")]
    assert sum(b.startswith("Reminder") for b in bodies) == 10
    # What was claimed before the wave was written may still go first; nothing after.
    assert len(overtaken_by) <= threads
    assert len(bodies) < 160 + 10  # the flood was still queued when the wave went out
