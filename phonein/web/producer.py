"""Producer pages: login, forums, the queue board (screening: ``web.screening``; publication and
the report: ``web.report``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user

from .. import accounts, consents, forums, links, verification
from ..database import commit, rollback
from ..errors import Conflict, DomainError, Invalid
from ..limits import login_account_rate, login_rate
from ..models import Forum, ForumStatus, MessageKind, MessageStatus, Role
from ..sms import outbox
from ..times import all_zones, utcnow, zone_or_none
from . import board
from .forms import ConfirmForm, ForumForm, LoginForm

bp = Blueprint("producer", __name__, url_prefix="/producer")
producer_only = accounts.require_staff(Role.PRODUCER)
PER_PAGE = 50
# The API's bound too: past it, the OFFSET would overflow the database's integers.
MAX_PAGE = 100_000


def _page() -> int:
    page = max(1, request.args.get("page", 1, type=int) or 1)
    if page > MAX_PAGE:
        raise Invalid({"page": f"Give a page from 1 to {MAX_PAGE}."})
    return page


def _pages(total: int) -> int:
    return max(1, -(-total // PER_PAGE))


@bp.route("/login", methods=["GET", "POST"])
@login_rate
@login_account_rate
def login() -> ResponseReturnValue:
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.check_login(form.email.data, form.password.data)
        if user is not None:
            login_user(user)
            accounts.mark_seen(utcnow())
            target = request.args.get("next", "")
            # Only same-site paths: a crafted ?next= must not send staff elsewhere. No
            # control characters either: urlsplit drops CR, LF and tab, which the
            # redirect's header then refuses (a 500).
            if (
                not target.startswith("/")
                or target.startswith("//")
                or urlsplit(target).netloc
                or not target.isprintable()
            ):
                # A presenter lands on the board of the live (or next) forum.
                target = (
                    url_for("producer.home")
                    if user.can(Role.PRODUCER)
                    else url_for("board.landing")
                )
            return redirect(target)
        form.form_errors.append("Wrong email or password.")
    return render_template("producer/login.html", form=form), 200 if not form.errors else 401


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    if ConfirmForm().validate_on_submit() and current_user.is_authenticated:
        # Server-side: the session cookie, even a copy of it, logs in nobody any more
        # (this ends the user's sessions on other devices too).
        accounts.end_sessions(current_user)
        commit()
        logout_user()
    return redirect(url_for("public.index"))


@dataclass
class ForumRow:
    """One line of the producers' forum list."""

    forum: Forum
    state: str
    counts: dict[str, int]
    starts_in: str
    forum_time: str


# Live shows first, then the coming ones soonest first, then the rest newest first.
LIST_ORDER = {ForumStatus.LIVE: 0, ForumStatus.OPEN: 1}


