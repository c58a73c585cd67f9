"""Calls as Twilio reports them: finding them, and their state, which only moves forward.

``Call.state`` is what Twilio last told us (status callbacks, conference events, the TwiML
it fetched). It only moves forward, so a late or repeated callback cannot bring an ended
call back. What phonein *wants* done with a call is ``live.dispatch``'s.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..database import changed, upsert_insert
from ..errors import NotFound
from ..extensions import db
from ..models import (
    CALL_LIVE,
    CALL_WAITING,
    MAX_ID,
    SIGNUP_CLEARED,
    Call,
    CallDirection,
    CallState,
    Forum,
    Signup,
)
from ..times import utcnow

RECENT_ENDED = 20


def get(call_id: int) -> Call:
    call = db.session.get(Call, call_id) if 0 < call_id <= MAX_ID else None
    if call is None:
        raise NotFound(f"There is no call {call_id}.")
    return call


SID_RE = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")


def valid_sid(value: str | None) -> str | None:
    """Return ``value`` if it has the shape of a Twilio SID (CA…, CF…), else None."""
    return value if value and SID_RE.match(value) else None


def by_sid(sid: str | None) -> Call | None:
    if not valid_sid(sid):
        return None
    return db.session.scalars(sa.select(Call).where(Call.sid == sid)).one_or_none()


def live_call_of(signup_id: int) -> Call | None:
    return db.session.scalars(
        sa.select(Call)
        .where(Call.signup_id == signup_id, Call.state.in_(CALL_LIVE))
        .order_by(Call.id.desc())
        .limit(1)
    ).first()


def lines(forum: Forum) -> list[Call]:
    """Every live call of the forum, then the most recent ended ones."""
    live = db.session.scalars(
        sa.select(Call)
        .where(Call.forum_id == forum.id, Call.state.in_(CALL_LIVE))
        .order_by(Call.id)
    ).all()
    ended = db.session.scalars(
        sa.select(Call)
        .where(Call.forum_id == forum.id, Call.state.not_in(CALL_LIVE))
        .order_by(Call.id.desc())
        .limit(RECENT_ENDED)
    ).all()
    return [*live, *ended]


@dataclass
class BoardLines:
    """The lines a board shows, from one query: each signup's call on the line, the
    callers on the line producers have not approved, and the studio's last call."""

    of: dict[int, Call]
    unscreened: list[tuple[Call, Signup | None]]
    studio: Call | None


@functools.cache
def _board_lines_query() -> Any:
    # Built once per process, the forum a bind parameter: the board polls it.
    forum_id: sa.BindParameter[int] = sa.bindparam("lines_forum")
    last_studio = (
        sa.select(sa.func.max(Call.id))
        .where(Call.forum_id == forum_id, Call.direction == CallDirection.STUDIO)
        .scalar_subquery()
    )
    return (
        sa.select(Call, Signup)
        .outerjoin(Signup, Signup.id == Call.signup_id)
        .where(Call.forum_id == forum_id, sa.or_(Call.state.in_(CALL_LIVE), Call.id == last_studio))
        .order_by(Call.id)
    )


def board_lines(forum: Forum) -> BoardLines:
    """Each of the forum's signups' call on the line, ``unscreened`` and
    ``studio_call`` answer, in one query: the forum's live calls, with their signups,
    and its last studio call. A forum has few calls on the line at once."""
    rows = db.session.execute(_board_lines_query(), {"lines_forum": forum.id}).all()
    lines = BoardLines({}, [], None)
    for call, signup in rows:
        if call.direction == CallDirection.STUDIO:
            lines.studio = call  # in id order: the last one stays
        if call.state not in CALL_LIVE:
            continue
        if call.signup_id is not None:
            lines.of[call.signup_id] = call
        if (
            call.state in CALL_WAITING
            and call.direction != CallDirection.STUDIO
            and (signup is None or signup.status not in SIGNUP_CLEARED)
        ):
            lines.unscreened.append((call, signup))
    return lines


