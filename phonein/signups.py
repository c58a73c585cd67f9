"""Listener signups: register, change, withdraw, erase, screen.

Operations may flush but never commit; views commit once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app

from . import consents, i18n, phones, search
from .database import per_dialect, upsert_insert
from .errors import Conflict, Invalid, NotFound
from .extensions import db
from .i18n import _
from .inputs import EMAIL_RE, as_bool, clean_text
from .live import queue
from .models import (
    EMAIL_MAX,
    LOCATION_MAX,
    MAX_ID,
    NAME_MAX,
    NOTES_MAX,
    QUESTION_MAX,
    SIGNUP_LOCKED,
    SIGNUP_SCREENABLE,
    Call,
    Forum,
    Signup,
    SignupStatus,
    Stance,
)
from .sms import outbox
from .times import zone_or_none

LISTENER_FIELDS = ("name", "location", "email", "question", "sms_consent", "publish_consent")


@dataclass
class Registration:
    signup: Signup
    # The private link's token: new for a new signup, and for a known one only when the
    # listener asked for a new link (None: their old link stands).
    manage_token: str | None
    created: bool


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _length_error(name: str, value: str, high: int) -> str | None:
    """Say what is wrong with the length of a listener's ``name``, ``location`` or
    ``question`` (one whole sentence each, for the translators)."""
    if value and len(value) <= high:
        return None
    if name == "name":
        return (
            _("Please give your name.")
            if not value
            else _("Keep your name to %(max)d characters.", max=high)
        )
    if name == "location":
        return (
            _("Please say where you are.")
            if not value
            else _("Keep where you are to %(max)d characters.", max=high)
        )
    return (
        _("Please give your question or comment.")
        if not value
        else _("Keep your question or comment to %(max)d characters.", max=high)
    )


def validate_listener(data: dict[str, Any], *, default_region: str) -> dict[str, Any]:
    """Check a listener's form or JSON and return clean column values; raise Invalid."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    out["name"] = clean_text(data.get("name"))
    out["location"] = clean_text(data.get("location"))
    out["question"] = clean_text(data.get("question"))
    for name, high in (("name", NAME_MAX), ("location", LOCATION_MAX), ("question", QUESTION_MAX)):
        if problem := _length_error(name, out[name], high):
            errors[name] = problem
    email = clean_text(data.get("email")) or None
    if email and (len(email) > EMAIL_MAX or not EMAIL_RE.match(email)):
        errors["email"] = _("That does not look like an email address.")
    out["email"] = email
    out["sms_consent"] = as_bool(data.get("sms_consent"))
    out["publish_consent"] = as_bool(data.get("publish_consent"))

    # The page's or client's language: resolved against the forum's in ``register``, where
    # anything unknown or not offered becomes the forum's first language, never an error.
    language = data.get("language")
    out["language"] = language.strip()[:35] if isinstance(language, str) else None
    zone = clean_text(data.get("timezone")) or None
    if zone and zone_or_none(zone) is None:
        errors["timezone"] = _("Unknown time zone; give an IANA name like 'Europe/Paris'.")
        zone = None
    country = (clean_text(data.get("country")) or "").upper() or None
    if country and country not in phones.country_names():
        errors["country"] = _("Unknown country; give a two-letter ISO code like 'US'.")
        country = None
    if "phone" in data:
        try:
            out["phone"] = phones.normalize(
                clean_text(data.get("phone")),
                country=country,
                timezone=zone,
                default_region=default_region,
            )
        except Invalid as exc:
            errors.update(exc.fields)
        else:
            errors.update(reach_errors(out["phone"], sms_consent=out["sms_consent"]))
    if errors:
        raise Invalid(errors)
    if "phone" in out:
        out["timezone"] = zone or phones.guess_timezone(out["phone"])
        out["country"] = country or phones.country_for_timezone(out["timezone"])
    return out


def reach_errors(phone: str | None, *, sms_consent: bool) -> dict[str, str]:
    """Return field errors if phonein may not use ``phone`` as asked (the station's policy).

    Premium-rate, toll-free and similar numbers, other countries than the station allows,
    and denied ranges are refused outright; a landline may sign up, but not for texts.
    """
    if phone is None:
        return {}
    reach, why = phones.reach(phone, phones.Policy.from_config(current_app.config))
    if reach == phones.Reach.NONE:
        return {"phone": why or _("We cannot use that number.")}
    if reach == phones.Reach.CALL_ONLY and sms_consent:
        return {
            "sms_consent": _(
                "That number is a landline, which cannot receive texts: untick this box, or "
                "give a mobile number."
            )
        }
    return {}