def _span(delta: timedelta) -> str:
    """Say a stretch of time in a few words: '3 days', '2 h 5 min', '40 min'."""
    minutes = max(0, math.ceil(delta.total_seconds() / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days >= 2:
        return f"{days} days"
    if days:
        return f"1 day {hours} h" if hours else "1 day"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def _starts_in(forum: Forum, state: ForumStatus, now: datetime) -> str:
    if state == ForumStatus.OPEN:
        return f"in {_span(forum.starts_at - now)}"
    if state == ForumStatus.LIVE:
        return f"live now, {_span(forum.ends_at - now)} left"
    return ""


def forum_rows(now: datetime) -> list[ForumRow]:
    """The forums as producers list them: live and upcoming first, with 'starts in'."""
    rows = []
    for forum in forums.list_all():
        state = forum.status_at(now)
        local = forum.starts_at.astimezone(zone_or_none(forum.timezone) or ZoneInfo("UTC"))
        rows.append(
            ForumRow(
                forum=forum,
                state=state.value,
                counts=forums.signup_counts(forum),
                starts_in=_starts_in(forum, state, now),
                forum_time=f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local.tzname()}",
            )
        )
    upcoming = sorted(
        (r for r in rows if r.state in LIST_ORDER),
        key=lambda r: (LIST_ORDER[ForumStatus(r.state)], r.forum.starts_at),
    )
    past = [r for r in rows if r.state not in LIST_ORDER]  # already newest first
    return upcoming + past


@bp.get("/")
@accounts.require_staff(Role.PRESENTER)
def home() -> ResponseReturnValue:
    return render_template("producer/home.html", rows=forum_rows(utcnow()))


def _to_utc(local: datetime | None, zone: str) -> datetime | None:
    if local is None:
        return None
    return local.replace(tzinfo=zone_or_none(zone) or ZoneInfo("UTC"))


def _forum_values(form: ForumForm) -> dict[str, Any]:
    zone = (form.timezone.data or "").strip()
    values: dict[str, Any] = {
        "title": form.title.data,
        "question": form.question.data or "",
        "correspondent": form.correspondent.data or "",
        "description": form.description.data or "",
        "timezone": zone,
        "starts_at": _to_utc(form.starts_at.data, zone),
        "duration_minutes": form.duration_minutes.data,
        "signup_closes_at": _to_utc(form.signup_closes_at.data, zone),
    }
    slug = (form.slug.data or "").strip()
    if slug:
        values["slug"] = slug
    values["reminder_offsets"] = list(form.reminder_offsets.data or [])
    languages = [part.strip() for part in (form.languages.data or "").split(",") if part.strip()]
    if languages:
        values["languages"] = languages
    return values


def _shown(moment: datetime, zone: str) -> datetime:
    """The local wall time the edit form shows for ``moment`` (to the minute)."""
    local = moment.astimezone(zone_or_none(zone) or ZoneInfo("UTC"))
    return local.replace(tzinfo=None, second=0, microsecond=0)


def _drop_unchanged_times(form: ForumForm, forum: Forum, values: dict[str, Any]) -> None:
    """Leave times alone that the producer did not change.

    The form shows local wall times; turning them back into instants would lose
    sub-minute precision and, across a DST change, pick the wrong one of two 01:30s, and a
    save of the title would then move the forum (and text every registrant).
    """

    def same(submitted: datetime | None, stored: datetime) -> bool:
        return submitted is not None and (
            submitted.replace(second=0, microsecond=0) == _shown(stored, forum.timezone)
        )

    if values.get("timezone") == forum.timezone and same(form.starts_at.data, forum.starts_at):
        values.pop("starts_at", None)
    closes = form.signup_closes_at.data
    if (closes is None and forum.signup_closes_at == forum.ends_at) or same(
        closes, forum.signup_closes_at
    ):
        values.pop("signup_closes_at", None)


def _forum_form_page(
    form: ForumForm, forum: Forum | None, status: int = 200
) -> ResponseReturnValue:
    return render_template(
        "producer/forum_form.html",
        form=form,
        forum=forum,
        confirm=ConfirmForm(),
        state=forum.status_at(utcnow()).value if forum else None,
        zones=sorted(all_zones()),
        public_link=links.forum_url(forum) if forum else None,
    ), status


def _save_forum(form: ForumForm, forum: Forum | None) -> ResponseReturnValue:
    if not form.validate_on_submit():
        return _forum_form_page(form, forum, 400)
    created = forum is None
    try:
        values = _forum_values(form)
        if forum is None:
            forum = forums.create(values, utcnow())
        else:
            _drop_unchanged_times(form, forum, values)
            forums.update(forum, values, utcnow())
    except DomainError as error:
        rollback()
        for name, message in error.fields.items():
            field = getattr(form, name, None)
            (field.errors.append if field is not None else form.form_errors.append)(message)
        if not error.fields:
            form.form_errors.append(error.message)
        return _forum_form_page(form, forum if forum and forum.id else None, error.status)
    commit()
    flash("Forum created: share its public link below." if created else "Forum saved.", "ok")
    return redirect(url_for("producer.edit_forum", slug=forum.slug))


@bp.route("/forums/new", methods=["GET", "POST"])
@producer_only
def new_forum() -> ResponseReturnValue:
    form = ForumForm()
    defaults = forums.station_defaults()["reminder_offsets"]
    form.offer_reminders(list(defaults))
    if request.method == "GET":
        form.reminder_offsets.data = list(defaults)
        return _forum_form_page(form, None)
    return _save_forum(form, None)


@bp.route("/forums/<slug>/edit", methods=["GET", "POST"])
@producer_only
def edit_forum(slug: str) -> ResponseReturnValue:
    forum = forums.get_by_slug(slug)
    if request.method == "GET":
        zone = zone_or_none(forum.timezone) or ZoneInfo("UTC")
        form = ForumForm(obj=forum)
        form.starts_at.data = forum.starts_at.astimezone(zone).replace(tzinfo=None)
        if forum.signup_closes_at != forum.ends_at:
            form.signup_closes_at.data = forum.signup_closes_at.astimezone(zone).replace(
                tzinfo=None
            )
        else:
            form.signup_closes_at.data = None
        form.offer_reminders(forum.reminder_offsets)
        form.languages.data = ", ".join(forum.languages)
        return _forum_form_page(form, forum)
    form = ForumForm()
    form.offer_reminders(forum.reminder_offsets)
    return _save_forum(form, forum)


@bp.post("/forums/<slug>/status")
@producer_only
def forum_status(slug: str) -> ResponseReturnValue:
    status = request.form.get("status", "")
    if status in forums.LIVE_KINDS:
        # Go live, close, cancel: live actions, undoable from the queue board.
        return board.apply_live_form(slug)
    forum = forums.get_by_slug(slug, for_update=True)
    if ConfirmForm().validate_on_submit():
        try:
            forums.update(forum, {"status": status}, utcnow())
        except (Conflict, Invalid) as error:
            rollback()
            flash(error.message, "error")
        else:
            commit()  # then the switchboard's requests: the studio dialled, goodbyes said
            flash(f"The forum is now {forum.status}.", "ok")
    return redirect(url_for("producer.edit_forum", slug=forum.slug))


@bp.get("/forums/<slug>/queue")
@producer_only
def queue_board(slug: str) -> ResponseReturnValue:
    forum = forums.get_by_slug(slug)
    return render_template(
        "producer/queue.html",
        forum=forum,
        state=forum.status_at(utcnow()).value,
        undo=board.latest_action(forum),
        confirm=ConfirmForm(),
        # The questions producers ask a caller on the phone: what the ledger stores.
        asked={p.value: consents.text(v) for p, v in consents.ON_THE_PHONE.items()},
    )


@bp.get("/forums/<slug>/messages")
@producer_only
def messages_log(slug: str) -> ResponseReturnValue:
    forum = forums.get_by_slug(slug)
    kind = request.args.get("kind") or None
    status = request.args.get("status") or None
    kind = kind if kind in {k.value for k in MessageKind} else None
    status = status if status in {s.value for s in MessageStatus} else None
    page = _page()
    items, total = outbox.log(
        forum, kind=kind, status=status, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    return render_template(
        "producer/messages.html",
        forum=forum,
        items=items,
        total=total,
        page=page,
        pages=_pages(total),
        kind=kind,
        status=status,
        kinds=[k.value for k in MessageKind],
        statuses=[s.value for s in MessageStatus],
    )


@bp.get("/forums/<slug>/consents.csv")
@producer_only
def consent_ledger(slug: str) -> ResponseReturnValue:
    """Download the forum's consent ledger as CSV (cells made safe for spreadsheets)."""
    forum = forums.get_by_slug(slug)
    return Response(
        consents.export_csv(forum),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{forum.slug}-consents.csv"'},
    )


@bp.app_context_processor
def staff() -> dict[str, Any]:
    producer_page = current_user.is_authenticated and request.blueprint == "producer"
    return {
        "staff": current_user if current_user.is_authenticated else None,
        # One indexed count, on producers' pages only.
        "signups_paused": producer_page and verification.budget_spent(utcnow()),
        # formdata=None: the logout button never reads this request's body, which may be
        # the very malformed one an error page is being rendered for.
        "logout_form": ConfirmForm(formdata=None) if current_user.is_authenticated else None,
    }
