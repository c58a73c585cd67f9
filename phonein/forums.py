"""Forum operations: create, change, lifecycle. They may flush, never commit."""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from . import i18n
from .errors import Conflict, Invalid, NotFound
from .extensions import db
from .i18n import _
from .inputs import clean_line, clean_text
from .live import actions, dispatch, queue
from .models import (
    FORUM_ACTIVE,
    TITLE_MAX,
    Forum,
    ForumStatus,
    LiveAction,
    Signup,
    SignupStatus,
    forums_not_over,
)
from .sms import outbox
from .times import format_in_zone, zone_or_none

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_DURATION_MINUTES = 24 * 60
MAX_REMINDER_OFFSET = 60 * 86400
LAST_YEAR = 2100  # far enough; later dates overflow date arithmetic near year 9999

# Which status a producer may set, from which effective status.
TRANSITIONS: dict[ForumStatus, set[ForumStatus]] = {
    ForumStatus.LIVE: {ForumStatus.OPEN},
    ForumStatus.CLOSED: {ForumStatus.OPEN, ForumStatus.LIVE},
    ForumStatus.PUBLISHED: {ForumStatus.CLOSED},
    ForumStatus.CANCELLED: {ForumStatus.OPEN, ForumStatus.LIVE},
}

EDITABLE = (
    "title",
    "question",
    "correspondent",
    "description",
    "starts_at",
    "duration_minutes",
    "timezone",
    "signup_closes_at",
    "reminder_offsets",
    "languages",
    "slug",
)


@dataclass
class ForumChange:
    """What an update did, for the effects that follow it (reminders, texts)."""

    forum: Forum
    moved_from: datetime | None = None
    status_from: ForumStatus | None = None


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:60].rstrip("-") or "forum"


@functools.cache
def _by_slug(for_update: bool) -> Any:
    # Built once per process, the slug a bind parameter: every forum page asks it.
    stmt = sa.select(Forum).where(Forum.slug == sa.bindparam("forum_slug"))
    return stmt.with_for_update() if for_update else stmt


def get_by_slug(slug: str, *, for_update: bool = False) -> Forum:
    forum: Forum | None = db.session.scalars(
        _by_slug(for_update), {"forum_slug": slug}
    ).one_or_none()
    if forum is None:
        raise NotFound(_("There is no forum called '%(slug)s'.", slug=slug))
    return forum


def list_upcoming(now: datetime) -> list[Forum]:
    """Return forums still open or live at ``now``, soonest first."""
    return list(db.session.scalars(forums_not_over(now)))


def list_all() -> list[Forum]:
    return list(db.session.scalars(sa.select(Forum).order_by(Forum.starts_at.desc())))


def signup_counts(forum: Forum) -> dict[str, int]:
    """Return the number of signups in each status, every status present."""
    rows = db.session.execute(
        sa.select(Signup.status, sa.func.count())
        .where(Signup.forum_id == forum.id)
        .group_by(Signup.status)
    )
    counts = {s.value: 0 for s in SignupStatus}
    counts.update({status: n for status, n in rows})
    counts["total"] = sum(counts.values())
    return counts


