"""The switchboard in the API: calls on the line, call-backs, the studio, hold, mute, hang up,
screening a caller live."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from .. import forums, signups
from ..accounts import require_api
from ..database import commit
from ..errors import Conflict, Upstream
from ..extensions import db
from ..live import calls, dispatch, queue, switchboard
from ..models import Call, CallState, Role
from ..times import utcnow
from ..twilio import TwilioFailure
from ..views import SignupView
from .common import PRODUCER_DOC, documented_errors
from .schemas import CallFlags, CallList, CallOut, ScreenCallIn, ScreenedCall

blp = Blueprint("api_calls", __name__, description="The switchboard: calls of the live phone-in")


def _placed(call: Call) -> Call:
    """Commit, which makes the dial-out; a refusal Twilio will not reconsider is an error."""
    commit()
    db.session.refresh(call)
    if call.state == CallState.FAILED and call.end_reason == dispatch.DIAL_FAILED:
        raise Upstream(call.error or "Twilio could not place the call.")
    return call


@blp.route("/forums/<slug>/calls", methods=["GET"])
@require_api(Role.PRODUCER)
@blp.response(200, CallList)
@documented_errors(blp, 401, 403, 404)
@blp.doc(**PRODUCER_DOC)
def list_calls(slug: str) -> dict[str, Any]:
    """Every call on the line now, then the 20 most recent that ended."""
    return {"calls": calls.lines(forums.get_by_slug(slug))}


@blp.route("/signups/<int:signup_id>/call", methods=["POST"])
@require_api(Role.PRODUCER)
@blp.response(201, CallOut)
@documented_errors(blp, 401, 403, 404, 409)
@blp.alt_response(502, description="Twilio refused the call")
@blp.doc(**PRODUCER_DOC)
def call_back(signup_id: int) -> tuple[Call, int]:
    """Call an approved listener back (Twilio ``calls.create``): they hear who is calling
    and join the forum's hold, or go straight on air if they already are."""
    signup = signups.get(signup_id)
    now = utcnow()
    queue.lock(signup.forum.slug, now)  # serialises with queue changes and other call-backs
    db.session.refresh(signup)
    return _placed(switchboard.place_callback(signup, now)), 201


@blp.route("/forums/<slug>/studio", methods=["POST"])
@require_api(Role.PRODUCER)
@blp.response(201, CallOut)
@documented_errors(blp, 401, 403, 404, 409)
@blp.alt_response(502, description="Twilio refused the call")
@blp.doc(**PRODUCER_DOC)
def dial_studio(slug: str) -> tuple[Call, int]:
    """Dial the studio line into the on-air conference (done by itself when the forum goes
    live; this redials it after it dropped). 409 while it is on the line."""
    now = utcnow()
    forum = queue.lock(slug, now)
    return _placed(switchboard.dial_studio(forum, now)), 201


@blp.route("/calls/<int:call_id>", methods=["PATCH"])
@require_api(Role.PRODUCER)
@blp.arguments(CallFlags)
@blp.response(200, CallOut)
@documented_errors(blp, 401, 403, 404, 409, 422)
@blp.alt_response(502, description="Twilio refused the change")
@blp.doc(**PRODUCER_DOC)
def change_call(data: dict[str, Any], call_id: int) -> Call:
    """Hold or mute a caller in the on-air conference (Conference Participants)."""
    call = calls.get(call_id)
    try:
        switchboard.participant(call, muted=data.get("muted"), held=data.get("held"))
    except TwilioFailure as error:
        if error.gone:
            raise Conflict("This call has left the conference.", code="not_on_air") from None
        raise Upstream(f"Twilio: {error}") from None
    commit()
    db.session.refresh(call)
    return call


@blp.route("/calls/<int:call_id>/hangup", methods=["POST"])
@require_api(Role.PRODUCER)
@blp.response(200, CallOut)
@documented_errors(blp, 401, 403, 404, 409)
@blp.doc(**PRODUCER_DOC)
def hang_up(call_id: int) -> Call:
    """Drop a call: the caller is thanked and hung up; a waiting caller's signup becomes
    ``dropped``, an on-air caller's ``done``."""
    call = calls.get(call_id)
    switchboard.hang_up(call, utcnow())
    commit()
    db.session.refresh(call)
    return call


@blp.route("/calls/<int:call_id>/screen", methods=["POST"])
@require_api(Role.PRODUCER)
@blp.arguments(ScreenCallIn)
@blp.response(200, ScreenedCall)
@documented_errors(blp, 401, 403, 404, 409, 422)
@blp.doc(**PRODUCER_DOC)
def screen_call(data: dict[str, Any], call_id: int) -> dict[str, Any]:
    """Screen a caller live: the producer types their name, location and question; they
    become an approved signup and, unless ``queue`` is false, join the queue."""
    call = calls.get(call_id)
    if not call.live:
        raise Conflict("This caller has hung up.", code="call_ended")
    if call.direction == "studio":
        raise Conflict("The studio line is not a caller.", code="not_a_caller")
    now = utcnow()
    signup = signups.screen_call(call, data, now)
    position = queue.position_of(signup)
    already_queued = position is not None and data.get("position") is None
    if data.get("queue", True) and not already_queued:
        _, signup, position = queue.place(call.forum.slug, signup.id, data.get("position"), now)
    commit()
    return {
        "call": call,
        "signup": SignupView(signup, queue_position=position, call=call),
        "position": position,
    }
