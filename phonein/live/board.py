"""The queue board: who is on air, who waits with their line and back-timing, who is on
the line unscreened. One view object for the producers' switchboard and the presenter's
board, built by ``board``.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import sqlalchemy as sa
from flask import current_app

from ..database import Ride
from ..extensions import db
from ..models import Call, Forum, ForumStatus, LiveAction, Signup
from ..views import BoardCaller, SignupView, UnscreenedLine
from . import actions, calls, queue

# Back-timing: a waiting caller "makes it" with at least this long on air before the end.
MIN_AIRTIME = timedelta(minutes=1)


@dataclass(frozen=True)
class QueueBoard:
    """What both boards show of a forum's queue and lines."""

    status: str
    on_air: SignupView | BoardCaller | None
    waiting: list[SignupView] | list[BoardCaller]
    total_waiting: int
    version: int
    unscreened: list[UnscreenedLine]
    studio: Call | None
    now: datetime
    starts_at: datetime
    ends_at: datetime
    average_call_seconds: int
    remaining_seconds: int
    # Producers: the last live action while it can be undone.
    undo: LiveAction | None = None


@functools.cache
def _air_times() -> Any:
    # Built once per process, the forum a bind parameter (the board polls this).
    return sa.select(Signup.on_air_at, Signup.done_at).where(
        # done_at IS NOT NULL: the partial index ix_signups_forum_done, not the forum.
        Signup.forum_id == sa.bindparam("air_forum"),
        Signup.done_at.is_not(None),
        Signup.on_air_at.is_not(None),
    )


def average_call(forum: Forum) -> timedelta:
    """The average time on air of the forum's finished calls (a default before any)."""
    rows = db.session.execute(_air_times(), {"air_forum": forum.id}).all()
    lengths = [
        (done - start).total_seconds() for start, done in rows if start and done and done > start
    ]
    if not lengths:
        return timedelta(seconds=float(current_app.config["VOICE_DEFAULT_CALL_SECONDS"]))
    return timedelta(seconds=sum(lengths) / len(lengths))


def next_minute(now: datetime) -> datetime:
    """Return ``now`` rounded up to the whole minute."""
    floor = now.replace(second=0, microsecond=0)
    return floor if floor == now else floor + timedelta(minutes=1)


def _tag_columns() -> list[sa.ScalarSelect[object]]:
    """What the tag reads beyond the forum row, correlated to ``forums``: the newest
    change to a signup (ix_signups_forum_updated), the number of calls and the newest
    change to one (ix_calls_forum_updated)."""
    return [
        sa.select(sa.func.max(Signup.updated_at))
        .where(Signup.forum_id == Forum.id)
        .scalar_subquery(),
        sa.select(sa.func.count())
        .select_from(Call)
        .where(Call.forum_id == Forum.id)
        .scalar_subquery(),
        sa.select(sa.func.max(Call.updated_at)).where(Call.forum_id == Forum.id).scalar_subquery(),
    ]


def _ride_tag(stmt: sa.Select[Any]) -> sa.Select[Any]:
    return stmt.outerjoin(Forum, Forum.slug == sa.bindparam("tag_slug")).add_columns(
        Forum, *_tag_columns()
    )


def etag_ride(slug: str) -> Ride:
    """What the tag of forum ``slug`` needs, for the query that checks the caller to read
    as well (``accounts.require_api(along=…)``): the forum, LEFT JOINed by its slug, and
    the tag's columns. ``etag_of`` reads the result; the forum is the one the answer uses.
    """
    return Ride(_ride_tag, (("tag_slug", slug),))


def etag_of(values: tuple[Any, ...], now: datetime, *key: object) -> str | None:
    """The tag from what ``etag_ride`` read (the forum, or None, then its columns)."""
    forum, *changes = values
    if forum is None:
        return None
    return _tag(
        (
            forum.id,
            forum.queue_version,
            forum.updated_at,
            forum.status,
            forum.starts_at,
            forum.ends_at,
            *changes,
        ),
        now,
        *key,
    )


