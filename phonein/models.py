"""Database models (SQLAlchemy 2 typed declarative).

Models hold data and derived read-only facts; the operations that change them live in
``forums``, ``signups``, ``publication``, ``accounts``, ``sms`` and ``live``. Groups of
statuses that several modules ask about are declared once, beside their enums.

One file on purpose, though it is past 400 lines: the schema is read as a whole (foreign
keys, partial indexes and check constraints reach across tables), the migrations are
compared with it in one place, and no operation lives here to make it grow.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import Model
from .i18n import default_language
from .times import UTCDateTime, utcnow

NAME_MAX = 80
LOCATION_MAX = 120
QUESTION_MAX = 5000
EMAIL_MAX = 254
NOTES_MAX = 5000
PULL_QUOTE_MAX = 300
PRONUNCIATION_MAX = 200
TITLE_MAX = 200
SLUG_MAX = 80
# Indexes only PostgreSQL has: pg_trgm GIN indexes over the folded search text and over
# phone numbers, each led by the forum (btree_gin), for producers' search (migrations
# 0005, 0011, 0018). SQLite has no trigram
# indexes (its search scans), and SQLAlchemy cannot declare these expression indexes for
# one dialect only, so the models leave them out and the model/migration comparison
# (tests/test_app.py, migrations/env.py) ignores exactly these names.
POSTGRESQL_ONLY_INDEXES = frozenset({"ix_signups_forum_search_trgm", "ix_signups_forum_phone_trgm"})
# Largest id an Integer column holds on every database; larger ids cannot exist, and
# passing them to the driver would overflow instead of simply finding nothing.
MAX_ID = 2**31 - 1


class Role(StrEnum):
    ADMIN = "admin"
    PRODUCER = "producer"
    PRESENTER = "presenter"


_ROLE_RANK = {Role.PRESENTER: 1, Role.PRODUCER: 2, Role.ADMIN: 3}


def roles_that_can(needed: Role) -> tuple[Role, ...]:
    """The roles that include ``needed`` (admin > producer > presenter)."""
    return tuple(role for role, rank in _ROLE_RANK.items() if rank >= _ROLE_RANK[needed])


class ForumStatus(StrEnum):
    OPEN = "open"
    LIVE = "live"
    CLOSED = "closed"
    PUBLISHED = "published"
    CANCELLED = "cancelled"


# A forum that has not ended: it takes signups (until they close), its queue and its calls.
FORUM_ACTIVE = (ForumStatus.OPEN, ForumStatus.LIVE)


class SignupStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    QUEUED = "queued"
    ON_AIR = "on_air"
    DONE = "done"
    DROPPED = "dropped"
    WITHDRAWN = "withdrawn"


# Let through by a producer: they may be queued, called back and put on air.
SIGNUP_CLEARED = (SignupStatus.APPROVED, SignupStatus.QUEUED, SignupStatus.ON_AIR)
# Listeners who still expect to hear about the forum.
SIGNUP_REACHABLE = (SignupStatus.PENDING, *SIGNUP_CLEARED)
# The call is under way or over: the listener's own changes no longer apply.
SIGNUP_LOCKED = (SignupStatus.QUEUED, SignupStatus.ON_AIR, SignupStatus.DONE, SignupStatus.DROPPED)
# What a producer may approve or reject.
SIGNUP_SCREENABLE = (
    SignupStatus.PENDING,
    SignupStatus.APPROVED,
    SignupStatus.REJECTED,
    SignupStatus.QUEUED,
)
# Never screened, or withdrawn: such a comment is neither published nor counted.
SIGNUP_UNSCREENED = (SignupStatus.PENDING, SignupStatus.WITHDRAWN)


class Stance(StrEnum):
    FOR = "for"
    AGAINST = "against"
    NEUTRAL = "neutral"
    OTHER = "other"


def _where(condition: str) -> dict[str, Any]:
    """A partial index's condition, the same on both databases."""
    clause = sa.text(condition)
    return {"sqlite_where": clause, "postgresql_where": clause}


def _check_in(column: str, values: type[StrEnum], name: str) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=name)


