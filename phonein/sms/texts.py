"""What each kind of text says, for a listener in a given zone.

Bodies give the time in the forum's zone and, where known and different, the listener's
own, and end with the opt-out line.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .. import links
from ..models import Forum, MessageKind
from ..times import zone_or_none

STOP_LINE = "Reply STOP to opt out"
TITLE_MAX_IN_SMS = 60


def _title(forum: Forum) -> str:
    # One line whatever is stored (a title saved before titles were cleaned may hold a
    # line break): a text must not start a new line the listener reads as ours.
    title = " ".join(forum.title.split())
    return title if len(title) <= TITLE_MAX_IN_SMS else title[: TITLE_MAX_IN_SMS - 1] + "…"


def _short(moment: datetime, zone_name: str | None) -> str:
    zone = zone_or_none(zone_name)
    local = moment.astimezone(zone) if zone else moment
    return f"{local:%a} {local.day} {local:%b %H:%M} {local.tzname()}"


def when(forum: Forum, listener_zone: str | None, moment: datetime | None = None) -> str:
    """Say when the forum starts in its zone, and in the listener's where known and other."""
    moment = moment or forum.starts_at
    text = _short(moment, forum.timezone)
    if listener_zone and listener_zone != forum.timezone and zone_or_none(listener_zone):
        own = _short(moment, listener_zone)
        if own != text:
            text += f" ({own} your time)"
    return text


def _in(delta: timedelta) -> str:
    minutes = max(1, round(delta.total_seconds() / 60))
    if minutes < 90:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(minutes / 60)
    if hours < 36:
        return f"{hours} hours"
    return f"{round(hours / 24)} days"


def body(
    kind: MessageKind,
    forum: Forum | None,
    zone: str | None,
    now: datetime,
    *,
    reminder: bool = True,
    **extra: str,
) -> str:
    """Return the text of a message of ``kind`` for a listener in ``zone``.

    ``reminder``: whether a confirmation may promise a reminder (one is on its way).
    """
    if forum is None or kind == MessageKind.HELP:
        return (
            "phonein texts you about phone-ins you signed up for. Reply START to get "
            f"texts again. {STOP_LINE}."
        )
    title = _title(forum)
    if kind == MessageKind.CONFIRMATION:
        text = f'You\'re signed up for the phone-in "{title}", {when(forum, zone)}.'
        if reminder:
            text += " We'll text you a reminder."
        # The link goes in as the text is sent (links.fill): the stored text, which
        # producers read in the SMS log, holds no working private link.
        text += f" Change or cancel: {links.PLACEHOLDER}"
    elif kind == MessageKind.REMINDER:
        text = (
            f'Reminder: the phone-in "{title}" starts in {_in(forum.starts_at - now)}, '
            f"{when(forum, zone)}. Keep your phone with you."
        )
    elif kind == MessageKind.NEXT_UP:
        text = (
            f'You\'re next on "{title}"! Please keep your phone free: we will call you '
            "in the next few minutes."
        )
    elif kind == MessageKind.RESCHEDULED:
        text = f'The phone-in "{title}" has moved to {when(forum, zone)}.'
    elif kind == MessageKind.CANCELLED:
        text = f'Sorry: the phone-in "{title}" on {when(forum, zone)} has been cancelled.'
    elif kind == MessageKind.GOODBYE:
        text = (
            f'Thank you for calling "{title}". We ran out of time before your turn, but your '
            f"comment may still be published with the selection: {extra['forum_url']}"
        )
    elif kind == MessageKind.CLOSED:
        text = (
            f'The phone-in "{title}" has now closed. We could not put you on air this time. '
            "Thank you for taking part."
        )
    else:
        text = (
            "phonein texts you about phone-ins you signed up for. Reply START to get texts again."
        )
    return f"{text} {STOP_LINE}."
