"""Proof of the number: a signup counts only once the listener enters the code sent to it.

With ``PHONEIN_VERIFY=sms`` a signup is only a ``Verification`` (the validated values, the
number, the channel, an expiry and a count of tries) until the right code comes back;
then ``signups.register`` makes or updates the signup. Until then nothing is texted but the
code, nothing reaches producers, and an existing signup is untouched, so the answer to a
signup says nothing about whether the number had signed up before.

With ``off`` the first signup of a number counts at once; another with the same number
changes nothing and texts that number (at most once a day) a link that, with the code in
it, opens its own signup.

Operations may flush but never commit; views commit once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app, g

from . import consents, i18n, phones, signups
from .database import after_commit
from .errors import Conflict, DomainError, Invalid, NotFound, Upstream
from .extensions import db
from .i18n import _
from .links import forum_url
from .models import CodeSend, Forum, Signup, Verification, VerificationChannel
from .sms import codes, texts

CODE_DIGITS = 6
# How long after a proof the listener may still choose a new private link on the page.
CHOICE_MINUTES = 30
# Forgotten this long after they expire: kept a while for the producers' abuse questions.
KEEP_EXPIRED = timedelta(days=1)
HOUR = timedelta(hours=1)
# A code not entered this long after it was sent counts against its number range.
UNPROVED_AFTER = timedelta(minutes=3)
# The key, in a waiting signup's values, of how its consents were asked.
SOURCE_KEY = "consent_source"


class TooMany(DomainError):
    """Too many codes to one number, or too many tries of one code."""

    status = 429
    code = "rate_limited"


@dataclass
class Proof:
    """What entering a code did: ``ok`` False for a wrong code (the try is counted)."""

    ok: bool
    registration: signups.Registration | None = None


def verifying(config: Any) -> bool:
    """Say whether signups wait for the number's proof (PHONEIN_VERIFY=sms)."""
    mode = str(config.get("VERIFY", "sms")).lower()
    return mode not in ("off", "false", "0", "no")


def _hash(verification_id: str, code: str) -> str:
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, f"{verification_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def _minutes(name: str) -> timedelta:
    return timedelta(minutes=int(current_app.config[name]))


def channel_for(phone: str) -> VerificationChannel:
    """Return how a code reaches ``phone``: a voice call for fixed lines, else a text."""
    reach, _ = phones.reach(phone, phones.Policy.from_config(current_app.config))
    return VerificationChannel.CALL if reach == phones.Reach.CALL_ONLY else VerificationChannel.SMS


def _sent_since(since: Any) -> sa.ScalarSelect[int]:
    return (
        sa.select(sa.func.count())
        .select_from(CodeSend)
        .where(CodeSend.sent_at > since)
        .scalar_subquery()
    )


# The station's budget, read with the time as a bind parameter: one statement built once.
_SENT_LAST_HOUR = sa.select(_sent_since(sa.bindparam("hour_ago")))


def budget_spent(now: datetime) -> bool:
    """Say whether the station's hourly budget of texts to unproved numbers is spent.

    PHONEIN_UNVERIFIED_SMS_PER_HOUR caps what anonymous clients together can make phonein
    send (codes, and in off mode links to a signup); texts to listeners who proved their
    number (confirmations, reminders) are not counted and never slowed.
    """
    sent = db.session.scalar(_SENT_LAST_HOUR, {"hour_ago": now - HOUR})
    return (sent or 0) >= int(current_app.config["UNVERIFIED_SMS_PER_HOUR"])


def _unproved_in_range(prefix: Any, since: Any, until: Any) -> sa.ScalarSelect[int]:
    """Count the codes to the number range ``prefix`` sent after ``since`` and up to
    ``until`` that were never entered.

    A code counts once UNPROVED_AFTER has passed without its number being proved: a script
    working through a block of numbers enters none, while a burst of real listeners from
    one place enter theirs within a minute or two and so never count.
    """
    proved = sa.exists().where(
        Verification.id == CodeSend.verification_id, Verification.proved_at.is_not(None)
    )
    return (
        sa.select(sa.func.count())
        .select_from(CodeSend)
        .where(
            CodeSend.prefix == prefix,
            CodeSend.sent_at > since,
            CodeSend.sent_at <= until,
            ~proved,
        )
        .scalar_subquery()
    )


