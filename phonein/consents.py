"""The consent ledger: every consent a listener gives or withdraws, as a row, for good.

A row says what for (``sms``, ``publish``), yes or no, when (the database's clock), how
(the web form, the API, an SMS keyword, on the phone to a producer, or Twilio reporting an
opt-out), the exact wording shown (a version named here, and its text, both stored), and
the client's address when there was one. Rows are only ever added; erasing a signup keeps
only its SMS withdrawals, as docs/privacy.md says.

This module sits below ``sms`` because the STOP/START webhook and Twilio's opt-out
report write to it. Operations may flush but never commit; views commit once.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .database import clock
from .extensions import db
from .i18n import N_, translate_page
from .models import Consent, ConsentMethod, ConsentPurpose, Forum, Signup

SMS = ConsentPurpose.SMS
PUBLISH = ConsentPurpose.PUBLISH
# The signup's column that holds each consent.
COLUMNS = {SMS: "sms_consent", PUBLISH: "publish_consent"}


@dataclass(frozen=True)
class Wording:
    """One version of a consent's wording: never edited once used; a change is a new version."""

    version: str
    purpose: ConsentPurpose
    text: str


# Every wording phonein has shown, by version. The forms' labels and the replies are
# taken from here, so what is stored is what was shown. The wordings a page shows are
# marked (N_) for the pages' catalogues: a page in French shows the French of the same
# version, and the ledger stores that French, as shown (``shown``).
WORDINGS = {
    w.version: w
    for w in (
        # The signup form, and the API (whose documentation asks clients to show it).
        Wording("sms.v1", SMS, N_("Text me a confirmation, reminders and when it is my turn")),
        Wording(
            "publish.v1",
            PUBLISH,
            N_("You may publish my comment with my name and location after the programme"),
        ),
        # The private manage page.
        Wording("sms.manage.v1", SMS, N_("Text me reminders and when it is my turn")),
        Wording(
            "publish.manage.v1", PUBLISH, N_("You may publish my comment with my name and location")
        ),
        # The private manage page's withdraw button: withdrawing ends both consents.
        Wording("sms.withdraw.v1", SMS, N_("Withdraw from this phone-in")),
        Wording("publish.withdraw.v1", PUBLISH, N_("Withdraw from this phone-in")),
        # What producers ask a caller they screen on the phone.
        Wording("sms.phone.v1", SMS, "May we text you reminders and when it is your turn?"),
        Wording(
            "publish.phone.v1",
            PUBLISH,
            "May we publish your comment with your name and location after the programme?",
        ),
        # The line that ends every text (sms.texts.stop_line), which a STOP answers.
        Wording("sms.stop.v1", SMS, "Reply STOP to opt out."),
        # The reply to START and its kin (sms.webhooks).
        Wording(
            "sms.start.v1",
            SMS,
            "You will get texts about your phone-ins again. Reply STOP to opt out.",
        ),
    )
}


@dataclass(frozen=True)
class Source:
    """How consents reached phonein: the method, the wording shown for each purpose, and
    the client's address (None where there is none: a keyword, a call)."""

    method: ConsentMethod
    wordings: Mapping[ConsentPurpose, str] = field(default_factory=dict)
    client_address: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the source as JSON (kept with a signup that waits for its code)."""
        return {
            "method": self.method.value,
            "wordings": {purpose.value: v for purpose, v in self.wordings.items()},
            "client_address": self.client_address,
        }

    @classmethod
    def from_json(cls, data: Any) -> Source | None:
        """Read a source written by ``to_json``; None for anything else."""
        if not isinstance(data, dict):
            return None
        try:
            method = ConsentMethod(str(data.get("method")))
            wordings = {
                ConsentPurpose(p): v
                for p, v in (data.get("wordings") or {}).items()
                if v in WORDINGS
            }
        except ValueError:
            return None
        address = data.get("client_address")
        return cls(method, wordings, address if isinstance(address, str) else None)


SIGNUP_FORM = {SMS: "sms.v1", PUBLISH: "publish.v1"}
MANAGE_PAGE = {SMS: "sms.manage.v1", PUBLISH: "publish.manage.v1"}
WITHDRAW_BUTTON = {SMS: "sms.withdraw.v1", PUBLISH: "publish.withdraw.v1"}
PAGE_WORDINGS = frozenset((*SIGNUP_FORM.values(), *MANAGE_PAGE.values(), *WITHDRAW_BUTTON.values()))
ON_THE_PHONE = {SMS: "sms.phone.v1", PUBLISH: "publish.phone.v1"}


def text(version: str) -> str:
    """Return the wording of ``version`` (for labels and replies)."""
    return WORDINGS[version].text


def shown(version: str, language: str | None) -> str:
    """Return the wording of ``version`` as a reader of ``language`` saw it.

    Only the page wordings (form and manage page) are translated; what producers ask on
    the phone and the keyword replies are stored in the station's wording.
    """
    wording = WORDINGS[version].text
    if language and version in PAGE_WORDINGS:
        return translate_page(language, wording)
    return wording


def web_form(client_address: str | None) -> Source:
    return Source(ConsentMethod.WEB, SIGNUP_FORM, _address(client_address))


def api(client_address: str | None) -> Source:
    return Source(ConsentMethod.API, SIGNUP_FORM, _address(client_address))


def manage_page(client_address: str | None) -> Source:
    return Source(ConsentMethod.WEB, MANAGE_PAGE, _address(client_address))


def withdrawal(client_address: str | None) -> Source:
    """The listener withdrew on the manage page: no more texts, nothing published."""
    return Source(ConsentMethod.WEB, WITHDRAW_BUTTON, _address(client_address))


def on_the_phone() -> Source:
    return Source(ConsentMethod.PHONE, ON_THE_PHONE)


def _address(address: str | None) -> str | None:
    return (address or "")[:64] or None


def _row(
    signup_id: int | None,
    purpose: ConsentPurpose,
    given: bool,
    method: ConsentMethod,
    version: str,
    *,
    phone: str | None,
    forum_id: int | None,
    client_address: str | None = None,
    detail: str | None = None,
    language: str | None = None,
) -> dict[str, Any]:
    wording = WORDINGS[version]
    return {
        "forum_id": forum_id,
        "signup_id": signup_id,
        "phone": phone,
        "purpose": purpose.value,
        "given": given,
        "method": method.value,
        "wording_version": wording.version,
        "wording": shown(version, language),
        "detail": detail,
        "client_address": client_address,
    }


def _insert(rows: list[dict[str, Any]]) -> None:
    if rows:
        # One statement with the rows as parameters (an executemany, which SQLAlchemy
        # sends as one multi-row INSERT on PostgreSQL: one round trip on the signup path).
        # Not .values(rows): a multi-row VALUES is compiled anew for every execution,
        # never cached.
        db.session.execute(sa.insert(Consent.__table__).values(recorded_at=clock()), rows)


def record(signup: Signup, source: Source, purposes: Iterable[ConsentPurpose]) -> None:
    """Record the signup's current answer for each of ``purposes`` as told by ``source``."""
    rows = [
        _row(
            signup.id,
            purpose,
            bool(getattr(signup, COLUMNS[purpose])),
            source.method,
            source.wordings[purpose],
            phone=signup.phone,
            forum_id=signup.forum_id,
            client_address=source.client_address,
            language=signup.reads_in,
        )
        for purpose in purposes
        if purpose in source.wordings
    ]
    _insert(rows)