def register(
    forum: Forum,
    data: dict[str, Any],
    now: datetime,
    *,
    default_region: str,
    update: bool = True,
    new_link: bool = False,
    source: consents.Source | None = None,
) -> Registration:
    """Sign a listener up, or update their signup when the phone is already registered.

    Call it only for a number that has proved itself (``phonein.verification``), or with
    ``update=False``: a known number then changes nothing. A known signup keeps its
    private link unless ``new_link``: the old link stops working only when the listener
    who proved the number asks for a new one.

    ``source`` says how the listener gave their consents: a new signup records both
    answers in the consent ledger, an update those it changes. None records nothing (the
    tests' factories, which stand for no listener).

    The database's unique (forum, phone) constraint decides new or known: the insert does
    nothing on conflict, so two simultaneous requests for one number yield one row.
    """
    if not forum.accepts_signups_at(now):
        raise Conflict(_("Signups for this forum are closed."), code="signups_closed")
    values = validate_listener(data, default_region=default_region)
    values["language"] = i18n.choose_language(forum.languages, requested=[values["language"]])
    token = secrets.token_urlsafe(24)
    row = {
        "forum_id": forum.id,
        "status": SignupStatus.PENDING,
        "manage_token_hash": hash_token(token),
        "created_at": now,
        "updated_at": now,
        "search_text": search.searchable(values),
        **values,
    }
    created = db.session.scalars(_insert_signup(), row).one_or_none()
    if created is not None:
        if source is not None:
            consents.record(created, source, consents.COLUMNS)
        outbox.confirmation(created, now)
        return Registration(created, token, created=True)

    # No row lock here: change_by_listener takes the forum's queue lock first and re-reads,
    # the same order as queue operations (forum, then signup), so the two cannot deadlock.
    signup = db.session.scalars(
        sa.select(Signup).where(Signup.forum_id == forum.id, Signup.phone == values["phone"])
    ).one()
    if not update:
        return Registration(signup, None, created=False)
    change_by_listener(signup, values, now, source=source)
    signup.timezone = values["timezone"]
    signup.country = values["country"]
    signup.language = values["language"]
    if new_link:
        signup.manage_token_hash = hash_token(token)
    db.session.flush()
    return Registration(signup, token if new_link else None, created=False)


# The signup's INSERT … ON CONFLICT DO NOTHING RETURNING, built once per dialect and given
# its row as parameters: a Core INSERT loaded into an ORM object (the ORM's bulk-DML path
# costs more than the round trip itself on this, the busiest write), and built anew with
# .values() for every signup it and its cache key cost 0.75 ms of CPU.
@per_dialect
def _insert_signup() -> Any:
    stmt = (
        upsert_insert(Signup.__table__)
        .on_conflict_do_nothing(index_elements=["forum_id", "phone"])
        .returning(*Signup.__table__.c)
    )
    return sa.select(Signup).from_statement(stmt)


def new_manage_link(signup: Signup) -> str:
    """Give the signup a new private link; the old one stops working. Return its token."""
    token = secrets.token_urlsafe(24)
    signup.manage_token_hash = hash_token(token)
    db.session.flush()
    return token