def _to_number(phone: Any, since: Any) -> sa.ScalarSelect[int]:
    return (
        sa.select(sa.func.count())
        .select_from(CodeSend)
        .where(CodeSend.phone == phone, CodeSend.sent_at > since)
        .scalar_subquery()
    )


# The four counts behind the limits, in one SELECT built once with bind parameters: built
# anew for every signup, the statement (four subqueries) and its cache key cost more CPU
# than its execution.
_LIMIT_COUNTS = sa.select(
    _to_number(sa.bindparam("phone"), sa.bindparam("hour_ago")),
    _to_number(sa.bindparam("phone"), sa.bindparam("day_ago")),
    _unproved_in_range(
        sa.bindparam("prefix"), sa.bindparam("hour_ago"), sa.bindparam("unproved_before")
    ),
    _sent_since(sa.bindparam("hour_ago")),
)


def _check_send_limits(phone: str, now: datetime) -> None:
    """Refuse a code past the limits: per number (an hour and a day, every forum together),
    per number range (codes never entered), and the station's hourly budget.

    The four counts are read in one round trip; they are read, not locked, so requests
    at the same moment may each pass a last free slot (one code over per request).
    """
    config = current_app.config
    counts = db.session.execute(
        _LIMIT_COUNTS,
        {
            "phone": phone,
            "prefix": phones.number_range(phone),
            "hour_ago": now - HOUR,
            "day_ago": now - timedelta(days=1),
            "unproved_before": now - UNPROVED_AFTER,
        },
    ).one()
    hour, day, in_range, everywhere = (count or 0 for count in counts)
    if hour >= int(config["VERIFY_CODES_PER_HOUR"]):
        raise TooMany(
            _(
                "We have sent as many codes to this number as we can in an hour. "
                "Please try again later."
            )
        )
    if day >= int(config["VERIFY_CODES_PER_DAY"]):
        raise TooMany(
            _(
                "We have sent as many codes to this number as we can in a day. "
                "Please try again later."
            )
        )
    if in_range >= int(config["VERIFY_RANGE_UNPROVED_PER_HOUR"]):
        raise TooMany(
            _(
                "We cannot send more codes to numbers like this one just now. "
                "Please try again later."
            )
        )
    if everywhere >= int(config["UNVERIFIED_SMS_PER_HOUR"]):
        raise TooMany(
            _(
                "We are receiving more signups than we can check right now. "
                "Please try again in a little while: your place is not lost."
            )
        )


def _send(verification: Verification, now: datetime, *, new: bool) -> None:
    """Send a code for ``verification`` by its channel, within the per-number limits.

    A sender that reaches the outside world (Twilio Verify, the console) is called only
    once the request's transaction has committed (``database.after_commit``): a request
    that rolls back texts nobody. Its refusal, if any, is answered by ``check_sent``.
    """
    _check_send_limits(verification.phone, now)
    sender = codes.sender()
    before = {
        "code_hash": verification.code_hash,
        "channel": verification.channel,
        "expires_at": verification.expires_at,
    }
    code = None
    if sender.makes_codes:
        code = _new_code()
        verification.code_hash = _hash(verification.id, code)
    key = f"{verification.id}@{now:%H%M%S.%f}"
    send_id = db.session.scalar(_RECORD_SEND, _sent_row(verification, now))
    verification.expires_at = now + _minutes("VERIFY_CODE_MINUTES")
    if not sender.outside:
        try:
            sender.send(
                verification.phone,
                verification.channel,
                code,
                key,
                now,
                language=_language(verification),
            )
        except codes.CodeRefused as refused:
            raise _answer(refused) from refused
        db.session.flush()
        return
    db.session.flush()
    outgoing = _Outgoing(
        verification_id=verification.id,
        send_id=send_id,
        phone=verification.phone,
        channel=verification.channel,
        code=code,
        key=key,
        now=now,
        language=_language(verification),
        # A new verification is forgotten if its first code cannot go; a resend puts back
        # the code and channel that were live before it.
        restore=None if new else before,
    )
    pending: dict[str, _Outgoing] = g.setdefault(OUTGOING, {})
    pending[verification.id] = outgoing
    after_commit(("code", verification.id), outgoing.run)


