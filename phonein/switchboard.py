"""The switchboard: every call of a forum, its state, and what phonein wants done with it.

Two columns carry the live phone-in. ``Call.state`` is what Twilio last told us (status
callbacks, conference events, the TwiML it fetched); it only moves forward, so a late or
repeated callback cannot bring an ended call back. ``Call.wanted`` is what phonein wants:
written in the same transaction as its cause (the producer's "next", the forum closing),
and acted on only after that commits, by ``apply_pending``: right away in the request
that caused it, and again by the scheduler's tick for anything a crash or a Twilio error
left undone. A request is claimed with a conditional UPDATE before it is made, so two
processes never make it twice at once; ``retry_stale`` makes it again when the call did
not follow.

Nothing here commits except ``apply_pending``/``apply_one``, which run outside requests'
own transactions.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import current_app
from twilio.twiml.voice_response import Dial, VoiceResponse

from . import messaging, telephony
from .database import upsert_insert
from .errors import Conflict, NotFound
from .extensions import db
from .models import (
    LIVE_CALL_STATES,
    MAX_ID,
    Call,
    CallCommand,
    CallDirection,
    CallState,
    Forum,
    ForumStatus,
    Signup,
    SignupStatus,
)
from .telephony import VoiceError
from .times import utcnow

log = logging.getLogger("phonein.switchboard")

VOICE = "Polly.Amy"
HOLD_SECONDS = 20
# A request Twilio accepted that the call has not followed after this long is made again.
RETRY_AFTER = timedelta(seconds=15)
MAX_ATTEMPTS = 5
BACKOFF_MAX = 30
# Back-timing: a waiting caller "makes it" with at least this long on air before the end.
MIN_AIRTIME = timedelta(minutes=1)
RECENT_ENDED = 20
DIAL_FAILED = "dial_failed"

LIVE = [s.value for s in LIVE_CALL_STATES]
# Signups a producer has let through: their callers are not "unscreened".
SCREENED = [SignupStatus.APPROVED, SignupStatus.QUEUED, SignupStatus.ON_AIR]
# Callers who still wait for their turn on the line (not on air, not the studio).
WAITING_STATES = [CallState.RINGING.value, CallState.HOLDING.value]


# Names and URLs.


def queue_name(forum: Forum) -> str:
    return f"phonein-{forum.slug}"[:64]


def conference_name(forum: Forum) -> str:
    return f"phonein-{forum.slug}-on-air"


def url(path: str, **query: Any) -> str:
    """The public URL of a voice webhook: what Twilio requests and signs."""
    base = f"{current_app.config['PUBLIC_URL']}/webhooks/twilio/voice{path}"
    return f"{base}?{urlencode(query)}" if query else base


# TwiML.


def hold_twiml(response: VoiceResponse, forum: Forum, call: Call) -> VoiceResponse:
    """Hold the caller in the forum's Twilio queue; the hold loop announces their place."""
    response.enqueue(
        queue_name(forum),
        wait_url=url("/wait", forum=forum.slug),
        wait_url_method="POST",
        action=url("/left", call=call.id),
        method="POST",
    )
    return response


def conference_twiml(response: VoiceResponse, forum: Forum, *, studio: bool) -> VoiceResponse:
    """Join the on-air conference; a caller taken out of it is thanked afterwards."""
    dial = Dial()
    dial.conference(
        conference_name(forum),
        start_conference_on_enter=True,
        end_conference_on_exit=False,
        beep=False,
        status_callback=url("/conference", forum=forum.slug),
        status_callback_method="POST",
        status_callback_event="start end join leave mute hold",
    )
    response.append(dial)
    if not studio:
        response.say(f"Thank you for calling {forum.title}. Goodbye.", voice=VOICE)
    return response