def change_by_listener(
    signup: Signup,
    values: dict[str, Any],
    now: datetime,
    *,
    source: consents.Source | None = None,
) -> None:
    """Apply a listener's own changes; screened signups go back to screening.

    Taken under the forum's queue lock, so a producer cannot queue the old text while the
    listener changes it. A consent given or withdrawn is recorded as told by ``source``.
    """
    errors = reach_errors(signup.phone, sms_consent=values["sms_consent"])
    if errors and not signup.sms_consent:  # refuse a new consent, never one given before
        raise Invalid(errors)
    status = _under_queue_lock(signup)
    if not signup.forum.active_at(now):
        raise Conflict(
            _("This phone-in is over: signups can no longer be changed."), code="forum_over"
        )
    if status in SIGNUP_LOCKED:
        raise Conflict(
            _(
                "Your call is already in the producers' queue, so it can no longer be changed "
                "online. You can still withdraw."
            ),
            code="signup_locked",
        )
    content_changed = any(getattr(signup, f) != values[f] for f in ("name", "location", "question"))
    before = consents.answers(signup)
    for field in LISTENER_FIELDS:
        setattr(signup, field, values[field])
    if source is not None:
        consents.record_changes(signup, before, source)
    signup.search_text = search.searchable(signup)
    if status == SignupStatus.WITHDRAWN or (
        content_changed and status in (SignupStatus.APPROVED, SignupStatus.REJECTED)
    ):
        signup.status = SignupStatus.PENDING
    if not signup.publish_consent or content_changed:
        signup.published = False
    signup.updated_at = now


def by_manage_token(token: str) -> Signup:
    signup = None
    if token and len(token) <= 64:
        signup = db.session.scalars(
            sa.select(Signup).where(Signup.manage_token_hash == hash_token(token))
        ).one_or_none()
    if signup is None:
        raise NotFound(
            _("This link is not valid any more. It may have been replaced by a newer one.")
        )
    return signup


def get(signup_id: int) -> Signup:
    signup = db.session.get(Signup, signup_id) if 0 < signup_id <= MAX_ID else None
    if signup is None:
        raise NotFound(f"There is no signup {signup_id}.")
    return signup


def _under_queue_lock(signup: Signup) -> SignupStatus:
    """Take the forum's queue lock, then re-read the signup: its status is now stable."""
    db.session.flush()  # refresh() would drop changes not yet flushed
    queue.bump(signup.forum_id)
    db.session.refresh(signup)
    return SignupStatus(signup.status)


def _left_queue(signup: Signup, was: SignupStatus, now: datetime, reason: str) -> None:
    outbox.signup_stopped(signup, now, reason)
    if was == SignupStatus.QUEUED:
        outbox.notify_head(signup.forum, now)


def withdraw(signup: Signup, now: datetime, *, source: consents.Source | None = None) -> None:
    """Take the listener out of the forum at their request; nothing more is sent.

    Withdrawing ends both consents (texts, publication): the ledger records each one that
    was given as withdrawn, by ``source``.
    """
    was = _under_queue_lock(signup)
    if was == SignupStatus.ON_AIR:
        raise Conflict(_("You are on air right now."), code="on_air")
    before = consents.answers(signup)
    signup.status = SignupStatus.WITHDRAWN
    signup.queue_key = None
    signup.published = False
    signup.sms_consent = False
    signup.publish_consent = False
    signup.updated_at = now
    if source is not None:
        consents.record_changes(signup, before, source)
    db.session.flush()
    _left_queue(signup, was, now, "withdrawn")


def erase(signup: Signup, now: datetime) -> None:
    """Delete the signup and everything it holds (its messages too), at once.

    Its consent ledger keeps only the SMS withdrawals (``consents.erase``).
    """
    was = _under_queue_lock(signup)
    forum = signup.forum
    consents.erase([signup.id])
    db.session.delete(signup)
    db.session.flush()
    if was == SignupStatus.QUEUED:
        outbox.notify_head(forum, now)


def screen(signup: Signup, data: dict[str, Any], now: datetime) -> None:
    """Record a producer's screening: decision, stance, rating, notes (each optional)."""
    errors: dict[str, str] = {}
    decision = data.get("decision")
    if decision not in (None, "approve", "reject"):
        errors["decision"] = "Use 'approve' or 'reject'."
    stance = data.get("stance")
    if stance not in (None, "", *[s.value for s in Stance]):
        errors["stance"] = "Use for, against, neutral or other."
    rating = data.get("rating")
    if rating not in (None, "") and (
        isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5
    ):
        errors["rating"] = "Give a whole number from 1 to 5."
    notes = data.get("notes")
    if notes is not None:
        notes = clean_text(notes)
        if len(notes) > NOTES_MAX:
            errors["notes"] = f"Keep notes to {NOTES_MAX} characters."
    if errors:
        raise Invalid(errors)

    status = _under_queue_lock(signup) if decision else SignupStatus(signup.status)
    if decision and status not in SIGNUP_SCREENABLE:
        raise Conflict(f"A {status.value} signup cannot be screened.", code="not_screenable")
    if decision == "approve" and status in (SignupStatus.PENDING, SignupStatus.REJECTED):
        signup.status = SignupStatus.APPROVED
    elif decision == "reject" and status != SignupStatus.REJECTED:
        signup.status = SignupStatus.REJECTED
        signup.queue_key = None
        signup.published = False
        db.session.flush()
        _left_queue(signup, status, now, "rejected")
    if decision:
        signup.screened_at = now
    if "stance" in data:
        signup.stance = stance or None
    if "rating" in data:
        signup.rating = rating if rating != "" else None
    if notes is not None:
        signup.notes = notes or None
    signup.updated_at = now