def answers(signup: Signup) -> dict[ConsentPurpose, bool]:
    """Return the signup's consents now (to compare after a change)."""
    return {purpose: bool(getattr(signup, column)) for purpose, column in COLUMNS.items()}


def record_changes(signup: Signup, before: Mapping[ConsentPurpose, bool], source: Source) -> None:
    """Record each consent that differs from ``before`` (given or withdrawn)."""
    now = answers(signup)
    record(signup, source, [p for p in COLUMNS if p in before and before[p] != now[p]])


def record_number(
    phone: str, given: bool, method: ConsentMethod, version: str, *, detail: str | None
) -> int:
    """Record an SMS consent given or withdrawn for a whole number (a keyword, Twilio's
    opt-out report): one row per signup the number holds, or one row without a forum
    when it holds none. Return the rows written."""
    held = db.session.execute(
        sa.select(Signup.id, Signup.forum_id).where(
            Signup.phone == phone, Signup.erased_at.is_(None)
        )
    ).all()
    targets: list[tuple[int | None, int | None]] = [(s.id, s.forum_id) for s in held]
    rows = [
        _row(
            signup_id,
            SMS,
            given,
            method,
            version,
            phone=phone,
            forum_id=forum_id,
            detail=(detail or "")[:32] or None,
        )
        for signup_id, forum_id in (targets or [(None, None)])
    ]
    _insert(rows)
    return len(rows)


# An SMS withdrawal: what erasure keeps, to prove the number asked for no more texts.
def _sms_withdrawal() -> sa.ColumnElement[bool]:
    return sa.and_(Consent.purpose == SMS.value, Consent.given.is_(False))


def erase(signup_ids: Any, *, published: bool = False) -> None:
    """Reduce the ledger of erased signups (``signup_ids``: ids, or a SELECT of them) to
    what the station must keep.

    SMS withdrawals stay, with the number, the time, how and the wording, but without the
    client's address. Everything else goes, except for comments that stay published
    (``published``): their publication consents stay too, without number or address, as
    the proof that the name and comment may be shown.
    """
    of_them = Consent.signup_id.in_(signup_ids)
    keep = _sms_withdrawal()
    if published:
        keep = sa.or_(keep, Consent.purpose == PUBLISH.value)
        db.session.execute(
            sa.update(Consent)
            .where(of_them, Consent.purpose == PUBLISH.value)
            .values(phone=None, client_address=None)
        )
    db.session.execute(sa.delete(Consent).where(of_them, ~keep))
    db.session.execute(
        sa.update(Consent)
        .where(of_them, Consent.client_address.is_not(None))
        .values(client_address=None)
    )


# The export's columns, in order.
CSV_COLUMNS = (
    "recorded_at",
    "signup_id",
    "name",
    "phone",
    "purpose",
    "given",
    "method",
    "wording_version",
    "wording",
    "detail",
    "client_address",
)
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """Return ``value`` as a CSV cell no spreadsheet runs as a formula (OWASP's advice:
    a leading quote before = + - @, tab or carriage return)."""
    cell = "" if value is None else str(value)
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def ledger(forum: Forum) -> list[tuple[Consent, str | None]]:
    """Return a forum's ledger, oldest first, with the current name of each signup."""
    rows = db.session.execute(
        sa.select(Consent, Signup.name)
        .outerjoin(Signup, Signup.id == Consent.signup_id)
        .where(Consent.forum_id == forum.id)
        .order_by(Consent.recorded_at, Consent.id)
    ).all()
    return [(row[0], row[1]) for row in rows]


def export_csv(forum: Forum) -> str:
    """Return a forum's ledger as CSV, safe to open in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for consent, name in ledger(forum):
        writer.writerow(
            safe_cell(value)
            for value in (
                consent.recorded_at.isoformat().replace("+00:00", "Z"),
                consent.signup_id,
                name,
                consent.phone,
                consent.purpose,
                "yes" if consent.given else "no",
                consent.method,
                consent.wording_version,
                consent.wording,
                consent.detail,
                consent.client_address,
            )
        )
    return out.getvalue()