def farewell_twiml(command: str, forum: Forum, call: Call) -> str:
    response = VoiceResponse()
    if call.direction != CallDirection.STUDIO:
        if command == CallCommand.GOODBYE and forum.status == ForumStatus.CANCELLED:
            response.say(
                f"Sorry: {forum.title} has been cancelled, so we cannot take your call. "
                "Thank you for calling. Goodbye.",
                voice=VOICE,
            )
        elif command == CallCommand.GOODBYE:
            response.say(
                f"{forum.title} is now over, and we could not take your call today. Thank "
                "you for waiting. Your question may still be published with the selection "
                "of comments on our website. Goodbye.",
                voice=VOICE,
            )
        else:
            response.say(f"Thank you for calling {forum.title}. Goodbye.", voice=VOICE)
    response.hangup()
    return str(response)


# Finding calls.


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
        .where(Call.signup_id == signup_id, Call.state.in_(LIVE))
        .order_by(Call.id.desc())
        .limit(1)
    ).first()


def lines(forum: Forum) -> list[Call]:
    """Every live call of the forum, then the most recent ended ones."""
    live = db.session.scalars(
        sa.select(Call).where(Call.forum_id == forum.id, Call.state.in_(LIVE)).order_by(Call.id)
    ).all()
    ended = db.session.scalars(
        sa.select(Call)
        .where(Call.forum_id == forum.id, Call.state.not_in(LIVE))
        .order_by(Call.id.desc())
        .limit(RECENT_ENDED)
    ).all()
    return [*live, *ended]


def attach_calls(signups: list[Signup]) -> None:
    """Set ``live_call`` on each signup: its call on the line, if any (one query)."""
    ids = [s.id for s in signups]
    found: dict[int, Call] = {}
    if ids:
        for call in db.session.scalars(
            sa.select(Call).where(Call.signup_id.in_(ids), Call.state.in_(LIVE)).order_by(Call.id)
        ):
            found[call.signup_id or 0] = call
    for signup in signups:
        signup.live_call = found.get(signup.id)  # type: ignore[attr-defined]


