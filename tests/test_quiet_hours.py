"""Quiet hours: early reminders step around the listener's night (phonein.sms.quiet)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from phonein.models import Forum
from phonein.settings import ConfigError
from phonein.sms import quiet

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