# Where a request keeps the codes it sends after its commit, by verification id.
OUTGOING = "phonein_codes_outgoing"


@dataclass
class _Outgoing:
    """A code to send once the request has committed, and what came of it."""

    verification_id: str
    send_id: int
    phone: str
    channel: str
    code: str | None
    key: str
    now: datetime
    language: str
    # None: a new verification, forgotten when its code cannot go; else the values to put
    # back on a live one whose resend was refused.
    restore: dict[str, Any] | None
    refused: codes.CodeRefused | None = None

    def run(self) -> None:
        """Send the code (after the commit); on a refusal, forget this send."""
        # The SID the send answers with is not written here: that was a transaction of its
        # own on every signup, for a value nothing reads. The proof records the SID that
        # Verify's check answers with, in the UPDATE it makes anyway (``prove``).
        try:
            codes.sender().send(
                self.phone, self.channel, self.code, self.key, self.now, language=self.language
            )
        except codes.CodeRefused as refused:
            self.refused = refused
        except Exception:
            self.refused = codes.CodeRefused("upstream")
            raise  # logged by database.commit
        finally:
            if self.refused is not None:
                self._forget()

    def _forget(self) -> None:
        """Undo the refused send: it is no text, so no limit counts it."""
        db.session.rollback()
        db.session.execute(sa.delete(CodeSend).where(CodeSend.id == self.send_id))
        if self.restore is None:
            db.session.execute(
                sa.delete(Verification).where(Verification.id == self.verification_id)
            )
        else:
            db.session.execute(
                sa.update(Verification)
                .where(Verification.id == self.verification_id)
                .values(**self.restore)
            )
        db.session.commit()


def check_sent() -> None:
    """After the commit, raise the listener's answer if a code of this request was refused.

    Views call it right after ``database.commit``: the refused send has been forgotten
    (a new verification with it), so the answer is the same as before the code was sent
    after the commit.
    """
    pending: dict[str, _Outgoing] = g.pop(OUTGOING, {})
    for outgoing in pending.values():
        if outgoing.refused is not None:
            raise _answer(outgoing.refused)


def _language(verification: Verification) -> str:
    """The language the code goes out in: the one the signup asked for, among the forum's."""
    forum = db.session.get(Forum, verification.forum_id)
    requested = (verification.values or {}).get("language")
    return i18n.choose_language(forum.languages if forum else [], requested=[requested])


def _sent_row(verification: Verification, now: datetime) -> dict[str, Any]:
    """The record of a text or call to an unproved number, for the limits."""
    return {
        "phone": verification.phone,
        "channel": verification.channel,
        "sent_at": now,
        "prefix": phones.number_range(verification.phone),
        "verification_id": verification.id,
    }


def _sent(verification: Verification, now: datetime) -> CodeSend:
    return CodeSend(**_sent_row(verification, now))


# A code's send record, as one prebuilt INSERT … RETURNING id rather than an ORM object
# and a flush of its own (0.56 -> 0.22 ms of CPU in process): nothing reads the object.
_RECORD_SEND = sa.insert(CodeSend.__table__).returning(CodeSend.__table__.c.id)


def _answer(refused: codes.CodeRefused) -> DomainError:
    """Map why a code could not be sent or checked to the listener's answer."""
    if refused.reason == "landline":
        return Invalid({"channel": _("That number cannot receive texts: ask for a call instead.")})
    if refused.reason == "invalid":
        # The outbox backend's own reason is phonein's wording; Twilio's is not for listeners.
        mobile_only = refused.detail.startswith("We can only text codes here")
        return Invalid(
            {
                "phone": _("We can only text codes here: please give a mobile number.")
                if mobile_only
                else _("We cannot send a code to that number.")
            }
        )
    if refused.reason == "blocked":
        return Invalid({"phone": _("We cannot send a code to that number. Please use another.")})
    if refused.reason == "too_many":
        return TooMany(_("Too many codes or tries for this number. Please try again later."))
    if refused.reason == "gone":
        return NotFound(_("This code has expired. Please sign up again."))
    return Upstream(_("We could not send or check your code just now. Please try again."))


