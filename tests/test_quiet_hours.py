"""Quiet hours: early reminders step around the listener's night (phonein.sms.quiet)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from phonein import worker
from phonein.extensions import db
from phonein.models import Forum, Message
from phonein.settings import ConfigError
from phonein.sms import outbox, quiet
from phonein.times import utcnow

from .conftest import login, make_forum, make_signup
from .fake_twilio import FakeTwilio, settings
from .processes import drain

NIGHT = quiet.Window(time(22, 0), time(8, 0))


def test_the_setting_reads_a_window_or_off():
    assert quiet.parse("22:00-08:00") == NIGHT
    assert quiet.parse(" 23:30 - 06:15 ") == quiet.Window(time(23, 30), time(6, 15))
    assert quiet.parse("off") is None and quiet.parse(None) is None
    for bad in ("22-8", "25:00-08:00", "22:00", "08:00-08:00"):
        with pytest.raises(ConfigError):
            quiet.parse(bad)
    assert NIGHT.length == timedelta(hours=10)


def test_the_app_refuses_to_start_with_a_bad_window(make_app):
    with pytest.raises(ConfigError):
        make_app(QUIET_HOURS="late")


@pytest.mark.parametrize(
    ("local_due", "moved_to"),
    [
        # After midnight: the evening before, a quarter of an hour before the window.
        (datetime(2026, 12, 3, 6, 30), datetime(2026, 12, 2, 21, 45)),
        (datetime(2026, 12, 3, 0, 5), datetime(2026, 12, 2, 21, 45)),
        # Late in the evening: the same evening.
        (datetime(2026, 12, 2, 23, 0), datetime(2026, 12, 2, 21, 45)),
        (datetime(2026, 12, 2, 22, 0), datetime(2026, 12, 2, 21, 45)),
        # Outside the window: not moved.
        (datetime(2026, 12, 2, 8, 0), None),
        (datetime(2026, 12, 2, 21, 59), None),
    ],
)
def test_a_reminder_due_in_the_night_moves_to_the_evening_before(local_due, moved_to):
    tokyo = ZoneInfo("Asia/Tokyo")
    due = local_due.replace(tzinfo=tokyo).astimezone(UTC)
    moved = quiet.moved(due, tokyo, NIGHT)
    if moved_to is None:
        assert moved is None
    else:
        assert moved == moved_to.replace(tzinfo=tokyo).astimezone(UTC)
        assert moved < due
    assert quiet.moved(due, tokyo, None) is None


def test_only_early_reminders_that_are_not_the_last_may_move():
    forum = Forum(reminder_offsets=[86400, 3600, 600])
    assert quiet.applies(forum, 86400)
    assert not quiet.applies(forum, 3600)  # not more than two hours before
    assert not quiet.applies(forum, 600)
    forum.reminder_offsets = [86400, 10800]
    assert quiet.applies(forum, 86400)
    assert not quiet.applies(forum, 10800)  # the last one before the show


def test_the_listener_zone_is_theirs_else_their_number_country_else_the_forum():
    assert quiet.listener_zone("Asia/Tokyo", None, "Europe/London") == ZoneInfo("Asia/Tokyo")
    assert quiet.listener_zone(None, "+331", "Europe/London") == ZoneInfo("Europe/Paris")
    assert quiet.listener_zone(None, "+7", "Europe/London") == ZoneInfo("Europe/Moscow")
    assert quiet.listener_zone(None, "+1", "Europe/London") == ZoneInfo("America/New_York")
    assert quiet.listener_zone(None, "+999", "Europe/London") == ZoneInfo("Europe/London")
    assert quiet.listener_zone(None, None, "Europe/London") == ZoneInfo("Europe/London")


# --- end to end: the worker's tick, the real SDK, the fake Twilio ---------------------------


def _night_starting_soon(now: datetime) -> tuple[datetime, str]:
    """A quiet window whose evening ends within the last minute (to the minute, in UTC)."""
    opens = (now + quiet.MARGIN).replace(second=0, microsecond=0)
    return opens, f"{opens:%H:%M}-{opens + timedelta(hours=8):%H:%M}"


def test_a_reminder_that_falls_in_quiet_hours_is_moved_and_still_arrives_before_the_show(
    make_app,
):
    now = utcnow()
    opens, window = _night_starting_soon(now)
    with FakeTwilio() as fake:
        app = make_app(**settings(fake, SMS_RATE=1000, QUIET_HOURS=window))
        with app.app_context():
            # The 24-hour reminder falls due an hour into a UTC listener's night; for a
            # listener two hours west it falls due an hour before theirs begins.
            forum = make_forum(
                starts_at=opens + timedelta(hours=25),
                now=now - timedelta(hours=2),
                reminder_offsets=[86400, 3600, 600],
            )
            due = forum.starts_at - timedelta(days=1)
            night = make_signup(forum, now=now - timedelta(hours=1), timezone="UTC")
            evening = make_signup(forum, now=now - timedelta(hours=1), timezone="Etc/GMT+2")
            worker.tick(app, "quiet-test")
        drain(app)
        with app.app_context():
            [moved] = db.session.scalars(sa.select(Message).where(Message.kind == "reminder")).all()
            assert moved.signup_id == night.id and moved.status == "queued"
            # Sent at the end of the listener's evening: before the night, before its
            # due time, and so before the show.
            assert moved.send_at == opens - quiet.MARGIN
            assert moved.sent_at is not None and moved.sent_at < due < forum.starts_at
            assert moved.key.startswith("86400@")
            [text] = [m["body"] for m in fake.sent_to(night.phone) if m["body"].startswith("Rem")]
            assert "starts in 25 hours" in text
            assert not [m for m in fake.sent_to(evening.phone) if m["body"].startswith("Rem")]
            # The producers' SMS log says when it was due and why it left early.
            note = quiet.note(moved, forum)
            assert note and "quiet hours" in note and f"{due:%H:%M}" in note
            client = app.test_client()
            login(client)
            page = client.get(f"/producer/forums/{forum.slug}/messages").get_data(as_text=True)
            assert "inside the listener&#39;s quiet hours" in page
            # The wave itself, at its due time: the other listener's reminder, not a second
            # one to the first.
            assert outbox.fan_out_wave(forum, 86400, due, due) == 1
            db.session.commit()
            later = db.session.scalars(
                sa.select(Message).where(
                    Message.kind == "reminder", Message.signup_id == evening.id
                )
            ).one()
            assert later.send_at == due and quiet.note(later, forum) is None


def test_the_last_reminder_before_the_show_is_never_held_back(make_app):
    now = utcnow()
    opens, window = _night_starting_soon(now)
    app = make_app(QUIET_HOURS=window)
    with app.app_context():
        # Its only reminder, 24 hours before, falls due in the night: it stays where it is.
        forum = make_forum(
            starts_at=opens + timedelta(hours=25),
            now=now - timedelta(hours=2),
            reminder_offsets=[86400],
        )
        make_signup(forum, now=now - timedelta(hours=1), timezone="UTC")
        assert outbox.fan_out_early(now, timedelta(seconds=5)) == 0
        due = forum.starts_at - timedelta(days=1)
        assert outbox.fan_out_wave(forum, 86400, due, due) == 1
        db.session.commit()
        [reminder] = db.session.scalars(sa.select(Message).where(Message.kind == "reminder"))
        assert reminder.send_at == due


def test_someone_who_signs_up_after_their_evening_gets_no_moved_reminder(make_app):
    now = utcnow()
    opens, window = _night_starting_soon(now)
    app = make_app(QUIET_HOURS=window)
    with app.app_context():
        forum = make_forum(
            starts_at=opens + timedelta(hours=25),
            now=now - timedelta(hours=2),
            reminder_offsets=[86400, 600],
        )
        make_signup(forum, now=opens - timedelta(minutes=20), timezone="UTC")  # in time
        make_signup(forum, now=opens + timedelta(minutes=5), timezone="UTC")  # in the night
        db.session.commit()
        due = forum.starts_at - timedelta(days=1)
        # Its offset was already past for the late one when they signed up: no reminder
        # in the night for them, and none when the wave comes either.
        assert outbox.fan_out_early(opens - quiet.MARGIN, timedelta(seconds=5)) == 1
        assert outbox.fan_out_wave(forum, 86400, due, due) == 0
