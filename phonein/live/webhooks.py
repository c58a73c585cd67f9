"""Voice webhooks: the TwiML Twilio runs for every call of the live phone-in.

``POST /webhooks/twilio/voice`` is the show number's voice URL. A caller whose number
matches a signup of the live forum is greeted by name; anyone else is held too, for a
producer to screen live. Callers wait in one Twilio queue per forum; the hold loop
(``/wait``, Twilio's ``waitUrl``) announces the place in phonein's order, not Twilio's,
and Twilio requests it again when it ends, so the place is refreshed while they wait.
Calls outside a live forum hear when the next one is.

The other routes are the URLs phonein gives Twilio for the calls it handles: ``/answer``
(a dial-out was answered), ``/on-air`` (a held caller moved into the on-air conference),
``/left`` (a caller left the hold queue), ``/status`` (call status callbacks) and
``/conference`` (the on-air conference's participant events). Each one records what it
learns in ``live.calls``; every request must be signed by Twilio.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, request
from twilio.twiml.voice_response import VoiceResponse

from .. import phones
from ..extensions import csrf, db
from ..i18n import text_gettext
from ..models import (
    MAX_ID,
    SIGNUP_CLEARED,
    Call,
    CallDirection,
    CallState,
    Forum,
    ForumStatus,
    Signup,
    SignupStatus,
    forums_not_over,
)
from ..sms.webhooks import first_delivery
from ..times import utcnow
from ..twilio import signed
from . import calls, queue, switchboard, twiml
from .twiml import HOLD_SECONDS, language_of, say

bp = Blueprint("voice", __name__, url_prefix="/webhooks/twilio/voice")
csrf.exempt(bp)

# Enqueue results that mean the caller left the hold queue because of a failure.
QUEUE_FAILURES = {"queue-full", "system-error", "error"}


def _twiml(response: VoiceResponse) -> Response:
    return Response(str(response), mimetype="application/xml")


def _empty() -> Response:
    return _twiml(VoiceResponse())


def _caller(raw: str) -> str | None:
    return phones.caller_id(raw, current_app.config["DEFAULT_REGION"])


def _live_forum(phone: str | None, now: datetime) -> tuple[Forum | None, Signup | None]:
    """Return the live forum for this call and the caller's signup in it, if any.

    With several forums live at once, the caller belongs to the one where they are
    expected (approved, queued, on air), else one where they signed up at all, else the
    latest to start.
    """
    not_over = db.session.scalars(forums_not_over(now))
    live = [f for f in not_over if f.status_at(now) == ForumStatus.LIVE]
    if not live:
        return None, None
    signups: list[Signup] = []
    if phone:
        signups = list(
            db.session.scalars(
                sa.select(Signup).where(
                    Signup.forum_id.in_([f.id for f in live]), Signup.phone == phone
                )
            )
        )
    by_forum = {f.id: f for f in live}
    for signup in sorted(signups, key=lambda s: s.status not in SIGNUP_CLEARED):
        return by_forum[signup.forum_id], signup
    return live[-1], None


def caller_id_attested(verstat: str) -> bool:
    """Say whether a call's ``StirVerstat`` lets its caller ID stand for the listener.

    Twilio reports the STIR/SHAKEN verification of US calls: TN-Validation-Passed-A (the
    carrier vouches for caller and number), -B or -C (partial), TN-Validation-Failed-*,
    or No-TN-Validation; most calls from outside the US carry none. A failed check never
    stands. With VOICE_REQUIRE_ATTESTATION, only full attestation (A) does.
    """
    verstat = verstat.strip()
    if verstat.startswith("TN-Validation-Failed"):
        return False
    if current_app.config["VOICE_REQUIRE_ATTESTATION"]:
        return verstat == "TN-Validation-Passed-A"
    return True


def _call_from_request() -> Call | None:
    """The call this request is about: by phonein's id in the URL, else by CallSid."""
    call = None
    raw = request.args.get("call", "")
    if raw.isdigit() and 0 < int(raw) <= MAX_ID:
        call = db.session.get(Call, int(raw))
    sid = request.form.get("CallSid", "")
    if call is None:
        call = calls.by_sid(sid)
    elif sid:
        calls.adopt_sid(call, sid)
    return call


def _no_forum_now(now: datetime) -> Response:
    upcoming = list(db.session.scalars(forums_not_over(now)))
    response = VoiceResponse()
    if upcoming:
        nxt = upcoming[0]
        language = language_of(nxt)
        say(
            response,
            language,
            text_gettext(
                language,
                "Thank you for calling. There is no phone-in on air right now. The next one, "
                "%(title)s, starts on %(when)s. Sign up on our website.",
                title=nxt.title,
                when=twiml.spoken_moment(nxt.starts_at, nxt.timezone, language),
            ),
        )
    else:
        say(
            response,
            None,
            text_gettext(None, "Thank you for calling. There is no phone-in on air right now."),
        )
    response.hangup()
    return _twiml(response)


