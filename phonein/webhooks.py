"""Twilio webhooks: inbound SMS keywords and delivery status callbacks.

Every request must carry a valid ``X-Twilio-Signature`` for ``PUBLIC_URL`` + path: the
URL Twilio was given, whatever proxies stand between it and this process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from flask import Blueprint, Response, abort, current_app, request
from twilio.request_validator import RequestValidator

from . import delivery, messaging, phones
from .extensions import csrf, db
from .models import Message, MessageKind, MessageStatus
from .times import utcnow

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks/twilio")
csrf.exempt(bp)

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
START_WORDS = {"START", "YES", "UNSTOP"}
HELP_WORDS = {"HELP", "INFO"}


def signed(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse requests without a valid Twilio signature (403)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        token = current_app.config.get("TWILIO_AUTH_TOKEN")
        signature = request.headers.get("X-Twilio-Signature", "")
        url = current_app.config["PUBLIC_URL"] + request.full_path.rstrip("?")
        if (
            not token
            or not signature
            or not RequestValidator(token).validate(url, request.form.to_dict(), signature)
        ):
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def twiml(text: str | None = None) -> Response:
    body = f"<Message>{escape(text)}</Message>" if text else ""
    return Response(
        f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>',
        mimetype="application/xml",
    )


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
        messaging.opt_out(phone, now)
        db.session.commit()
        return twiml()  # Twilio's own opt-out reply confirms it to the listener
    if word in START_WORDS:
        messaging.opt_in(phone)
        db.session.commit()
        return twiml("You will get texts about your phone-ins again. Reply STOP to opt out.")
    if word in HELP_WORDS:
        text = messaging.body(MessageKind.HELP, None, None, now)
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
        db.session.commit()
        return twiml(text)
    return twiml()


@bp.post("/status")
@signed
def delivery_status() -> tuple[str, int]:
    """Record a delivery status; statuses move forward only."""
    sid = request.form.get("MessageSid", "")[:64]
    status = delivery.TWILIO.get(request.form.get("MessageStatus", ""))
    if not sid or status is None:
        return "", 204
    code = request.form.get("ErrorCode", "")
    delivery.report(sid, status, int(code) if code.isdigit() and len(code) < 9 else None, utcnow())
    db.session.commit()
    return "", 204