def unscreened(forum: Forum) -> list[tuple[Call, Signup | None]]:
    """Callers on the line whom producers have not approved: to screen live."""
    rows = db.session.execute(
        sa.select(Call, Signup)
        .outerjoin(Signup, Signup.id == Call.signup_id)
        .where(
            Call.forum_id == forum.id,
            Call.state.in_(CALL_WAITING),
            Call.direction != CallDirection.STUDIO,
            sa.or_(Signup.id.is_(None), Signup.status.not_in(SIGNUP_CLEARED)),
        )
        .order_by(Call.id)
    ).all()
    return [(call, signup) for call, signup in rows]


def studio_call(forum: Forum) -> Call | None:
    return db.session.scalars(
        sa.select(Call)
        .where(Call.forum_id == forum.id, Call.direction == CallDirection.STUDIO)
        .order_by(Call.id.desc())
        .limit(1)
    ).first()


# What Twilio tells us: states only move forward.


def _move(call_id: int, to: CallState, from_: tuple[CallState, ...], **values: Any) -> bool:
    moved = changed(
        sa.update(Call)
        .where(Call.id == call_id, Call.state.in_(from_))
        .values(state=to, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    return bool(moved)


def record_inbound(
    forum: Forum,
    signup: Signup | None,
    sid: str,
    number: str | None,
    now: datetime,
    *,
    unverified: bool = False,
) -> Call:
    """Record a call to the show (once per CallSid, however often Twilio asks).

    ``unverified``: the caller ID is a listener's, but its carrier could not vouch for it.
    """
    db.session.execute(
        upsert_insert(Call.__table__)
        .values(
            forum_id=forum.id,
            signup_id=signup.id if signup is not None else None,
            sid=sid,
            direction=CallDirection.INBOUND,
            number=number,
            state=CallState.HOLDING,
            created_at=now,
            waiting_since=now,
            updated_at=now,
            caller_unverified=unverified,
        )
        .on_conflict_do_nothing(index_elements=["sid"])
    )
    call = by_sid(sid)
    assert call is not None
    return call


def adopt_sid(call: Call, sid: str) -> None:
    """Learn a dial-out's CallSid from its first callback, if the dialler has not yet."""
    if valid_sid(sid) and call.sid is None:
        db.session.execute(
            sa.update(Call)
            .where(Call.id == call.id, Call.sid.is_(None))
            .values(sid=sid)
            .execution_options(synchronize_session=False)
        )


def holding(call: Call, now: datetime) -> bool:
    return _move(
        call.id,
        CallState.HOLDING,
        CALL_WAITING,
        waiting_since=sa.func.coalesce(Call.waiting_since, now),
    )


def on_air(call: Call, now: datetime, conference_sid: str | None = None) -> bool:
    values: dict[str, Any] = {"on_air_at": sa.func.coalesce(Call.on_air_at, now)}
    if valid_sid(conference_sid):
        values["conference_sid"] = conference_sid
    return _move(call.id, CallState.ON_AIR, CALL_LIVE, **values)


def ended(call: Call, now: datetime, reason: str, *, failed: bool = False) -> bool:
    return _move(
        call.id,
        CallState.FAILED if failed else CallState.COMPLETED,
        CALL_LIVE,
        ended_at=now,
        end_reason=reason[:32],
    )


# Twilio's call statuses: the ones that end a call, and whether that is a failure.
FINAL_STATUSES = {
    "completed": False,
    "busy": True,
    "no-answer": True,
    "failed": True,
    "canceled": True,
}


def call_status(call: Call, status: str, now: datetime) -> None:
    """Apply a call status callback (ringing and answered change nothing we show)."""
    if status in FINAL_STATUSES:
        ended(call, now, status.replace("-", "_"), failed=FINAL_STATUSES[status])


def set_flags(call: Call, **flags: bool | str) -> None:
    """Record ``muted``/``held`` (and the conference SID) as the conference reports them."""
    db.session.execute(
        sa.update(Call)
        .where(Call.id == call.id)
        .values(updated_at=utcnow(), **flags)
        .execution_options(synchronize_session=False)
    )
