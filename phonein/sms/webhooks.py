"""Twilio webhooks: inbound SMS keywords and delivery status callbacks.

Every request must carry a valid ``X-Twilio-Signature`` for ``PUBLIC_URL`` + path: the
URL Twilio was given, whatever proxies stand between it and this process.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from twilio.twiml.messaging_response import MessagingResponse

from .. import phones
from ..database import commit
from ..extensions import csrf, db
from ..models import Message, MessageKind, MessageStatus
from ..times import utcnow
from ..twilio import signed
from . import outbox, status
from .texts import body

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks/twilio")
csrf.exempt(bp)

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
START_WORDS = {"START", "YES", "UNSTOP"}
HELP_WORDS = {"HELP", "INFO"}


def twiml(text: str | None = None) -> Response:
    response = MessagingResponse()
    if text:
        response.message(text)
    return Response(str(response), mimetype="application/xml")


@bp.post("/sms")
@signed
def inbound_sms() -> Response:
    """STOP-type words opt the number out of everything, START-type back in, HELP answers."""
    sender = request.form.get("From", "")
    word = request.form.get("Body", "").strip().upper()
    now = utcnow()
    phone = phones.caller_id(sender, current_app.config["DEFAULT_REGION"])
    if phone is None:  # short codes and garbage: nothing to record
        return twiml()
    if word in STOP_WORDS:
        outbox.opt_out(phone, now)
        commit()
        return twiml()  # Twilio's own opt-out reply confirms it to the listener
    if word in START_WORDS:
        outbox.opt_in(phone)
        commit()
        return twiml("You will get texts about your phone-ins again. Reply STOP to opt out.")
    if word in HELP_WORDS:
        text = body(MessageKind.HELP, None, None, now)
        db.session.add(
            Message(
                kind=MessageKind.HELP,
                key=request.form.get("MessageSid", "")[:64],
                to=phone,
                body=text,
                send_at=now,
                status=MessageStatus.SENT,
                sent_at=now,
                attempts=1,
                created_at=now,
                updated_at=now,
            )
        )
        commit()
        return twiml(text)
    return twiml()


@bp.post("/status")
@signed
def delivery_status() -> tuple[str, int]:
    """Record a delivery status; statuses move forward only."""
    sid = request.form.get("MessageSid", "")[:64]
    reported = status.TWILIO.get(request.form.get("MessageStatus", ""))
    if not sid or reported is None:
        return "", 204
    code = request.form.get("ErrorCode", "")
    status.report(sid, reported, int(code) if code.isdigit() and len(code) < 9 else None, utcnow())
    commit()
    return "", 204
