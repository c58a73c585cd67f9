"""Twilio webhooks: inbound SMS keywords and delivery status callbacks.

Every request must carry a valid ``X-Twilio-Signature`` for ``PUBLIC_URL`` + path: the
URL Twilio was given, whatever proxies stand between it and this process.
"""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import datetime

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, request
from twilio.twiml.messaging_response import MessagingResponse

from .. import phones
from ..database import changed, commit, upsert_insert
from ..extensions import csrf, db
from ..models import Message, MessageKind, MessageStatus, OptOut, Signup, WebhookReceipt
from ..times import utcnow
from ..twilio import signed
from . import outbox, status
from .texts import body, no_signup_reply, start_reply, stop_reply

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks/twilio")
csrf.exempt(bp)

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
START_WORDS = {"START", "YES", "UNSTOP"}
HELP_WORDS = {"HELP", "INFO"}
# The private link, asked for in any of the shipped languages (the texts say LINK, LIEN,
# ENLACE or رابط): see ``link_word``.
LINK_WORDS = {"LINK", "LIEN", "ENLACE", "رابط", "الرابط"}
# What a listener may add around a keyword without meaning anything else by it.
_TRIM = " \t\r\n.!?¡¿،؟\"'«»"
# Arabic short vowels and marks (harakat) and the tatweel, which do not change the word.
_ARABIC_MARKS = dict.fromkeys([*range(0x064B, 0x0653), 0x0670, 0x0640])


# Twilio sends the same token with every retry of one webhook request.
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"


def first_delivery(*identity: str | None) -> bool:
    """Record this signed webhook request as applied; say False when it was applied before.

    The key is Twilio's idempotency token when the request has one, else the route and
    ``identity`` (a SID and the status it reports). The receipt is written in the request's
    own transaction: it commits with the change it guards, or not at all, so a request
    that failed half-way is applied when Twilio retries it. A request without any identity
    cannot be recognised again and is applied.
    """
    token = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
    if token:
        key = f"token:{token}"
    elif any(identity):
        key = ":".join((request.path, *(part or "" for part in identity)))
    else:
        return True
    if len(key) > 200:
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    # RETURNING, not the row count: psycopg reports -1 for an INSERT … ON CONFLICT here.
    inserted = db.session.execute(
        upsert_insert(WebhookReceipt.__table__)
        .values(key=key, received_at=utcnow())
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(WebhookReceipt.__table__.c.key)
    ).scalar()
    return inserted is not None


def forget_receipts(before: datetime) -> int:
    """Forget receipts older than ``before``: Twilio retries a webhook within hours."""
    return changed(sa.delete(WebhookReceipt).where(WebhookReceipt.received_at < before))


def keyword(text: str) -> str:
    """Return an inbound text as the keyword it may be: in capitals, without punctuation
    around it or Arabic vowel marks ("Stop." is STOP, «رابط» is رابط)."""
    return unicodedata.normalize("NFKC", text).translate(_ARABIC_MARKS).strip(_TRIM).upper()


def link_word(text: str) -> bool:
    """Say whether an inbound text asks for the private link: LINK or a translation."""
    return keyword(text) in LINK_WORDS


def _opted_out(phone: str) -> bool:
    return db.session.get(OptOut, phone) is not None


def _log_reply(phone: str, text: str, now: datetime) -> None:
    """Record a keyword's inline reply in the SMS log (no forum: producers do not see it)."""
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


def _language_of(phone: str) -> str | None:
    """The language of the number's latest signup: what its replies are in."""
    signup = db.session.scalars(
        sa.select(Signup).where(Signup.phone == phone).order_by(Signup.id.desc()).limit(1)
    ).first()
    return signup.reads_in if signup is not None else None


def twiml(text: str | None = None) -> Response:
    response = MessagingResponse()
    if text:
        response.message(text)
    return Response(str(response), mimetype="application/xml")


@bp.post("/sms")
@signed
def inbound_sms() -> Response:
    """STOP-type words opt the number out of everything, START-type back in, HELP answers,
    LINK (and its translations) texts the number its private link."""
    sender = request.form.get("From", "")
    word = keyword(request.form.get("Body", ""))
    now = utcnow()
    phone = phones.caller_id(sender, current_app.config["DEFAULT_REGION"])
    if phone is None:  # short codes and garbage: nothing to record
        return twiml()
    # A retry (Twilio did not get the first answer) gets the same reply but changes
    # nothing again: no second HELP row in the producers' log.
    first = first_delivery(request.form.get("MessageSid", "")[:64], word[:32])
    if word in STOP_WORDS:
        language = _language_of(phone)
        if first:
            outbox.opt_out(phone, now, word=word[:32])
            commit()
        # Where Twilio's own opt-out handling is on, it sends its reply and drops ours:
        # set its localized replies in the Messaging Service (README, Twilio).
        return twiml(stop_reply(language))
    if word in START_WORDS:
        if first:
            outbox.opt_in(phone, word=word[:32])
            commit()
        return twiml(start_reply(_language_of(phone)))
    if word in HELP_WORDS:
        text = body(MessageKind.HELP, None, None, now, language=_language_of(phone))
        if first:
            _log_reply(phone, text, now)
            commit()
        return twiml(text)
    if word in LINK_WORDS:
        return _link(phone, now, first)
    return twiml()


def _link(phone: str, now: datetime, first: bool) -> Response:
    """LINK: text the number its private link for its latest signup, through the outbox.

    Not an inline reply: the outbox fences the send, keeps to the rate, fills the link in
    only as it goes and logs it with the placeholder. At most one a day per signup (the
    key), so a second LINK that day, or Twilio's retry, sends nothing more. A number that
    opted out gets nothing; one without a signup to come gets a short answer instead.
    """
    reply = None
    if not _opted_out(phone):
        signup = outbox.link_signup(phone, now)
        if signup is None:
            reply = no_signup_reply(_language_of(phone))
            if first:
                _log_reply(phone, reply, now)
        elif first:
            outbox.private_link(signup, now)
    commit()  # with the request's receipt (first_delivery)
    return twiml(reply)


@bp.post("/status")
@signed
def delivery_status() -> tuple[str, int]:
    """Record a delivery status; statuses move forward only."""
    sid = request.form.get("MessageSid", "")[:64]
    reported = status.TWILIO.get(request.form.get("MessageStatus", ""))
    if not sid or reported is None:
        return "", 204
    if not first_delivery(sid, request.form.get("MessageStatus", "")[:32]):
        return "", 204
    code = request.form.get("ErrorCode", "")
    status.report(sid, reported, int(code) if code.isdigit() and len(code) < 9 else None, utcnow())
    commit()
    return "", 204
