"""Quiet hours: no early reminder lands in the night of the listener's own day.

``PHONEIN_QUIET_HOURS`` (``22:00-08:00`` by default, ``off`` for none) is read in each
listener's zone: the signup's ``timezone``, else the main zone of the country of their
number, else the forum's. A reminder more than two hours before the show whose due time
falls inside that window is sent at the end of the listener's evening instead, a quarter
of an hour before the window opens: earlier, so still before the show. The last reminder
before the show is never held back, whatever its offset.

A moved reminder keeps its wave's key (``offset@start``), so the producers' SMS log can say
when it was due and why it left at another time (``note``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import phonenumbers
from flask import current_app
from phonenumbers import timezone as number_zones

from ..models import Forum, Message, MessageKind
from ..settings import ConfigError
from ..times import zone_or_none

# Only reminders further than this before the show are ever moved.
EARLY = timedelta(hours=2)
# A moved reminder leaves this long before the window opens, so a wave sent at the
# configured rate is out before it does.
MARGIN = timedelta(minutes=15)
# Countries spanning several zones whose numbers do not tell which: the zone most of
# their people live in. Any other country's first zone in the numbering plan's data.
MAIN_ZONES = {
    "AR": "America/Argentina/Buenos_Aires",
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "CA": "America/Toronto",
    "CD": "Africa/Kinshasa",
    "CL": "America/Santiago",
    "CN": "Asia/Shanghai",
    "EC": "America/Guayaquil",
    "ES": "Europe/Madrid",
    "ID": "Asia/Jakarta",
    "KZ": "Asia/Almaty",
    "MN": "Asia/Ulaanbaatar",
    "MX": "America/Mexico_City",
    "NZ": "Pacific/Auckland",
    "PT": "Europe/Lisbon",
    "RU": "Europe/Moscow",
    "UA": "Europe/Kyiv",
    "US": "America/New_York",
}


@dataclass(frozen=True)
class Window:
    """The quiet window of a listener's day: from ``start`` to ``end``, local times."""

    start: time
    end: time

    @property
    def length(self) -> timedelta:
        start = timedelta(hours=self.start.hour, minutes=self.start.minute)
        end = timedelta(hours=self.end.hour, minutes=self.end.minute)
        return (end - start) % timedelta(days=1)

    def holds(self, moment: time) -> bool:
        """Say whether the local time ``moment`` is inside the window."""
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse(value: object) -> Window | None:
    """Read ``PHONEIN_QUIET_HOURS``: ``HH:MM-HH:MM`` or ``off``; raise ConfigError else."""
    text = str(value or "off").strip().lower()
    if text in ("off", "none", "false", "0", ""):
        return None
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ConfigError(
            f"PHONEIN_QUIET_HOURS takes a window like 22:00-08:00, or off; not {value!r}."
        ) from None
    if start == end:
        raise ConfigError("PHONEIN_QUIET_HOURS: a window must not start when it ends.")
    return Window(start.replace(second=0, microsecond=0), end.replace(second=0, microsecond=0))


def window() -> Window | None:
    """The app's quiet window (None: quiet hours are off)."""
    return parse(current_app.config.get("QUIET_HOURS"))


def lead() -> timedelta:
    """How long before its due time a reminder may leave: the window's length and margin."""
    found = window()
    return found.length + MARGIN if found else timedelta(0)


@cache
def country_zone(prefix: str) -> str | None:
    """Return the main zone of the country a number starting with ``prefix`` belongs to.

    ``prefix`` is the number's first characters (``+441``): enough for its country code.
    """
    digits = prefix.lstrip("+")
    for size in (1, 2, 3):
        if not digits[:size].isdigit():
            break
        region = phonenumbers.region_code_for_country_code(int(digits[:size]))
        if region and region != "ZZ":
            if region in MAIN_ZONES:
                return MAIN_ZONES[region]
            example = phonenumbers.example_number(region)
            zones = number_zones.time_zones_for_number(example) if example else ()
            known = [zone for zone in zones if zone_or_none(zone)]
            return known[0] if known else None
    return None


def listener_zone(zone: str | None, prefix: str | None, forum_zone: str) -> ZoneInfo:
    """The zone a listener's day is read in: theirs, their number's country's, the forum's."""
    found = zone_or_none(zone) or zone_or_none(country_zone(prefix) if prefix else None)
    return found or zone_or_none(forum_zone) or ZoneInfo("UTC")


def applies(forum: Forum, offset: int) -> bool:
    """Say whether a wave at ``offset`` may be moved: early enough, and not the last one."""
    offsets = [int(o) for o in forum.reminder_offsets or []]
    return bool(offsets) and offset > EARLY.total_seconds() and offset != min(offsets)


def moved(due: datetime, zone: ZoneInfo, quiet: Window | None) -> datetime | None:
    """Return when a reminder due at ``due`` leaves instead, or None when it need not move.

    Due inside the window: the end of the listener's evening before it, that is the
    window's start less the margin, on the local day the window opened.
    """
    if quiet is None:
        return None
    local = due.astimezone(zone)
    if not quiet.holds(local.time().replace(tzinfo=None)):
        return None
    day = local.date()
    if local.time() < quiet.start:  # after midnight: the window opened the day before
        day -= timedelta(days=1)
    opened = datetime.combine(day, quiet.start, tzinfo=zone)
    return (opened - MARGIN).astimezone(UTC)


def due_of(message: Message, forum: Forum) -> datetime | None:
    """When a reminder's wave was due, read from its key (``offset@start``)."""
    if message.kind != MessageKind.REMINDER or "@" not in message.key:
        return None
    offset, _, start = message.key.partition("@")
    if not (offset.isdigit() and start.isdigit()):
        return None
    return datetime.fromtimestamp(int(start), UTC) - timedelta(seconds=int(offset))


def note(message: Message, forum: Forum) -> str | None:
    """Say, for the producers' log, that a reminder left before its due time and why."""
    due = due_of(message, forum)
    if due is None or message.send_at >= due - timedelta(seconds=1):
        return None
    early = due - message.send_at
    hours, minutes = divmod(round(early.total_seconds() / 60), 60)
    return (
        f"moved {hours} h {minutes:02d} earlier: due at {due:%Y-%m-%d %H:%M} UTC, inside "
        f"the listener's quiet hours ({window() or 'off'} their time)"
    )