def _validate(values: dict[str, Any], now: datetime, *, creating: bool) -> dict[str, str]:
    errors: dict[str, str] = {}
    # Producers' text is cleaned like listeners': no control or bidi characters, and the
    # one-line fields have no line breaks to carry into SMS bodies or spoken TwiML.
    for name in ("title", "correspondent"):
        if name in values:
            values[name] = clean_line(values[name])
    for name in ("question", "description"):
        if name in values:
            values[name] = clean_text(values[name])
    if "title" in values:
        title = values["title"]
        if not title or len(title) > TITLE_MAX:
            errors["title"] = f"Give a title of 1 to {TITLE_MAX} characters."
    slug = values.get("slug")
    if slug is not None and (not SLUG_RE.match(slug) or len(slug) > 80):
        errors["slug"] = "Use lowercase letters, digits and single dashes, like 'budget-2027'."
    if "timezone" in values and zone_or_none(values["timezone"]) is None:
        errors["timezone"] = "Choose a time zone from the list, like Europe/London."
    if "starts_at" in values:
        starts = values["starts_at"]
        if not isinstance(starts, datetime) or starts.tzinfo is None:
            errors["starts_at"] = "Give a date and time with its UTC offset (RFC 3339)."
        elif starts.year > LAST_YEAR:
            errors["starts_at"] = f"Give a date before {LAST_YEAR + 1}."
        elif creating and starts <= now:
            errors["starts_at"] = "A new forum must start in the future."
    if "duration_minutes" in values:
        minutes = values["duration_minutes"]
        if not isinstance(minutes, int) or not 1 <= minutes <= MAX_DURATION_MINUTES:
            errors["duration_minutes"] = (
                f"Give a whole number of minutes, 1 to {MAX_DURATION_MINUTES}."
            )
    if "reminder_offsets" in values:
        offsets = values["reminder_offsets"]
        if not isinstance(offsets, list) or not all(
            isinstance(o, int) and 0 <= o <= MAX_REMINDER_OFFSET for o in offsets
        ):
            errors["reminder_offsets"] = (
                "Give reminders as whole seconds before the start, each 0 to 60 days."
            )
        else:
            values["reminder_offsets"] = sorted(set(offsets), reverse=True)
    if "languages" in values:
        languages = values["languages"]
        if isinstance(languages, str):
            languages = [part.strip() for part in languages.split(",")]
        chosen = (
            [i18n.supported(tag) for tag in languages] if isinstance(languages, list) else [None]
        )
        if not chosen or None in chosen:
            errors["languages"] = (
                "Give a list of languages phonein speaks (BCP 47, the forum's own first), from: "
                + ", ".join(i18n.shipped_languages())
                + "."
            )
        else:
            values["languages"] = list(dict.fromkeys(chosen))
    return errors


def station_defaults() -> dict[str, Any]:
    """The station's defaults for what a new forum does not say (the settings)."""
    config = current_app.config
    return {
        "duration_minutes": config["DEFAULT_DURATION_MINUTES"],
        "reminder_offsets": config["DEFAULT_REMINDER_OFFSETS"],
        "languages": [i18n.default_language()],
    }


def create(
    values: dict[str, Any], now: datetime, *, defaults: dict[str, Any] | None = None
) -> Forum:
    """Create a forum from validated-shape ``values``; raise Invalid or Conflict.

    What ``values`` leaves out comes from ``defaults``, else the station's.
    """
    defaults = defaults or station_defaults()
    values = {k: v for k, v in values.items() if k in EDITABLE and v is not None}
    values.setdefault("duration_minutes", defaults["duration_minutes"])
    values.setdefault("reminder_offsets", list(defaults["reminder_offsets"]))
    values.setdefault("timezone", "UTC")
    values.setdefault("languages", list(defaults.get("languages") or [i18n.default_language()]))
    missing = {f: "This field is required." for f in ("title", "starts_at") if f not in values}
    errors = missing or _validate(values, now, creating=True)
    if errors:
        raise Invalid(errors)
    values.setdefault("slug", _free_slug(slugify(values["title"])))
    forum = Forum(status=ForumStatus.OPEN, queue_version=0, **values)
    _derive_times(forum, explicit_close="signup_closes_at" in values)
    _check_close(forum)
    if _slug_taken(forum.slug):
        raise Conflict(
            f"The web address '{forum.slug}' is taken by another forum.", code="slug_taken"
        )
    db.session.add(forum)
    db.session.flush()
    return forum