def forget_old(now: datetime) -> None:
    """Drop verifications and send records past any use (bounded, indexed deletes).

    Run by the nightly job (``worker.purge``), not by each signup: the limits count by
    time window, so older rows only wait for the night, off the signup's path.
    """
    db.session.execute(sa.delete(Verification).where(Verification.expires_at < now - KEEP_EXPIRED))
    db.session.execute(sa.delete(CodeSend).where(CodeSend.sent_at < now - timedelta(days=1)))


def start(
    forum: Forum,
    data: dict[str, Any],
    now: datetime,
    *,
    default_region: str,
    source: consents.Source,
) -> Verification:
    """Keep a validated signup until its number is proved, and send the code.

    Nothing here looks at the forum's signups: the answer is the same for a new number,
    one that signed up, one that is queued and one that opted out. ``source`` (how the
    consents were asked, and the client's address) waits with the values: the ledger
    records them once the number is proved.
    """
    if not forum.accepts_signups_at(now):
        raise Conflict(_("Signups for this forum are closed."), code="signups_closed")
    values = signups.validate_listener(data, default_region=default_region)
    values[SOURCE_KEY] = source.to_json()
    client_address = source.client_address
    verification = Verification(
        id="VE" + secrets.token_hex(16),
        forum_id=forum.id,
        phone=values["phone"],
        channel=channel_for(values["phone"]).value,
        values=values,
        attempts=0,
        client_address=(client_address or "")[:64] or None,
        created_at=now,
        # The expiry _send sets, written by the INSERT: no UPDATE of it right after.
        expires_at=now + _minutes("VERIFY_CODE_MINUTES"),
    )
    db.session.add(verification)
    db.session.flush()
    _send(verification, now, new=True)
    return verification


def live(verification_id: str, now: datetime) -> Verification:
    """Return the verification still waiting for its code; NotFound when unknown or expired."""
    found = None
    if verification_id and len(verification_id) <= 40:
        found = db.session.get(Verification, verification_id)
    return _still_live(found, now)


def _still_live(found: Verification | None, now: datetime) -> Verification:
    if found is None or found.proved_at is not None or found.expires_at <= now:
        raise NotFound(_("This code has expired or was already used. Please sign up again."))
    return found


# The code entry's read, built once with a bind parameter.
_WITH_FORUM = (
    sa.select(Verification, Forum)
    .join(Forum, Forum.id == Verification.forum_id)
    .where(Verification.id == sa.bindparam("verification_id"))
)


def _live_with_forum(verification_id: str, now: datetime) -> tuple[Verification, Forum]:
    """``live``, and the verification's forum read by the same SELECT (the code entry's)."""
    row = None
    if verification_id and len(verification_id) <= 40:
        row = db.session.execute(_WITH_FORUM, {"verification_id": verification_id}).first()
    verification = _still_live(row[0] if row is not None else None, now)
    assert row is not None
    return verification, row[1]


def resend(verification_id: str, channel: str | None, now: datetime) -> Verification:
    """Send the code again, by text or by a call; within the per-number limits."""
    verification = live(verification_id, now)
    if channel is not None:
        if channel not in (VerificationChannel.SMS, VerificationChannel.CALL):
            raise Invalid({"channel": _("Use 'sms' or 'call'.")})
        if channel == VerificationChannel.SMS and channel_for(verification.phone) == (
            VerificationChannel.CALL
        ):
            raise Invalid(
                {"channel": _("That number cannot receive texts: ask for a call instead.")}
            )
        verification.channel = channel
    _send(verification, now, new=False)
    return verification