@bp.post("")
@signed
def incoming_call() -> Response:
    """Greet the caller and hold them in the live forum's queue."""
    now = utcnow()
    phone = _caller(request.form.get("From", ""))
    forum, signup = _live_forum(phone, now)
    sid = calls.valid_sid(request.form.get("CallSid"))
    if forum is None or sid is None:
        return _no_forum_now(now)
    unverified = signup is not None and not caller_id_attested(request.form.get("StirVerstat", ""))
    if unverified:
        # Anyone can send any caller ID: one whose carrier could not vouch for it is not
        # the listener who signed up with that number until a producer knows better. Not
        # greeted by name, never straight on air: held as an unknown caller to be
        # screened live (or called back on the registered number, which proves it).
        current_app.logger.info("call %s: caller ID not attested, taken as unknown", sid)
        signup = None
    call = calls.record_inbound(forum, signup, sid, phone, now, unverified=unverified)
    response = VoiceResponse()
    language = language_of(forum, signup)
    if signup is not None and signup.status in SIGNUP_CLEARED:
        say(
            response,
            language,
            text_gettext(
                language,
                "Hello %(name)s, thank you for calling %(title)s.",
                name=signup.name,
                title=forum.title,
            ),
        )
    else:
        say(
            response,
            language,
            text_gettext(
                language,
                "Thank you for calling %(title)s. A producer will speak to you shortly.",
                title=forum.title,
            ),
        )
    if signup is not None and signup.status == SignupStatus.ON_AIR:
        # The producers put them on air before they rang: straight through.
        calls.on_air(call, now)
        twiml.conference_twiml(response, forum, studio=False, language=language)
    else:
        twiml.hold_twiml(response, forum, call)
    db.session.commit()
    return _twiml(response)


@bp.post("/wait")
@signed
def hold() -> Response:
    """Announce the caller's place in phonein's order, then hold; Twilio loops this."""
    response = VoiceResponse()
    forum = db.session.scalars(
        sa.select(Forum).where(Forum.slug == request.args.get("forum", ""))
    ).one_or_none()
    if forum is None or not forum.active_at(utcnow()):
        language = language_of(forum)
        say(
            response,
            language,
            text_gettext(language, "This phone-in is over. Thank you for calling. Goodbye."),
        )
        response.hangup()
        return _twiml(response)
    call = _call_from_request()
    signup = None
    if call is not None and call.signup_id is not None:
        signup = db.session.get(Signup, call.signup_id)
    else:
        phone = _caller(request.form.get("From", ""))
        if phone:
            signup = db.session.scalars(
                sa.select(Signup).where(Signup.forum_id == forum.id, Signup.phone == phone)
            ).one_or_none()
    form = request.form
    current, maximum = form.get("CurrentQueueSize", ""), form.get("MaxQueueSize", "")
    if current.isdigit() and maximum.isdigit() and int(current) >= int(maximum) * 4 // 5:
        switchboard.make_room(form.get("QueueSid"), limit=int(maximum))
    place = queue.position_of(signup) if signup is not None else None
    language = language_of(forum, signup)
    if place == 1:
        say(response, language, text_gettext(language, "You are next. Please stay on the line."))
    elif place:
        say(
            response,
            language,
            text_gettext(
                language, "You are number %(place)d in line. Please stay on the line.", place=place
            ),
        )
    else:
        say(
            response,
            language,
            text_gettext(language, "Please stay on the line: a producer will be with you shortly."),
        )
    response.pause(length=HOLD_SECONDS)
    db.session.commit()
    return _twiml(response)


@bp.post("/left")
@signed
def left_queue() -> Response:
    """The caller left the hold queue: hung up, moved on by phonein, or a failure."""
    call = _call_from_request()
    result = request.form.get("QueueResult", "")
    if (
        result == "queue-full"
        and call is not None
        and call.live
        # Full at Twilio's default: make room and hold the caller after all.
        and switchboard.make_room(request.form.get("QueueSid"), full=True)
    ):
        response = VoiceResponse()
        language = language_of(call.forum, call.signup)
        say(response, language, text_gettext(language, "Thank you for waiting."))
        return _twiml(twiml.hold_twiml(response, call.forum, call))
    if call is not None:
        if result == "hangup":
            calls.ended(call, utcnow(), "hung_up")
        elif result in QUEUE_FAILURES:
            calls.ended(call, utcnow(), f"queue_{result}", failed=True)
        db.session.commit()
    if result in QUEUE_FAILURES:
        # Twilio runs this TwiML when the caller could not be held (a full queue).
        response = VoiceResponse()
        language = language_of(call.forum, call.signup) if call is not None else None
        say(
            response,
            language,
            text_gettext(
                language,
                "Sorry, all our lines are busy. Please try again in a few minutes. Goodbye.",
            ),
        )
        response.hangup()
        return _twiml(response)
    return _empty()