def screen_call(call: Call, data: dict[str, Any], now: datetime) -> Signup:
    """Make a signup of a caller screened live: the producer typed name, location and
    question on the phone. A caller known by number (pending, rejected) is updated and
    approved; anyone else becomes a new approved signup linked to their call."""
    fields = {k: data.get(k) for k in ("name", "location", "question")}
    fields.update(sms_consent=data.get("sms_consent"), publish_consent=data.get("publish_consent"))
    values = validate_listener(fields, default_region=current_app.config["DEFAULT_REGION"])
    values.pop("email", None)
    for consent in ("sms_consent", "publish_consent"):
        if data.get(consent) is None:  # not asked on the phone: keep what they gave online
            values.pop(consent)
    # Two producers screening one caller: the second waits, then finds the first's signup.
    queue.bump(call.forum_id)
    db.session.refresh(call)
    signup = db.session.get(Signup, call.signup_id) if call.signup_id else None
    inserted = None
    if signup is None:
        zone = phones.guess_timezone(call.number) if call.number else None
        # A new signup unless the number has one (perhaps made online this very moment:
        # that path takes no queue lock); then that one is updated.
        inserted = db.session.scalars(
            sa.select(Signup)
            .from_statement(
                upsert_insert(Signup.__table__)
                .values(
                    forum_id=call.forum_id,
                    phone=call.number,
                    timezone=zone,
                    country=phones.country_for_timezone(zone) if zone else None,
                    status=SignupStatus.PENDING,
                    created_at=now,
                    updated_at=now,
                    search_text=search.searchable(values),
                    **{"sms_consent": False, "publish_consent": False, **values},
                )
                .on_conflict_do_nothing(index_elements=["forum_id", "phone"])
                .returning(*Signup.__table__.c)
            )
            .execution_options(populate_existing=True)
        ).one_or_none()
        signup = (
            inserted
            or db.session.scalars(
                sa.select(Signup).where(
                    Signup.forum_id == call.forum_id, Signup.phone == call.number
                )
            ).one()
        )
    asked = [p for p, column in consents.COLUMNS.items() if column in values]
    if inserted is None:
        status = _under_queue_lock(signup)
        if status in (SignupStatus.ON_AIR, SignupStatus.DONE):
            raise Conflict(
                f"This caller's signup is already {status.value}.", code="not_screenable"
            )
        before = {p: a for p, a in consents.answers(signup).items() if p in asked}
        for key, value in values.items():
            setattr(signup, key, value)
        consents.record_changes(signup, before, consents.on_the_phone())
        signup.search_text = search.searchable(signup)
        if status in (SignupStatus.WITHDRAWN, SignupStatus.DROPPED):
            signup.status = SignupStatus.PENDING
    else:
        consents.record(signup, consents.on_the_phone(), asked)
    screen(
        signup,
        {"decision": "approve", **{k: data[k] for k in ("stance", "rating", "notes") if k in data}},
        now,
    )
    call.signup_id = signup.id
    db.session.flush()
    return signup


# Bulk screening: the producers' screening page decides for a selection at once.

# The most signups one bulk request may decide: several pages of the screening list.
BULK_MAX = 200
DECISIONS = ("approve", "reject")
# What the reports call each status (producers' words, not the column's).
STATUS_WORDS = {
    SignupStatus.PENDING: "waiting to be screened",
    SignupStatus.APPROVED: "approved",
    SignupStatus.REJECTED: "rejected",
    SignupStatus.QUEUED: "queued",
    SignupStatus.ON_AIR: "on air",
    SignupStatus.DONE: "done",
    SignupStatus.DROPPED: "dropped",
    SignupStatus.WITHDRAWN: "withdrawn",
}