def etag(slug: str, now: datetime, *key: object) -> str | None:
    """Return the (weak) ETag of what ``board`` (or another view of the forum's signups,
    queue and lines) would answer now for forum ``slug``, from one cheap query (None: no
    such forum). It loads no forum: an unchanged board's poll costs this query and
    nothing else. ``key`` is what else the answer depends on: who asks, its parameters.
    API views read the same with the caller's check instead (``etag_ride``).

    The board is a function of: the queue (``queue_version``, bumped by every queue
    change); the forum row (its ``updated_at``: times, status) and its status at ``now``;
    any change to any of the forum's signups (the newest ``updated_at``, one probe of
    ix_signups_forum_updated: names, questions, screening of a caller on the line); the
    forum's calls (their number and newest ``updated_at``, ix_calls_forum_updated: line
    states, mute, hold, the studio); the minute back-timing runs on; who asks and how
    (``key``). ``now`` and ``remaining_seconds`` are left out: clients tick those
    themselves from the last full answer. Timestamps written by processes whose clocks
    disagree could hide a change behind an older maximum; the minute in the tag bounds
    that to under a minute. The tag is read before the answer, so an answer is never
    older than its tag: at worst a change in between costs one more full answer.
    """
    # No autoflush: this reads no ORM rows, and flushing here would hide pending changes
    # (a token's last use) from the commit that follows a successful answer.
    with db.session.no_autoflush:
        row = db.session.execute(
            sa.select(
                Forum.id,
                Forum.queue_version,
                Forum.updated_at,
                Forum.status,
                Forum.starts_at,
                Forum.ends_at,
                *_tag_columns(),
            ).where(Forum.slug == slug)
        ).one_or_none()
    if row is None:
        return None
    return _tag(tuple(row), now, *key)


def _tag(row: tuple[Any, ...], now: datetime, *key: object) -> str:
    # The status the clock gives, by the model's own rule, without loading the forum.
    _, _, _, status, starts_at, ends_at, *_ = row
    shape = SimpleNamespace(status=status, starts_at=starts_at, ends_at=ends_at)
    status_now = Forum.status_at(cast(Forum, shape), now)
    parts = (
        *row,
        status_now.value,
        next_minute(now),
        *key,
        current_app.config["VOICE_DEFAULT_CALL_SECONDS"],
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


@functools.cache
def _undo_probe() -> sa.ScalarSelect[int]:
    """``actions.undoable`` built once per process, the forum, its queue version and the
    time as bind parameters (``undo_forum``, ``undo_version``, ``undo_now``), so that
    ``queue.snapshot`` can keep its statement."""
    shape = SimpleNamespace(
        id=sa.bindparam("undo_forum"), queue_version=sa.bindparam("undo_version")
    )
    return actions.undoable(cast(Forum, shape), cast(datetime, sa.bindparam("undo_now")))


def board(forum: Forum, now: datetime, *, limit: int | None, full: bool) -> QueueBoard:
    """Return the queue board: on air, the waiting callers in order with their lines and
    back-timing, the unscreened callers on the line, and the studio.

    ``full`` (producers) shows everything; otherwise (presenters) callers are shown as the
    board shows them, without phone, email or notes, and unscreened lines without numbers.
    """
    # Producers see the last action while it can be undone: its id rides on the
    # snapshot's first query, and it is loaded only when there is one.
    snap = (
        queue.snapshot(
            forum,
            limit,
            (_undo_probe(),),
            {"undo_forum": forum.id, "undo_version": forum.queue_version, "undo_now": now},
        )
        if full
        else queue.snapshot(forum, limit)
    )
    undo = actions.undoable_action(forum, now, snap.extra[0]) if full else None
    line_of = calls.board_lines(forum)
    lines = line_of.of
    average = average_call(forum)
    # Back-timing runs on the coming minute, not the second: the board shows it to the
    # minute anyway, and it makes the answer a function of what ``etag`` hashes, so a 304
    # is never stale. Rounding up errs towards "won't make it", never away from it.
    at = next_minute(now)
    status = forum.status_at(now)
    # A show that went live before its announced start is on air now.
    start = at if status == ForumStatus.LIVE else max(at, forum.starts_at)
    current_left = timedelta(0)
    if snap.on_air is not None and snap.on_air.on_air_at is not None:
        current_left = max(timedelta(0), average - (at - snap.on_air.on_air_at))
    waiting = []
    for i, signup in enumerate(snap.waiting):
        expected = start + current_left + i * average
        waiting.append(
            SignupView(
                signup,
                queue_position=i + 1,
                call=lines.get(signup.id),
                expected_on_air_at=expected,
                will_make_it=expected + MIN_AIRTIME <= forum.ends_at,
            )
        )
    on_air = SignupView(snap.on_air, call=lines.get(snap.on_air.id)) if snap.on_air else None
    unscreened = [
        UnscreenedLine(
            call, name=signup.name if signup else None, number=call.number if full else None
        )
        for call, signup in line_of.unscreened
    ]
    return QueueBoard(
        status=status.value,
        on_air=on_air if full or on_air is None else BoardCaller.of(on_air),
        waiting=waiting if full else [BoardCaller.of(view) for view in waiting],
        total_waiting=snap.total_waiting,
        version=snap.version,
        unscreened=unscreened,
        studio=line_of.studio,
        now=now,
        starts_at=forum.starts_at,
        ends_at=forum.ends_at,
        average_call_seconds=round(average.total_seconds()),
        remaining_seconds=max(0, round((forum.ends_at - now).total_seconds())),
        undo=undo,
    )