@bp.post("/answer")
@signed
def answered() -> Response:
    """A call phonein placed was answered: the studio joins the conference, a listener
    called back hears who is calling and joins the hold."""
    now = utcnow()
    call = _call_from_request()
    response = VoiceResponse()
    if call is None or not call.live:
        response.hangup()
        db.session.commit()
        return _twiml(response)
    forum = call.forum
    if call.direction == CallDirection.STUDIO:
        calls.on_air(call, now)
        twiml.conference_twiml(response, forum, studio=True)
        db.session.commit()
        return _twiml(response)
    signup = db.session.get(Signup, call.signup_id) if call.signup_id else None
    language = language_of(forum, signup)
    if request.form.get("AnsweredBy", "").startswith(("machine", "fax")):
        # Voicemail: leave word, hang up, and show the producer it was not the listener.
        say(
            response,
            language,
            text_gettext(
                language,
                "Hello, this is %(title)s calling you back. Sorry we missed you. Goodbye.",
                title=forum.title,
            ),
        )
        response.hangup()
        calls.ended(call, now, "voicemail", failed=True)
        db.session.commit()
        return _twiml(response)
    if signup is None or not forum.active_at(now) or signup.status not in SIGNUP_CLEARED:
        say(
            response,
            language,
            text_gettext(
                language,
                "Hello, this is %(title)s. Sorry, we no longer need to speak to you today. "
                "Thank you, goodbye.",
                title=forum.title,
            ),
        )
        response.hangup()
        calls.ended(call, now, "not_needed")
        db.session.commit()
        return _twiml(response)
    say(
        response,
        language,
        text_gettext(
            language,
            "Hello %(name)s, this is %(title)s calling you back, as you asked.",
            name=signup.name,
            title=forum.title,
        ),
    )
    if signup.status == SignupStatus.ON_AIR:
        moved = calls.on_air(call, now)
        if moved:
            say(response, language, text_gettext(language, "You are going on air now."))
            twiml.conference_twiml(response, forum, studio=False, language=language)
    else:
        moved = calls.holding(call, now)
        if moved:
            say(
                response,
                language,
                text_gettext(language, "Please hold: a producer will put you on air."),
            )
            twiml.hold_twiml(response, forum, call)
    if not moved:  # dropped by a producer while this request ran
        say(
            response,
            language,
            text_gettext(language, "Sorry, we no longer need to speak to you today. Goodbye."),
        )
        response.hangup()
    db.session.commit()
    return _twiml(response)


@bp.post("/on-air")
@signed
def to_air() -> Response:
    """A held caller the producer put on air: into the on-air conference."""
    call = _call_from_request()
    response = VoiceResponse()
    if call is None or not call.live:
        response.hangup()
        return _twiml(response)
    if calls.on_air(call, utcnow()):
        twiml.conference_twiml(
            response,
            call.forum,
            studio=call.direction == "studio",
            language=language_of(call.forum, call.signup),
        )
    else:  # ended by a producer while this request ran
        response.hangup()
    db.session.commit()
    return _twiml(response)


@bp.post("/status")
@signed
def call_status() -> tuple[str, int]:
    """A call status callback: ringing, answered, completed, busy, no answer, failed."""
    call = _call_from_request()
    if call is not None and first_delivery(
        call.sid, request.form.get("CallStatus", "")[:32], request.form.get("SequenceNumber")
    ):
        calls.call_status(call, request.form.get("CallStatus", ""), utcnow())
        db.session.commit()
    return "", 204


CONFERENCE_FLAGS = {
    "participant-mute": ("muted", True),
    "participant-unmute": ("muted", False),
    "participant-hold": ("held", True),
    "participant-unhold": ("held", False),
}


@bp.post("/conference")
@signed
def conference_event() -> tuple[str, int]:
    """The on-air conference's participant events: who joined, left, was held or muted."""
    event = request.form.get("StatusCallbackEvent", "")
    call = calls.by_sid(request.form.get("CallSid", ""))
    if call is None:
        return "", 204
    # Mute, unmute, mute again are three requests: Twilio numbers each event of a
    # conference (SequenceNumber), so only a retry of the same one is recognised.
    if not first_delivery(
        call.sid,
        event[:32],
        request.form.get("SequenceNumber", "")[:16],
        request.form.get("ConferenceSid", "")[:64],
    ):
        return "", 204
    now = utcnow()
    if event == "participant-join":
        calls.on_air(call, now, request.form.get("ConferenceSid"))
    elif event == "participant-leave" and call.state == CallState.ON_AIR:
        calls.ended(call, now, "left_air")
    elif event in CONFERENCE_FLAGS:
        name, value = CONFERENCE_FLAGS[event]
        calls.set_flags(call, **{name: value})
    db.session.commit()
    return "", 204