def update(forum: Forum, values: dict[str, Any], now: datetime) -> ForumChange:
    """Apply a producer's changes (fields and/or status) to ``forum``."""
    change = ForumChange(forum)
    status = values.pop("status", None)
    values = {k: v for k, v in values.items() if k in EDITABLE}
    errors = _validate(values, now, creating=False)
    for required in (
        "title",
        "starts_at",
        "duration_minutes",
        "timezone",
        "reminder_offsets",
        "languages",
    ):
        if required in values and values[required] is None:
            errors[required] = "This field cannot be empty."
    if errors:
        raise Invalid(errors)
    current = forum.status_at(now)
    if values and current in (ForumStatus.PUBLISHED, ForumStatus.CANCELLED):
        raise Conflict(
            f"This forum is {current.value}; it can no longer be changed.", code="forum_final"
        )
    if "slug" in values and values["slug"] != forum.slug and _slug_taken(values["slug"]):
        raise Conflict(
            f"The web address '{values['slug']}' is taken by another forum.", code="slug_taken"
        )
    moving = "starts_at" in values and values["starts_at"] != forum.starts_at
    if moving and current not in (ForumStatus.OPEN,):
        raise Conflict("Only a forum that has not started can be moved.", code="forum_started")
    old_start = forum.starts_at
    explicit_close = "signup_closes_at" in values and values["signup_closes_at"] is not None
    keep_close = forum.signup_closes_at != forum.ends_at
    for key, value in values.items():
        if key == "signup_closes_at" and value is None:
            continue
        setattr(forum, key, value)
    if {"starts_at", "duration_minutes", "signup_closes_at"} & values.keys():
        _derive_times(forum, explicit_close=explicit_close or keep_close)
        _check_close(forum)
    if moving:
        if forum.starts_at <= now:
            raise Invalid({"starts_at": "A forum can only be moved to a time in the future."})
        change.moved_from = old_start
    if status is not None:
        change.status_from = current
        set_status(forum, status, now)
    db.session.flush()
    if moving:
        outbox.forum_moved(forum, now)
    return change


ANNOUNCE = ("keep", "text")
LIVE_KINDS = {
    ForumStatus.LIVE: actions.Kind.GO_LIVE,
    ForumStatus.CLOSED: actions.Kind.CLOSE,
    ForumStatus.CANCELLED: actions.Kind.CANCEL,
}


@dataclass
class LiveChange:
    """What a producer's go live / close / cancel did, and how to undo it."""

    forum: Forum
    action: LiveAction | None
    message: str


def change_live(
    slug: str, target: str, now: datetime, *, announce: str = "keep", user_id: int | None = None
) -> LiveChange:
    """Go live, close or cancel forum ``slug`` as a live action (undoable a while)."""
    try:
        wanted = ForumStatus(target)
    except ValueError:
        wanted = None
    if wanted not in LIVE_KINDS:
        raise Invalid({"status": "Use live, closed or cancelled."})
    assert wanted is not None
    if announce not in ANNOUNCE:
        raise Invalid({"announce": "Use keep or text."})
    forum = queue.lock(slug, now)
    before = actions.capture(forum, now, whole=True)
    early = wanted == ForumStatus.LIVE and forum.starts_at > now
    announced = format_in_zone(forum.starts_at, forum.timezone)
    set_status(forum, wanted.value, now, announce=announce)
    action = actions.record(before, forum, LIVE_KINDS[wanted], now, user_id)
    if action is None:
        message = f"The forum was already {wanted.value}: nothing changed."
    elif wanted == ForumStatus.LIVE and early and announce == "keep":
        message = (
            f"The show is live. Listeners keep the announced start ({announced}); "
            "their reminders go out as planned."
        )
    elif wanted == ForumStatus.LIVE and early:
        message = "The show is live. Listeners are texted that it has started early."
    elif wanted == ForumStatus.LIVE:
        message = "The show is live."
    elif wanted == ForumStatus.CLOSED:
        message = "The show is closed: callers still waiting are thanked and hung up."
    else:
        message = "The show is cancelled: registrants are texted."
    return LiveChange(forum, action, message)