class User(UserMixin, Model):
    __tablename__ = "users"
    __table_args__ = (_check_in("role", Role, "ck_users_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(EMAIL_MAX), unique=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(16))
    is_active_user: Mapped[bool] = mapped_column(default=True)
    # Bumped by logout, disabling and a password change: sessions carry the version they
    # were made with, and one made before the bump no longer logs anyone in.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    @property
    def is_active(self) -> bool:
        return self.is_active_user

    def get_id(self) -> str:
        """Return the login session's id: the user's id and session version (see above)."""
        return f"{self.id}:{self.session_version}"

    def can(self, needed: Role) -> bool:
        """Say whether this user's role includes ``needed`` (admin > producer > presenter)."""
        return Role(self.role) in roles_that_can(needed)


class ApiToken(Model):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    # Only a SHA-256 of the token is kept: a database leak does not leak API access.
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # None: never expires.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A revoked token is kept (with its last use) so that the list shows what was withdrawn.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="tokens")


class WebhookReceipt(Model):
    """A Twilio webhook already applied: the same signed request twice is applied once.

    The key is Twilio's ``I-Twilio-Idempotency-Token``, else the SID and status the request
    reports; old receipts are forgotten by the nightly purge.
    """

    __tablename__ = "webhook_receipts"

    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Forum(Model):
    __tablename__ = "forums"
    __table_args__ = (_check_in("status", ForumStatus, "ck_forums_status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(SLUG_MAX), unique=True)
    title: Mapped[str] = mapped_column(sa.String(TITLE_MAX))
    question: Mapped[str] = mapped_column(sa.Text, default="")
    correspondent: Mapped[str] = mapped_column(sa.String(TITLE_MAX), default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_minutes: Mapped[int]
    # Derived from starts_at + duration, kept in step by forums.create and forums.update,
    # so that "which forums are over" is a plain indexed comparison on every database.
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    timezone: Mapped[str] = mapped_column(sa.String(64))
    signup_closes_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reminder_offsets: Mapped[list[int]] = mapped_column(sa.JSON)
    # BCP 47 tags, the first the forum's own: what its pages, texts and prompts are offered in.
    languages: Mapped[list[str]] = mapped_column(sa.JSON, default=lambda: [default_language()])
    status: Mapped[str] = mapped_column(sa.String(16), default=ForumStatus.OPEN)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped by every queue change; boards poll it, and the UPDATE that bumps it is the
    # per-forum lock that serialises queue operations.
    queue_version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    signups: Mapped[list[Signup]] = relationship(
        back_populates="forum", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)

    def status_at(self, now: datetime) -> ForumStatus:
        """Return the status at ``now``: the stored one advanced by the clock.

        ``open`` becomes ``live`` at ``starts_at`` and ``live`` becomes ``closed`` at
        ``ends_at``; producer decisions (cancelled, closed early, published) stand.
        """
        status = ForumStatus(self.status)
        if status in FORUM_ACTIVE:
            if now >= self.ends_at:
                return ForumStatus.CLOSED
            if now >= self.starts_at:
                return ForumStatus.LIVE
        return status

    def active_at(self, now: datetime) -> bool:
        """Say whether the forum has not ended at ``now`` (open or live)."""
        return self.status_at(now) in FORUM_ACTIVE

    def accepts_signups_at(self, now: datetime) -> bool:
        return self.active_at(now) and now < self.signup_closes_at


def forums_not_over(now: datetime) -> sa.Select[Forum]:
    """Select the forums still open or live at ``now``, soonest first (the public list,
    and the forums a caller to the show number may belong to)."""
    return (
        sa.select(Forum)
        .where(Forum.status.in_(FORUM_ACTIVE), Forum.ends_at > now)
        .order_by(Forum.starts_at)
    )


class Signup(Model):
    __tablename__ = "signups"
    __table_args__ = (
        # One signup per phone per forum, enforced by the database so that two
        # simultaneous requests cannot both insert.
        sa.UniqueConstraint("forum_id", "phone", name="uq_signups_forum_phone"),
        # The caller queue's order. Keys are sparse so that a move touches one row.
        sa.UniqueConstraint("forum_id", "queue_key", name="uq_signups_forum_queue_key"),
        sa.Index(
            "uq_signups_one_on_air",
            "forum_id",
            unique=True,
            **_where("status = 'on_air'"),
        ),
        # Scale (migration 0005): the producers' list, newest first, with and without a
        # status (the first also serves every "by forum and status" lookup, and replaced
        # ix_signups_forum_status: one index fewer to write on every change); the boards'
        # "did any signup change" probe; the balance of opinion; the published selection
        # and the publication editor's candidates, in pages.
        sa.Index("ix_signups_forum_created", "forum_id", "created_at", "id"),
        sa.Index("ix_signups_forum_status_created", "forum_id", "status", "created_at", "id"),
        sa.Index("ix_signups_forum_updated", "forum_id", "updated_at"),
        sa.Index(
            "ix_signups_forum_stance",
            "forum_id",
            "stance",
            "status",
            **_where("stance IS NOT NULL"),
        ),
        sa.Index(
            "ix_signups_forum_published",
            "forum_id",
            "publish_order",
            "id",
            **_where("published"),
        ),
        sa.Index(
            "ix_signups_forum_candidates",
            "forum_id",
            "rating",
            "id",
            **_where("publish_consent AND NOT published AND erased_at IS NULL"),
        ),
        sa.Index(
            "ix_signups_forum_done",
            "forum_id",
            **_where("done_at IS NOT NULL"),
        ),
        # The after-show report's count by country (migration 0016).
        sa.Index("ix_signups_forum_country", "forum_id", "country"),
        _check_in("status", SignupStatus, "ck_signups_status"),
        sa.CheckConstraint(
            "stance IS NULL OR stance IN ('for', 'against', 'neutral', 'other')",
            name="ck_signups_stance",
        ),
        sa.CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="ck_signups_rating"),
        sa.CheckConstraint(
            "(queue_key IS NULL) = (status <> 'queued')", name="ck_signups_queue_key_iff_queued"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    forum_id: Mapped[int] = mapped_column(sa.ForeignKey("forums.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX))
    location: Mapped[str] = mapped_column(sa.String(LOCATION_MAX))
    # E.164; NULL once erased by a purge.
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    country: Mapped[str | None] = mapped_column(sa.String(2))
    email: Mapped[str | None] = mapped_column(sa.String(EMAIL_MAX))
    question: Mapped[str] = mapped_column(sa.Text)
    # Name, location and question folded for producers' search (case, accents, Cyrillic
    # and Greek transliterated): written with them by phonein.search.searchable.
    search_text: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    sms_consent: Mapped[bool] = mapped_column(default=False)
    publish_consent: Mapped[bool] = mapped_column(default=False)
    timezone: Mapped[str | None] = mapped_column(sa.String(64))
    # The listener's language (BCP 47), one of the forum's; None reads as the forum's first.
    language: Mapped[str | None] = mapped_column(sa.String(35))
    status: Mapped[str] = mapped_column(sa.String(16), default=SignupStatus.PENDING)
    stance: Mapped[str | None] = mapped_column(sa.String(16))
    rating: Mapped[int | None]
    notes: Mapped[str | None] = mapped_column(sa.Text)
    # How to say the caller's name, written by producers for the presenter's board.
    pronunciation: Mapped[str | None] = mapped_column(sa.String(PRONUNCIATION_MAX))
    queue_key: Mapped[int | None] = mapped_column(sa.BigInteger)
    # SHA-256 of the private manage token; the token itself is only ever in the link.
    manage_token_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    published: Mapped[bool] = mapped_column(default=False)
    pull_quote: Mapped[str | None] = mapped_column(sa.String(PULL_QUOTE_MAX))
    publish_order: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    screened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    on_air_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    forum: Mapped[Forum] = relationship(back_populates="signups")

    @property
    def reads_in(self) -> str:
        """Return the language every text, prompt and page to this listener is in."""
        return self.language or (self.forum.languages or [default_language()])[0]


class LiveAction(Model):
    """A live action a producer took (next, finish, go live, close, …), undoable for a while.

    ``before`` holds what the action changed as it was before: the signups' queue fields,
    the forum's times and status, the texts it cancelled and wrote. ``version_after`` is
    the forum's ``queue_version`` the action left: an undo is honest only while nothing
    has changed the queue since. ``expires_at`` comes from the database's clock.
    """

    __tablename__ = "live_actions"
    __table_args__ = (sa.Index("ix_live_actions_forum", "forum_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    forum_id: Mapped[int] = mapped_column(sa.ForeignKey("forums.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    message: Mapped[str] = mapped_column(sa.String(500))
    before: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    version_after: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MessageKind(StrEnum):
    CONFIRMATION = "confirmation"
    REMINDER = "reminder"
    NEXT_UP = "next_up"
    RESCHEDULED = "rescheduled"
    CANCELLED = "cancelled"
    HELP = "help"
    # The forum closed while the caller was still waiting on the line.
    GOODBYE = "goodbye"
    # The forum closed before an approved or queued listener (not on the line) was reached.
    CLOSED = "closed"
    # A one-time code phonein made itself (no Twilio Verify service), or, with
    # PHONEIN_VERIFY=off, a link to a signup texted to its own number.
    CODE = "code"
    # The listener's private link, texted on request (the LINK keyword): at most one a day
    # per signup, keyed by the day.
    LINK = "link"


class VerificationChannel(StrEnum):
    SMS = "sms"
    CALL = "call"


class Verification(Model):
    """A signup waiting for its number's proof: nothing else happens until the code is entered.

    ``values`` holds the validated signup (None: a link request, made with
    PHONEIN_VERIFY=off, that changes nothing but the link). ``code_hash`` is set only when
    phonein made the code itself; with Twilio Verify the code, its expiry and its attempts
    are Twilio's, and ``provider_sid`` names Twilio's verification once its code was
    approved (written with the proof; a verification never proved has none, and Twilio's
    console finds it by number and time).
    """

    __tablename__ = "verifications"
    __table_args__ = (
        sa.Index("ix_verifications_expires", "expires_at"),
        _check_in("channel", VerificationChannel, "ck_verifications_channel"),
    )

    # Random and public: the API's verification_id and the code page's address.
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    forum_id: Mapped[int] = mapped_column(sa.ForeignKey("forums.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(sa.String(20))
    channel: Mapped[str] = mapped_column(sa.String(8))
    values: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    code_hash: Mapped[str | None] = mapped_column(sa.String(64))
    provider_sid: Mapped[str | None] = mapped_column(sa.String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    client_address: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    proved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The signup the proof made or updated.
    signup_id: Mapped[int | None] = mapped_column(sa.ForeignKey("signups.id", ondelete="CASCADE"))


class CodeSend(Model):
    """One text or call to a number that has not proved itself (a code, or a link to a
    signup): the per-number, per-range and station-wide limits count these."""

    __tablename__ = "code_sends"
    __table_args__ = (
        sa.Index("ix_code_sends_phone_sent", "phone", "sent_at"),
        sa.Index("ix_code_sends_prefix_sent", "prefix", "sent_at"),
        sa.Index("ix_code_sends_sent", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(sa.String(20))
    channel: Mapped[str] = mapped_column(sa.String(8))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The number's range: country code and the first national digits (phones.number_range).
    prefix: Mapped[str | None] = mapped_column(sa.String(12))
    # Whose code it was: a code never entered counts against its range.
    verification_id: Mapped[str | None] = mapped_column(sa.String(40))


class ChallengeUse(Model):
    """A proof-of-work solution already accepted: each is accepted once, until it expires."""

    __tablename__ = "challenge_uses"
    __table_args__ = (sa.Index("ix_challenge_uses_expires", "expires_at"),)

    challenge: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MessageStatus(StrEnum):
    PENDING = "pending"  # in the outbox, not yet handed to the provider
    SENDING = "sending"  # claimed by a sender; outcome unknown until it reports
    QUEUED = "queued"  # accepted by the provider
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELLED = "cancelled"  # never sent: withdrawn, rejected, opted out, superseded
    # Never sent: it could not go out while it was still useful (a reminder once its forum
    # started, a "you're next" once the caller left the queue); error_message says why.
    EXPIRED = "expired"


class Message(Model):
    """One SMS in the outbox: written with its cause, sent after that commits."""

    __tablename__ = "messages"
    __table_args__ = (
        # The idempotency key: one message of a kind (and key, e.g. the reminder offset)
        # per signup, however often a wave or an event is replayed.
        sa.UniqueConstraint("signup_id", "kind", "key", name="uq_messages_signup_kind_key"),
        sa.Index("ix_messages_due", "status", "send_at"),
        sa.Index("ix_messages_forum", "forum_id", "created_at"),
        # The after-show report's count by kind and status (migration 0016).
        sa.Index("ix_messages_forum_kind_status", "forum_id", "kind", "status"),
        sa.Index("ix_messages_provider_sid", "provider_sid"),
        _check_in("kind", MessageKind, "ck_messages_kind"),
        _check_in("status", MessageStatus, "ck_messages_status"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    forum_id: Mapped[int | None] = mapped_column(sa.ForeignKey("forums.id", ondelete="CASCADE"))
    signup_id: Mapped[int | None] = mapped_column(sa.ForeignKey("signups.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    key: Mapped[str] = mapped_column(sa.String(64), default="")
    to: Mapped[str] = mapped_column(sa.String(20))
    body: Mapped[str] = mapped_column(sa.Text)
    send_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(16), default=MessageStatus.PENDING)
    # Every claim adds one, and nothing else changes it: the claim's fencing number. A
    # sender proves it still holds its claim (same number, still "sending") before it
    # calls Twilio.
    attempts: Mapped[int] = mapped_column(default=0)
    provider_sid: Mapped[str | None] = mapped_column(sa.String(64))
    error_code: Mapped[int | None]
    error_message: Mapped[str | None] = mapped_column(sa.String(500))
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class EarlyStatus(Model):
    """A delivery status that arrived before its message's SID was recorded.

    Twilio may call back within milliseconds of accepting a message, before the sender
    has written the SID it got back; the status waits here and is applied then.
    """

    __tablename__ = "early_statuses"

    provider_sid: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(16))
    error_code: Mapped[int | None]
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OptOut(Model):
    """A number that replied STOP (or that Twilio reports as unsubscribed: 21610)."""

    __tablename__ = "opt_outs"

    phone: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    opted_out_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(sa.String(16), default="keyword")


class ConsentPurpose(StrEnum):
    SMS = "sms"  # texts about the forum
    PUBLISH = "publish"  # the comment, with name and location, after the programme


class ConsentMethod(StrEnum):
    WEB = "web"  # the signup form or the manage page
    API = "api"
    SMS_KEYWORD = "sms_keyword"  # STOP, START and their kin
    PHONE = "phone"  # asked by a producer on the call
    PROVIDER = "provider"  # Twilio reported the number unsubscribed (21610)


class Consent(Model):
    """One consent given or withdrawn: the ledger (``phonein.consents``), only ever added to.

    ``wording`` is the exact text shown, stored beside its ``wording_version``. Erasing a
    signup deletes its rows but SMS withdrawals, which lose the client's address (and the
    signup link, ON DELETE SET NULL) and keep the number: docs/privacy.md.
    """

    __tablename__ = "consents"
    __table_args__ = (
        sa.Index("ix_consents_forum_recorded", "forum_id", "recorded_at", "id"),
        sa.Index("ix_consents_signup", "signup_id"),
        sa.Index("ix_consents_phone", "phone"),
        _check_in("purpose", ConsentPurpose, "ck_consents_purpose"),
        _check_in("method", ConsentMethod, "ck_consents_method"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    # SET NULL, not CASCADE: an opt-out outlives its forum and its signup.
    forum_id: Mapped[int | None] = mapped_column(sa.ForeignKey("forums.id", ondelete="SET NULL"))
    signup_id: Mapped[int | None] = mapped_column(sa.ForeignKey("signups.id", ondelete="SET NULL"))
    # E.164.
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    purpose: Mapped[str] = mapped_column(sa.String(16))
    given: Mapped[bool]
    method: Mapped[str] = mapped_column(sa.String(16))
    wording_version: Mapped[str] = mapped_column(sa.String(32))
    wording: Mapped[str] = mapped_column(sa.Text)
    # The keyword received, or Twilio's error code.
    detail: Mapped[str | None] = mapped_column(sa.String(32))
    client_address: Mapped[str | None] = mapped_column(sa.String(64))
    # The database's clock.
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReminderWave(Model):
    """A forum's reminder wave for one offset and one start time, once fanned out."""

    __tablename__ = "reminder_waves"
    __table_args__ = (
        sa.UniqueConstraint("forum_id", "offset_seconds", "starts_at", name="uq_waves"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    forum_id: Mapped[int] = mapped_column(sa.ForeignKey("forums.id", ondelete="CASCADE"))
    offset_seconds: Mapped[int]
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fanned_out_at: Mapped[datetime] = mapped_column(UTCDateTime)
    messages: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[bool] = mapped_column(default=False)


class Lease(Model):
    """A named lease held by one process until it expires (the scheduler's)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The fencing number: one more each time the lease changes hands. Every scheduler
    # transaction checks it (``worker.Held.check``), so a holder that was paused past its
    # lease writes nothing once it resumes.
    fence: Mapped[int] = mapped_column(default=0, server_default="0")


class Worker(Model):
    """A running sender process and its last heartbeat (stale claims are recovered)."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SendRate(Model):
    """The shared SMS rate: the next free send slot across every sender process.

    Seconds since the epoch, so that one UPDATE can reserve a slot on every database.
    """

    __tablename__ = "send_rate"

    id: Mapped[int] = mapped_column(primary_key=True)
    next_slot: Mapped[float] = mapped_column(sa.Double)


class CallDirection(StrEnum):
    INBOUND = "inbound"  # the listener dialled the show
    CALLBACK = "callback"  # a producer had phonein call the listener
    STUDIO = "studio"  # phonein dialled the studio line into the on-air conference


class CallState(StrEnum):
    RINGING = "ringing"
    HOLDING = "holding"  # in the forum's Twilio queue, hearing their place
    ON_AIR = "on_air"  # in the on-air conference
    COMPLETED = "completed"
    FAILED = "failed"  # busy, no answer, refused, or Twilio could not connect it


# Callers still waiting for their turn on the line.
CALL_WAITING = (CallState.RINGING, CallState.HOLDING)
# Calls not yet over.
CALL_LIVE = (*CALL_WAITING, CallState.ON_AIR)


class CallCommand(StrEnum):
    """What phonein wants Twilio to do with a call (``Call.wanted``)."""

    DIAL = "dial"  # place the call (calls.create)
    ON_AIR = "on_air"  # move it into the on-air conference
    END = "end"  # thank the caller and hang up: their part is over
    GOODBYE = "goodbye"  # the forum closed before their turn


class Call(Model):
    """One phone call of a forum: a listener on the line, or the studio.

    ``state`` is what Twilio last reported; ``wanted`` is what phonein asked for and
    ``applied`` the last request it made of Twilio for it: the switchboard acts on rows
    where the two differ, so a request lost to a crash or a Twilio error is made again.
    """

    __tablename__ = "calls"
    __table_args__ = (
        sa.Index("ix_calls_forum_state", "forum_id", "state"),
        sa.Index("ix_calls_signup", "signup_id"),
        # The boards' "did a line change" probe (migration 0005).
        sa.Index("ix_calls_forum_updated", "forum_id", "updated_at"),
        # The studio line is dialled once per forum: one live studio call at a time.
        sa.Index(
            "uq_calls_one_studio",
            "forum_id",
            unique=True,
            **_where("direction = 'studio' AND state IN ('ringing', 'holding', 'on_air')"),
        ),
        _check_in("direction", CallDirection, "ck_calls_direction"),
        _check_in("state", CallState, "ck_calls_state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    forum_id: Mapped[int] = mapped_column(sa.ForeignKey("forums.id", ondelete="CASCADE"))
    signup_id: Mapped[int | None] = mapped_column(sa.ForeignKey("signups.id", ondelete="CASCADE"))
    # Twilio's CallSid; unknown for a dial-out until Twilio accepts it.
    sid: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    direction: Mapped[str] = mapped_column(sa.String(16))
    # E.164 caller ID or dialled number; NULL when withheld, or once purged.
    number: Mapped[str | None] = mapped_column(sa.String(32))
    state: Mapped[str] = mapped_column(sa.String(16), default=CallState.RINGING)
    wanted: Mapped[str | None] = mapped_column(sa.String(16))
    applied: Mapped[str | None] = mapped_column(sa.String(16))
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    # The claim's fencing number: one more at every claim of a wanted request, never reset
    # (``attempts`` is, for a new command). The claimer proves it still holds the claim
    # with it just before it calls Twilio.
    fence: Mapped[int] = mapped_column(default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(sa.String(500))
    end_reason: Mapped[str | None] = mapped_column(sa.String(32))
    conference_sid: Mapped[str | None] = mapped_column(sa.String(64))
    muted: Mapped[bool] = mapped_column(default=False)
    held: Mapped[bool] = mapped_column(default=False)
    # The caller ID matches a signup but its carrier could not vouch for it (StirVerstat):
    # held as an unknown caller, and shown to producers as unverified.
    caller_unverified: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    on_air_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    forum: Mapped[Forum] = relationship()
    signup: Mapped[Signup | None] = relationship()

    @property
    def live(self) -> bool:
        return self.state in CALL_LIVE