@dataclass(frozen=True)
class Skipped:
    """A signup a bulk decision left as it was, and why."""

    signup_id: int
    # A stable code: not_found, already_approved, already_rejected, already_queued,
    # not_screenable.
    reason: str
    message: str
    signup: Signup | None = None


@dataclass
class BulkScreening:
    """What ``screen_many`` did: the signups it changed, and those it skipped."""

    decision: str
    queue: bool
    changed: list[Signup]
    skipped: list[Skipped]


def _bulk_ids(signup_ids: list[Any]) -> list[int]:
    """Return the ids in the order given, each once; raise Invalid on anything else."""
    if not isinstance(signup_ids, list) or not signup_ids:
        raise Invalid({"signup_ids": "Choose at least one signup."})
    if len(signup_ids) > BULK_MAX:
        raise Invalid({"signup_ids": f"Choose at most {BULK_MAX} signups at a time."})
    ids: list[int] = []
    for value in signup_ids:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
            raise Invalid({"signup_ids": "Give signup ids as whole numbers."})
        if value not in ids:
            ids.append(value)
    return ids


def _skip_reason(status: SignupStatus, decision: str, and_queue: bool) -> str | None:
    """Return why ``decision`` would change nothing for a signup in ``status``, or None."""
    if status not in SIGNUP_SCREENABLE:
        return "not_screenable"
    if status == SignupStatus.QUEUED and decision == "approve":
        return "already_queued"
    if decision == "reject" and status == SignupStatus.REJECTED:
        return "already_rejected"
    if decision == "approve" and not and_queue and status == SignupStatus.APPROVED:
        return "already_approved"
    return None


def _skip_message(signup: Signup, reason: str) -> str:
    status = STATUS_WORDS.get(SignupStatus(signup.status), signup.status)
    if reason == "not_screenable":
        return f"{signup.name} is {status}: only signups not yet on air can be screened."
    return f"{signup.name} is already {status}."


def screen_many(
    forum: Forum, signup_ids: list[Any], decision: str, now: datetime, *, and_queue: bool = False
) -> BulkScreening:
    """Approve or reject a selection of ``forum``'s signups; with ``and_queue``, approve
    and add them to the end of the caller queue in the order given.

    All or nothing: the caller commits once, and an error part way (the forum's queue
    closed, the database away) leaves every signup as it was once rolled back. Signups
    the decision would not change (already queued, already rejected, on air, not in this
    forum) are skipped and reported, so the same request sent twice changes nothing the
    second time.
    """
    if decision not in DECISIONS:
        raise Invalid({"decision": "Use 'approve' or 'reject'."})
    if and_queue and decision != "approve":
        raise Invalid({"queue": "Only approved signups can be queued."})
    ids = _bulk_ids(signup_ids)
    # The forum's queue lock first (as every queue operation takes it), then the rows:
    # their statuses cannot change under us until the commit. Queueing also checks that
    # the forum's queue is open, before anything changes.
    if and_queue:
        queue.lock(forum.slug, now)
    else:
        queue.bump(forum.id)
    found = {
        s.id: s
        for s in db.session.scalars(
            sa.select(Signup)
            .where(Signup.forum_id == forum.id, Signup.id.in_(ids))
            .execution_options(populate_existing=True)
        )
    }
    result = BulkScreening(decision, and_queue, [], [])
    for signup_id in ids:
        signup = found.get(signup_id)
        if signup is None:
            result.skipped.append(
                Skipped(signup_id, "not_found", f"Signup {signup_id} is not in this forum.")
            )
            continue
        reason = _skip_reason(SignupStatus(signup.status), decision, and_queue)
        if reason is not None:
            result.skipped.append(Skipped(signup_id, reason, _skip_message(signup, reason), signup))
            continue
        if signup.status != SignupStatus.APPROVED or decision == "reject":
            screen(signup, {"decision": decision}, now)
        if and_queue:
            queue.place(forum.slug, signup.id, None, now)
        result.changed.append(signup)
    db.session.flush()
    return result