def set_status(forum: Forum, target: str, now: datetime, *, announce: str = "keep") -> None:
    """Move ``forum`` to ``target`` if the lifecycle allows it from where it is now.

    Going live before the announced start keeps that start (``announce="keep"``: the
    public page, the reminders and their texts stay as announced; the show is simply on
    air early until its planned end) or moves it to now and texts every registrant the
    change (``"text"``: their pending reminders give way to that text).
    """
    try:
        wanted = ForumStatus(target)
    except ValueError:
        raise Invalid({"status": "Use live, closed, published or cancelled."}) from None
    current = forum.status_at(now)
    if wanted == current:
        return
    if current not in TRANSITIONS.get(wanted, set()):
        raise Conflict(
            f"A {current.value} forum cannot become {wanted.value}.", code="bad_transition"
        )
    moved = False
    if wanted == ForumStatus.LIVE and forum.starts_at > now and announce == "text":
        # Going live early, announced: the show starts now, its end stays where it was
        # planned (the duration is what remains, rounded up and within the limit).
        forum.starts_at = now
        remaining = math.ceil((forum.ends_at - now).total_seconds() / 60)
        forum.duration_minutes = min(MAX_DURATION_MINUTES, max(1, remaining))
        moved = True
    forum.status = wanted
    if wanted in (ForumStatus.CLOSED, ForumStatus.CANCELLED):
        forum.closed_at = min(now, forum.ends_at) if current != ForumStatus.OPEN else now
        db.session.flush()
        if wanted == ForumStatus.CANCELLED:
            # Before the queue is dropped: queued listeners are owed the cancellation too.
            outbox.forum_cancelled(forum, now)
        _end_calls(forum, now)
    db.session.flush()
    if moved:
        outbox.forum_moved(forum, now)
    if wanted == ForumStatus.LIVE:
        outbox.notify_head(forum, now)
        dispatch.forum_live(forum, now)


def sync_statuses(now: datetime) -> int:
    """Persist the clock-driven transitions (open -> live -> closed); return rows changed."""
    going_live = list(
        db.session.scalars(
            sa.update(Forum)
            .where(Forum.status == ForumStatus.OPEN, Forum.starts_at <= now, Forum.ends_at > now)
            .values(status=ForumStatus.LIVE)
            .returning(Forum)
            .execution_options(populate_existing=True)
        )
    )
    for forum in going_live:
        # Whoever the producers queued before the show is first in line now.
        outbox.notify_head(forum, now)
        dispatch.forum_live(forum, now)
    # Conditional on the status, so a producer's concurrent cancel is never overwritten.
    over = list(
        db.session.scalars(
            sa.update(Forum)
            .where(Forum.status.in_(FORUM_ACTIVE), Forum.ends_at <= now)
            .values(status=ForumStatus.CLOSED, closed_at=Forum.ends_at)
            .returning(Forum)
            .execution_options(populate_existing=True)
        )
    )
    for forum in over:
        _end_calls(forum, now)
    db.session.flush()
    return len(going_live) + len(over)


def _end_calls(forum: Forum, now: datetime) -> None:
    """The forum is over: the caller on air is done, callers still waiting are dropped
    (and those on the line hear a goodbye); a closed (not cancelled) forum texts the
    listeners it did not reach that it is over."""
    dispatch.forum_over(forum, now)
    if forum.status == ForumStatus.CLOSED:
        outbox.forum_closed(forum, now)
    db.session.execute(
        sa.update(Signup)
        .where(Signup.forum_id == forum.id, Signup.status == SignupStatus.ON_AIR)
        .values(status=SignupStatus.DONE, done_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        sa.update(Signup)
        .where(Signup.forum_id == forum.id, Signup.status == SignupStatus.QUEUED)
        .values(status=SignupStatus.DROPPED, queue_key=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def _derive_times(forum: Forum, *, explicit_close: bool) -> None:
    forum.ends_at = forum.starts_at + timedelta(minutes=forum.duration_minutes)
    if not explicit_close or forum.signup_closes_at is None:
        forum.signup_closes_at = forum.ends_at


def _check_close(forum: Forum) -> None:
    if forum.signup_closes_at.tzinfo is None:
        raise Invalid({"signup_closes_at": "Give a date and time with its UTC offset."})
    if forum.signup_closes_at.year > LAST_YEAR or forum.signup_closes_at > forum.ends_at:
        raise Invalid({"signup_closes_at": "Signups must close by the end of the forum."})


def _slug_taken(slug: str) -> bool:
    return (db.session.scalar(sa.select(sa.func.count()).where(Forum.slug == slug)) or 0) > 0


def _free_slug(base: str) -> str:
    slug, n = base, 1
    while _slug_taken(slug):
        n += 1
        slug = f"{base}-{n}"
    return slug
