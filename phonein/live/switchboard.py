"""The producers' switchboard: call a listener back, dial the studio, drop a call, hold or
mute a caller on air, and make room in the hold queue.

Each operation checks what it may do and writes what it wants of the call; the requests
to Twilio follow the commit (``live.dispatch``). Holding, muting and resizing the queue
are made at once: the producer is waiting to see them happen.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from flask import current_app

from .. import phones
from ..errors import Conflict
from ..extensions import db
from ..models import (
    CALL_LIVE,
    SIGNUP_CLEARED,
    Call,
    CallCommand,
    CallDirection,
    CallState,
    Forum,
    Signup,
    SignupStatus,
)
from ..twilio import TwilioFailure
from . import backends, calls, dispatch, queue, twiml

log = logging.getLogger("phonein.live")


def place_callback(signup: Signup, now: datetime) -> Call:
    """Have phonein call an approved listener back; they join the same hold."""
    if not current_app.config.get("TWILIO_FROM_NUMBER"):
        raise Conflict(
            "Calling back needs the show's number: set TWILIO_FROM_NUMBER.", code="voice_off"
        )
    if signup.status not in SIGNUP_CLEARED:
        raise Conflict(
            f"Only approved listeners are called back; this one is {signup.status}.",
            code="not_approved",
        )
    if not signup.phone:
        raise Conflict("This signup has no phone number any more.", code="no_phone")
    reach, why = phones.reach(signup.phone, phones.Policy.from_config(current_app.config))
    if reach == phones.Reach.NONE:
        raise Conflict(f"phonein does not call this number. {why}", code="number_refused")
    if calls.live_call_of(signup.id) is not None:
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
    dispatch.make_soon(call)
    return call


def dial_studio(forum: Forum, now: datetime) -> Call:
    """Dial the studio line into the on-air conference again (it dropped)."""
    if not current_app.config.get("VOICE_STUDIO_NUMBER"):
        raise Conflict("Set PHONEIN_VOICE_STUDIO_NUMBER to dial the studio.", code="no_studio")
    if not current_app.config.get("TWILIO_FROM_NUMBER"):
        raise Conflict(
            "Dialling out needs the show's number: set TWILIO_FROM_NUMBER.", code="voice_off"
        )
    if not dispatch.forum_live(forum, now):
        raise Conflict("The studio is already on the line.", code="on_the_line")
    call = db.session.scalars(
        sa.select(Call).where(
            Call.forum_id == forum.id,
            Call.direction == CallDirection.STUDIO,
            Call.state.in_(CALL_LIVE),
        )
    ).one()
    dispatch.make_soon(call)
    return call


def hang_up(call: Call, now: datetime) -> None:
    """A producer drops a call: it ends; a waiting caller's signup is dropped, an on-air
    caller's is done."""
    if not call.live:
        raise Conflict("This call has already ended.", code="call_ended")
    signup = db.session.get(Signup, call.signup_id) if call.signup_id else None
    if signup is not None:
        queue.bump(signup.forum_id)  # the status read next stays true until commit
        db.session.refresh(signup)
        if signup.status == SignupStatus.QUEUED:
            queue.remove(call.forum.slug, signup.id, now, to=SignupStatus.DROPPED)
        elif signup.status == SignupStatus.ON_AIR:
            queue.finish(call.forum.slug, now)
    dispatch.want(call.forum_id, CallCommand.END, Call.id == call.id)


TWILIO_FLAG = {"muted": "muted", "held": "hold"}


def participant(call: Call, *, muted: bool | None, held: bool | None) -> None:
    """Hold or mute an on-air caller (Conference Participants); raise TwilioFailure."""
    if call.state != CallState.ON_AIR or not call.sid:
        raise Conflict(
            "Only a call in the on-air conference can be held or muted.", code="not_on_air"
        )
    backend = backends.backend()
    conference = call.conference_sid or backend.conference_sid(twiml.conference_name(call.forum))
    if conference is None:
        raise Conflict("The on-air conference has not started yet.", code="no_conference")
    # Twilio calls the conference hold "hold"; phonein's column is "held".
    changes = {
        name: value for name, value in (("muted", muted), ("held", held)) if value is not None
    }
    if changes:
        backend.participant(conference, call.sid, **{TWILIO_FLAG[k]: v for k, v in changes.items()})
    calls.set_flags(call, conference_sid=conference, **changes)


def make_room(queue_sid: str | None, *, limit: int | None = None, full: bool = False) -> bool:
    """Raise the hold queue's limit to VOICE_QUEUE_MAX_SIZE; return whether it was raised.

    Twilio creates a queue for 100 callers. The hold loop raises the limit when four fifths
    are taken (Twilio tells it the limit); a caller refused because the queue is ``full``
    asks Twilio for the limit first, so a queue already at the most is not raised again.
    """
    wanted = min(5000, int(current_app.config["VOICE_QUEUE_MAX_SIZE"]))
    if not calls.valid_sid(queue_sid):
        return False
    backend = backends.backend()
    try:
        if full:
            limit = backend.queue_limit(str(queue_sid))
        if limit is None or limit >= wanted:
            return False
        backend.resize_queue(str(queue_sid), wanted)
    except TwilioFailure as error:
        log.warning("voice: could not let queue %s hold %d callers: %s", queue_sid, wanted, error)
        return False
    log.info("voice: queue %s now holds up to %d callers", queue_sid, wanted)
    return True