def unscreened(forum: Forum) -> list[tuple[Call, Signup | None]]:
    """Callers on the line whom producers have not approved: to screen live."""
    rows = db.session.execute(
        sa.select(Call, Signup)
        .outerjoin(Signup, Signup.id == Call.signup_id)
        .where(
            Call.forum_id == forum.id,
            Call.state.in_(WAITING_STATES),
            Call.direction != CallDirection.STUDIO,
            sa.or_(Signup.id.is_(None), Signup.status.not_in(SCREENED)),
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


def _move(call_id: int, to: CallState, from_: list[str], **values: Any) -> bool:
    moved = db.session.execute(
        sa.update(Call)
        .where(Call.id == call_id, Call.state.in_(from_))
        .values(state=to, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(moved)


def record_inbound(
    forum: Forum, signup: Signup | None, sid: str, number: str | None, now: datetime
) -> Call:
    """Record a call to the show (once per CallSid, however often Twilio asks)."""
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
        [CallState.RINGING, CallState.HOLDING],
        waiting_since=sa.func.coalesce(Call.waiting_since, now),
    )


def on_air(call: Call, now: datetime, conference_sid: str | None = None) -> bool:
    values: dict[str, Any] = {"on_air_at": sa.func.coalesce(Call.on_air_at, now)}
    if valid_sid(conference_sid):
        values["conference_sid"] = conference_sid
    return _move(call.id, CallState.ON_AIR, LIVE, **values)


def ended(call: Call, now: datetime, reason: str, *, failed: bool = False) -> bool:
    return _move(
        call.id,
        CallState.FAILED if failed else CallState.COMPLETED,
        LIVE,
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


def set_flags(call: Call, **flags: bool) -> None:
    db.session.execute(
        sa.update(Call)
        .where(Call.id == call.id)
        .values(updated_at=utcnow(), **flags)
        .execution_options(synchronize_session=False)
    )


# What phonein wants: written with its cause, acted on after it commits.


def want(command: CallCommand, *conditions: sa.ColumnElement[bool]) -> int:
    """Ask for ``command`` on the live calls matching ``conditions``.

    A new command starts with a clean slate: tries spent on the last one do not count.
    """
    same = sa.and_(Call.wanted.is_not(None), Call.wanted == command)
    return (
        db.session.execute(
            sa.update(Call)
            .where(Call.state.in_(LIVE), *conditions)
            .values(
                wanted=command,
                attempts=sa.case((same, Call.attempts), else_=0),
                error=sa.case((same, Call.error), else_=None),
                applied_at=sa.case((same, Call.applied_at), else_=None),
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        or 0
    )


def after_step(done: Signup | None, on_air_now: Signup | None) -> None:
    """The queue moved: the finished caller's part ends, the new one goes on air."""
    if done is not None:
        want(CallCommand.END, Call.signup_id == done.id)
    if on_air_now is not None:
        want(CallCommand.ON_AIR, Call.signup_id == on_air_now.id)


def forum_live(forum: Forum, now: datetime) -> bool:
    """Dial the studio line into the on-air conference, once per forum.

    The partial unique index on live studio calls makes this a no-op when the studio is
    already on the line (or being dialled), however many processes try.
    """
    number = current_app.config.get("VOICE_STUDIO_NUMBER")
    if not number:
        return False
    inserted = db.session.execute(
        upsert_insert(Call.__table__)
        .values(
            forum_id=forum.id,
            direction=CallDirection.STUDIO,
            number=str(number),
            state=CallState.RINGING,
            wanted=CallCommand.DIAL,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing()
        .execution_options(preserve_rowcount=True)
    ).rowcount
    return bool(inserted)


def forum_over(forum: Forum, now: datetime) -> None:
    """The forum closed: callers still waiting hear a goodbye and get a text; the on-air
    caller is thanked; the studio line hangs up."""
    waiting = Call.state.in_(WAITING_STATES), Call.direction != CallDirection.STUDIO
    if forum.status != ForumStatus.CANCELLED:  # a cancelled forum has its own text
        for signup in db.session.scalars(
            sa.select(Signup)
            .join(Call, Call.signup_id == Signup.id)
            .where(Call.forum_id == forum.id, *waiting)
            .where(Signup.status.in_([SignupStatus.APPROVED, SignupStatus.QUEUED]))
            .distinct()
        ):
            messaging.goodbye(signup, now)
    want(CallCommand.GOODBYE, Call.forum_id == forum.id, *waiting)
    want(
        CallCommand.END,
        Call.forum_id == forum.id,
        sa.or_(Call.state == CallState.ON_AIR, Call.direction == CallDirection.STUDIO),
    )


def place_callback(signup: Signup, now: datetime) -> Call:
    """Have phonein call an approved listener back; they join the same hold."""
    if not current_app.config.get("TWILIO_FROM_NUMBER"):
        raise Conflict(
            "Calling back needs the show's number: set TWILIO_FROM_NUMBER.", code="voice_off"
        )
    if signup.status not in (SignupStatus.APPROVED, SignupStatus.QUEUED, SignupStatus.ON_AIR):
        raise Conflict(
            f"Only approved listeners are called back; this one is {signup.status}.",
            code="not_approved",
        )
    if not signup.phone:
        raise Conflict("This signup has no phone number any more.", code="no_phone")
    if live_call_of(signup.id) is not None:
        raise Conflict("This listener is already on the line.", code="on_the_line")
    call = Call(
        forum_id=signup.forum_id,
        signup_id=signup.id,
        direction=CallDirection.CALLBACK,
        number=signup.phone,
        state=CallState.RINGING,
        wanted=CallCommand.DIAL,
        created_at=now,
        updated_at=now,
    )
    db.session.add(call)
    db.session.flush()
    return call


def dial_studio(forum: Forum, now: datetime) -> Call:
    if not current_app.config.get("VOICE_STUDIO_NUMBER"):
        raise Conflict("Set PHONEIN_VOICE_STUDIO_NUMBER to dial the studio.", code="no_studio")
    if not current_app.config.get("TWILIO_FROM_NUMBER"):
        raise Conflict(
            "Dialling out needs the show's number: set TWILIO_FROM_NUMBER.", code="voice_off"
        )
    if not forum_live(forum, now):
        raise Conflict("The studio is already on the line.", code="on_the_line")
    call = db.session.scalars(
        sa.select(Call).where(
            Call.forum_id == forum.id,
            Call.direction == CallDirection.STUDIO,
            Call.state.in_(LIVE),
        )
    ).one()
    return call


def hang_up(call: Call, now: datetime) -> None:
    """A producer drops a call: it ends; a waiting caller's signup is dropped, an on-air
    caller's is done."""
    if not call.live:
        raise Conflict("This call has already ended.", code="call_ended")
    from . import queue  # queue imports this module

    signup = db.session.get(Signup, call.signup_id) if call.signup_id else None
    if signup is not None:
        queue.bump(signup.forum_id)  # the status read next stays true until commit
        db.session.refresh(signup)
        if signup.status == SignupStatus.QUEUED:
            queue.remove(call.forum.slug, signup.id, now, to=SignupStatus.DROPPED)
        elif signup.status == SignupStatus.ON_AIR:
            queue.finish(call.forum.slug, now)
    want(CallCommand.END, Call.id == call.id)


# Acting on what is wanted.


# What goes first when several requests wait: what the listeners hear on air.
PRIORITY = sa.case(
    {CallCommand.END: 0, CallCommand.ON_AIR: 1, CallCommand.DIAL: 2}, value=Call.wanted, else_=3
)
# Requests a web request makes itself; the scheduler's tick makes the rest a moment later
# (closing a forum with a hundred callers holding must not keep the producer waiting).
IN_REQUEST = 6


def pending_ids(forum_id: int | None = None, limit: int | None = None) -> list[int]:
    stmt = sa.select(Call.id).where(
        Call.wanted.is_not(None),
        sa.or_(Call.applied.is_(None), Call.applied != Call.wanted),
        Call.state.in_(LIVE),
        # After a Twilio error, applied_at holds the time of the next try (backoff).
        sa.or_(Call.applied_at.is_(None), Call.applied_at <= utcnow()),
    )
    if forum_id is not None:
        stmt = stmt.where(Call.forum_id == forum_id)
    return list(db.session.scalars(stmt.order_by(PRIORITY, Call.id).limit(limit)))


def retry_stale(now: datetime) -> int:
    """Make again the requests a call has not followed (a crash, a lost request)."""
    hanging_up = Call.wanted.in_([CallCommand.END, CallCommand.GOODBYE])
    stale = (
        sa.update(Call)
        .where(
            Call.applied == Call.wanted,
            Call.applied_at < now - RETRY_AFTER,
            Call.state.in_(LIVE),
            sa.or_(
                sa.and_(
                    Call.attempts < MAX_ATTEMPTS,
                    sa.or_(
                        sa.and_(Call.wanted == CallCommand.DIAL, Call.sid.is_(None)),
                        sa.and_(Call.wanted == CallCommand.ON_AIR, Call.state == CallState.HOLDING),
                    ),
                ),
                # Nobody may be left on the line: hang-ups are tried every RETRY_AFTER
                # for as long as the call lasts.
                hanging_up,
            ),
        )
        .values(applied=None)
        .execution_options(synchronize_session=False)
    )
    retried = db.session.execute(stale).rowcount or 0
    # A caller who rang in just as a producer put their signup on air was recorded after
    # the move was asked for: ask for it now.
    missed = (
        sa.update(Call)
        .where(
            Call.state == CallState.HOLDING,
            Call.direction != CallDirection.STUDIO,
            sa.or_(Call.wanted.is_(None), Call.wanted == CallCommand.DIAL),
            Call.signup_id.in_(sa.select(Signup.id).where(Signup.status == SignupStatus.ON_AIR)),
        )
        .values(wanted=CallCommand.ON_AIR, applied=None, attempts=0, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return retried + (db.session.execute(missed).rowcount or 0)


def apply_pending(forum_id: int | None = None, limit: int | None = None) -> int:
    """Make the Twilio requests wanted and not yet made; return how many were made."""
    done = 0
    for call_id in pending_ids(forum_id, limit):
        done += apply_one(call_id)
    db.session.commit()
    return done


def _claim(call_id: int, now: datetime) -> Call | None:
    calls = Call.__table__
    claimed = (
        sa.update(calls)
        .where(
            calls.c.id == call_id,
            calls.c.wanted.is_not(None),
            sa.or_(calls.c.applied.is_(None), calls.c.applied != calls.c.wanted),
        )
        .values(applied=calls.c.wanted, applied_at=now, attempts=calls.c.attempts + 1)
        .returning(*calls.c)
    )
    call = db.session.scalars(
        sa.select(Call).from_statement(claimed).execution_options(populate_existing=True)
    ).one_or_none()
    db.session.commit()
    return call


def apply_one(call_id: int) -> int:
    now = utcnow()
    call = _claim(call_id, now)
    if call is None:
        return 0
    command = CallCommand(call.applied or "")
    try:
        _act(call, command, now)
    except VoiceError as error:
        log.warning("voice: %s for call %s failed: %s", command, call.id, error)
        _failed(call, command, error, now)
    db.session.commit()
    return 1


def _act(call: Call, command: CallCommand, now: datetime) -> None:
    backend = telephony.backend()
    forum = db.session.get(Forum, call.forum_id)
    assert forum is not None
    if command == CallCommand.DIAL:
        if call.sid is not None:
            return  # a callback already told us it was placed
        sender = current_app.config.get("TWILIO_FROM_NUMBER")
        if not sender or not call.number:
            raise VoiceError("no number to call from or to: set TWILIO_FROM_NUMBER")
        if call.attempts > 1:
            # An earlier try may have been placed without phonein hearing back (a timeout,
            # a crash): ask Twilio before ringing the listener, or the studio, twice.
            placed = backend.find_call(call.number, call.created_at - timedelta(seconds=5))
            if placed is not None:
                adopt_sid(call, placed)
                return
        sid = backend.dial(
            call.number,
            str(sender),
            url("/answer", call=call.id),
            url("/status", call=call.id),
            # A listener's voicemail must not be held for the show; the studio is staffed.
            detect=call.direction == CallDirection.CALLBACK,
        )
        adopt_sid(call, sid)
    elif command == CallCommand.ON_AIR:
        # A call still ringing is put on air by the answer webhook, one on air already is.
        if call.state == CallState.HOLDING and call.sid:
            backend.redirect(call.sid, url("/on-air", call=call.id))
    elif command in (CallCommand.END, CallCommand.GOODBYE):
        if call.sid is None:
            ended(call, now, "cancelled")
            return
        if call.state == CallState.RINGING and call.direction != CallDirection.INBOUND:
            backend.cancel(call.sid)
        else:
            backend.play(call.sid, farewell_twiml(command, forum, call))
        # Told to hang up: the call is over for the show, whatever Twilio reports later.
        ended(call, now, command.value)
    _error(call, None)


def _error(call: Call, message: str | None) -> None:
    db.session.execute(
        sa.update(Call)
        .where(Call.id == call.id)
        .values(error=message[:500] if message else None)
        .execution_options(synchronize_session=False)
    )


def _failed(call: Call, command: CallCommand, error: VoiceError, now: datetime) -> None:
    if error.gone:
        ended(call, now, "gone")
        _error(call, None)
        return
    _error(call, f"Twilio: {error}" + (f" ({error.code})" if error.code else ""))
    hanging_up = command in (CallCommand.END, CallCommand.GOODBYE)
    if error.retryable and (call.attempts < MAX_ATTEMPTS or hanging_up):
        # Try again after a backoff: 1, 2, 4 … seconds, at most BACKOFF_MAX. Hang-ups are
        # never given up while the call lasts: nobody may be left on the line.
        delay = min(BACKOFF_MAX, 2 ** max(0, call.attempts - 1))
        db.session.execute(
            sa.update(Call)
            .where(Call.id == call.id, Call.applied == command)
            .values(applied=None, applied_at=now + timedelta(seconds=delay))
            .execution_options(synchronize_session=False)
        )
    elif command == CallCommand.DIAL:
        ended(call, now, DIAL_FAILED, failed=True)


TWILIO_FLAG = {"muted": "muted", "held": "hold"}


def participant(call: Call, *, muted: bool | None, held: bool | None) -> None:
    """Hold or mute an on-air caller (Conference Participants); raise VoiceError."""
    if call.state != CallState.ON_AIR or not call.sid:
        raise Conflict(
            "Only a call in the on-air conference can be held or muted.", code="not_on_air"
        )
    backend = telephony.backend()
    conference = call.conference_sid or backend.conference_sid(conference_name(call.forum))
    if conference is None:
        raise Conflict("The on-air conference has not started yet.", code="no_conference")
    # Twilio calls the conference hold "hold"; phonein's column is "held".
    changes = {
        name: value for name, value in (("muted", muted), ("held", held)) if value is not None
    }
    if changes:
        backend.participant(conference, call.sid, **{TWILIO_FLAG[k]: v for k, v in changes.items()})
    set_flags(call, conference_sid=conference, **changes)


def make_room(queue_sid: str | None, *, limit: int | None = None, full: bool = False) -> bool:
    """Raise the hold queue's limit to VOICE_QUEUE_MAX_SIZE; return whether it was raised.

    Twilio creates a queue for 100 callers. The hold loop raises the limit when four fifths
    are taken (Twilio tells it the limit); a caller refused because the queue is ``full``
    asks Twilio for the limit first, so a queue already at the most is not raised again.
    """
    wanted = min(5000, int(current_app.config["VOICE_QUEUE_MAX_SIZE"]))
    if not valid_sid(queue_sid):
        return False
    backend = telephony.backend()
    try:
        if full:
            limit = backend.queue_limit(str(queue_sid))
        if limit is None or limit >= wanted:
            return False
        backend.resize_queue(str(queue_sid), wanted)
    except VoiceError as error:
        log.warning("voice: could not let queue %s hold %d callers: %s", queue_sid, wanted, error)
        return False
    log.info("voice: queue %s now holds up to %d callers", queue_sid, wanted)
    return True


# Back-timing.


def average_call(forum: Forum) -> timedelta:
    """The average time on air of the forum's finished calls (a default before any)."""
    rows = db.session.execute(
        sa.select(Signup.on_air_at, Signup.done_at).where(
            Signup.forum_id == forum.id,
            Signup.on_air_at.is_not(None),
            Signup.done_at.is_not(None),
        )
    ).all()
    lengths = [(done - start).total_seconds() for start, done in rows if done > start]
    if not lengths:
        return timedelta(seconds=float(current_app.config["VOICE_DEFAULT_CALL_SECONDS"]))
    return timedelta(seconds=sum(lengths) / len(lengths))


def back_time(
    forum: Forum, on_air_now: Signup | None, waiting: list[Signup], now: datetime
) -> dict[str, Any]:
    """Estimate when each waiting caller goes on air; flag who will not make it.

    Sets ``expected_on_air_at`` and ``will_make_it`` on each waiting signup; returns the
    figures it used.
    """
    average = average_call(forum)
    start = max(now, forum.starts_at)
    current_left = timedelta(0)
    if on_air_now is not None and on_air_now.on_air_at is not None:
        current_left = max(timedelta(0), average - (now - on_air_now.on_air_at))
    for i, signup in enumerate(waiting):
        expected = start + current_left + i * average
        signup.expected_on_air_at = expected  # type: ignore[attr-defined]
        signup.will_make_it = expected + MIN_AIRTIME <= forum.ends_at  # type: ignore[attr-defined]
    return {
        "average_call_seconds": round(average.total_seconds()),
        "remaining_seconds": max(0, round((forum.ends_at - now).total_seconds())),
    }
