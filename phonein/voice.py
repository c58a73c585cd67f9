"""Calling in by voice (first slice): greet, hold in the forum's queue, announce the place.

Twilio posts ``/webhooks/twilio/voice`` when someone calls the show number. A caller whose
number matches a signup of the live forum is greeted by name; anyone else is held too, for
a producer to screen. Callers wait in one Twilio queue per forum; the hold loop
(``/webhooks/twilio/voice/wait``, Twilio's ``waitUrl``) announces the place in phonein's
order, not Twilio's, and Twilio requests it again when it ends, so the place is refreshed.
Calls outside a live forum hear when the next one is.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, request
from twilio.twiml.voice_response import VoiceResponse

from . import forums, phones, queue
from .errors import Invalid
from .extensions import csrf, db
from .models import Forum, ForumStatus, Signup, SignupStatus
from .times import format_in_zone, utcnow
from .webhooks import signed

bp = Blueprint("voice", __name__, url_prefix="/webhooks/twilio/voice")
csrf.exempt(bp)

HOLD_SECONDS = 20
VOICE = "Polly.Amy"
CALLABLE = (SignupStatus.APPROVED, SignupStatus.QUEUED, SignupStatus.ON_AIR)


def _twiml(response: VoiceResponse) -> Response:
    return Response(str(response), mimetype="application/xml")


def _caller(raw: str) -> str | None:
    try:
        return phones.normalize(
            raw, country=None, timezone=None, default_region=current_app.config["DEFAULT_REGION"]
        )
    except Invalid:
        return None  # withheld or unusual caller IDs


def _live_forum(phone: str | None, now: datetime) -> tuple[Forum | None, Signup | None]:
    """Return the live forum for this call and the caller's signup in it, if any."""
    live = [f for f in forums.list_upcoming(now) if f.status_at(now) == ForumStatus.LIVE]
    for forum in live:
        signup = None
        if phone:
            signup = db.session.scalars(
                sa.select(Signup).where(Signup.forum_id == forum.id, Signup.phone == phone)
            ).one_or_none()
        if signup is not None or forum is live[-1]:
            return forum, signup
    return None, None


def queue_name(forum: Forum) -> str:
    return f"phonein-{forum.slug}"[:64]


@bp.post("")
@signed
def incoming_call() -> Response:
    """Greet the caller and hold them in the live forum's queue."""
    now = utcnow()
    phone = _caller(request.form.get("From", ""))
    forum, signup = _live_forum(phone, now)
    response = VoiceResponse()
    if forum is None:
        upcoming = forums.list_upcoming(now)
        text = "Thank you for calling. There is no phone-in on air right now."
        if upcoming:
            nxt = upcoming[0]
            text += (
                f" The next one, {nxt.title}, starts on "
                f"{format_in_zone(nxt.starts_at, nxt.timezone)}. Sign up on our website."
            )
        response.say(text, voice=VOICE)
        response.hangup()
        return _twiml(response)
    if signup is not None and signup.status in CALLABLE:
        response.say(f"Hello {signup.name}, thank you for calling {forum.title}.", voice=VOICE)
    else:
        response.say(
            f"Thank you for calling {forum.title}. A producer will speak to you shortly.",
            voice=VOICE,
        )
    wait = f"{current_app.config['PUBLIC_URL']}/webhooks/twilio/voice/wait?" + urlencode(
        {"forum": forum.slug}
    )
    response.enqueue(queue_name(forum), wait_url=wait, wait_url_method="POST")
    return _twiml(response)


@bp.post("/wait")
@signed
def hold() -> Response:
    """Announce the caller's place in phonein's order, then hold; Twilio loops this."""
    response = VoiceResponse()
    forum = db.session.scalars(
        sa.select(Forum).where(Forum.slug == request.args.get("forum", ""))
    ).one_or_none()
    phone = _caller(request.form.get("From", ""))
    signup = None
    if forum is not None and phone:
        signup = db.session.scalars(
            sa.select(Signup).where(Signup.forum_id == forum.id, Signup.phone == phone)
        ).one_or_none()
    place = queue.position_of(signup) if signup is not None else None
    if place == 1:
        response.say("You are next. Please stay on the line.", voice=VOICE)
    elif place:
        response.say(f"You are number {place} in line. Please stay on the line.", voice=VOICE)
    else:
        response.say("Please stay on the line: a producer will be with you shortly.", voice=VOICE)
    response.pause(length=HOLD_SECONDS)
    return _twiml(response)