def prove(verification_id: str, code: str, now: datetime, *, new_link: bool = False) -> Proof:
    """Check ``code``; when right, make or update the signup (see ``signups.register``).

    A wrong code counts a try and changes nothing else: the view commits that, then answers
    422. Past the tries: TooMany.
    """
    # One SELECT for the verification and its forum (the forum is needed once the code is
    # right; a separate read of it cost a statement).
    verification, forum = _live_with_forum(verification_id, now)
    code = (code or "").strip()
    if verification.attempts >= int(current_app.config["VERIFY_MAX_ATTEMPTS"]):
        raise TooMany(_("Too many wrong codes. Please ask for a new one."))
    # The try is counted with the answer: a wrong code on its own, a right one with the
    # proof and the signup in one UPDATE after the signup's INSERT (set before the reads
    # below, the autoflush would write it a statement early). A raise rolls it all back.
    tries = verification.attempts + 1
    sender = codes.sender()
    provider_sid = None
    if not code.isdigit() or len(code) > 10:
        right = False
    elif verification.code_hash is not None:
        right = hmac.compare_digest(verification.code_hash, _hash(verification.id, code))
    elif sender.makes_codes:
        right = False
    else:
        try:
            approved = sender.check(verification.phone, code)
        except codes.CodeRefused as refused:
            raise _answer(refused) from refused
        right = approved is not None
        provider_sid = approved or None
    if not right:
        verification.attempts = tries
        db.session.flush()
        return Proof(ok=False)
    if verification.values is None:  # a link request (PHONEIN_VERIFY=off): nothing changes
        signup = _known(forum, verification.phone)
        token = signups.new_manage_link(signup) if new_link else None
        registration = signups.Registration(signup, token, created=False)
    else:
        values = dict(verification.values)
        registration = signups.register(
            forum,
            values,
            now,
            default_region=current_app.config["DEFAULT_REGION"],
            new_link=new_link,
            source=consents.Source.from_json(values.pop(SOURCE_KEY, None)),
        )
    verification.attempts = tries
    verification.proved_at = now
    verification.signup_id = registration.signup.id
    if provider_sid:
        verification.provider_sid = provider_sid
    db.session.flush()
    return Proof(ok=True, registration=registration)


def _known(forum: Forum, phone: str) -> Signup:
    signup = db.session.scalars(
        sa.select(Signup).where(Signup.forum_id == forum.id, Signup.phone == phone)
    ).one_or_none()
    if signup is None:
        raise NotFound(_("This signup no longer exists."))
    return signup


def choose_new_link(verification_id: str, now: datetime) -> str:
    """After a proof, give its signup a new private link (the old one stops working).

    The page offers this right after the code; the caller checks that the browser asking
    is the one that entered it.
    """
    found = db.session.get(Verification, verification_id) if verification_id else None
    if (
        found is None
        or found.proved_at is None
        or found.signup_id is None
        or now > found.proved_at + timedelta(minutes=CHOICE_MINUTES)
    ):
        raise NotFound(_("This choice is no longer open. Your private link is unchanged."))
    signup = db.session.get(Signup, found.signup_id)
    if signup is None:
        raise NotFound(_("This signup no longer exists."))
    return signups.new_manage_link(signup)


def sign_up_unverified(
    forum: Forum,
    data: dict[str, Any],
    now: datetime,
    *,
    default_region: str,
    source: consents.Source,
) -> signups.Registration:
    """Sign up without a code (PHONEIN_VERIFY=off): a known number changes nothing.

    The known number is texted, at most once a day, a link that opens its own signup: the
    code is in the link, so only the phone's holder can follow it.
    """
    registration = signups.register(
        forum, data, now, default_region=default_region, update=False, source=source
    )
    if not registration.created:
        _text_link(forum, registration.signup, now)
    return registration


def _text_link(forum: Forum, signup: Signup, now: datetime) -> None:
    if signup.phone is None:
        return
    verification = Verification(
        id="VE" + secrets.token_hex(16),
        forum_id=forum.id,
        phone=signup.phone,
        channel=VerificationChannel.SMS.value,
        values=None,
        attempts=0,
        created_at=now,
        expires_at=now + timedelta(days=1),
    )
    code = _new_code()
    verification.code_hash = _hash(verification.id, code)
    link = f"{current_app.config['PUBLIC_URL']}/verify/{verification.id}?code={code}"
    body = texts.signed_up_again(forum, signup.reads_in, link, now)
    if budget_spent(now):
        return  # the answer is the same either way; the listener's link still works
    # Keyed by the day: however often the number is tried, one text a day.
    if codes.enqueue(
        signup.phone,
        body,
        f"link@{now:%Y-%m-%d}",
        now,
        # No forum: the producers' SMS log must not show a link that opens the signup.
        signup_id=signup.id,
    ):
        db.session.add(verification)
        db.session.add(_sent(verification, now))
        db.session.flush()


def forum_link(verification: Verification) -> str:
    """Return the forum page of a verification (for the code page's "back" link)."""
    forum = db.session.get(Forum, verification.forum_id)
    return forum_url(forum) if forum else "/"
