"""Producer pages: login, forums, screening, the queue board, publication."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user

from .. import accounts, forums, publication, search, signups, verification
from ..database import commit, rollback
from ..errors import Conflict, DomainError, Invalid
from ..limits import login_account_rate, login_rate
from ..models import Forum, MessageKind, MessageStatus, Role, SignupStatus
from ..sms import outbox
from ..times import utcnow, zone_or_none
from .forms import ConfirmForm, ForumForm, LoginForm, PublishForm, ScreenForm

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
            # Only same-site paths: a crafted ?next= must not send staff elsewhere.
            if not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
                target = url_for("producer.home") if user.can(Role.PRODUCER) else "/"
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


@bp.get("/")
@accounts.require_staff(Role.PRESENTER)
def home() -> ResponseReturnValue:
    items = [(f, forums.signup_counts(f)) for f in forums.list_all()]
    return render_template("producer/home.html", items=items, now=utcnow())


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
    languages = [part.strip() for part in (form.languages.data or "").split(",") if part.strip()]
    if languages:
        values["languages"] = languages
    try:
        values["reminder_offsets"] = [
            int(part) * 60 for part in (form.reminder_offsets.data or "").split(",") if part.strip()
        ]
    except ValueError:
        raise Invalid({"reminder_offsets": "Give whole minutes separated by commas."}) from None
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
    ), status


def _save_forum(form: ForumForm, forum: Forum | None) -> ResponseReturnValue:
    if not form.validate_on_submit():
        return _forum_form_page(form, forum, 400)
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
    flash("Forum saved.", "ok")
    return redirect(url_for("producer.edit_forum", slug=forum.slug))


@bp.route("/forums/new", methods=["GET", "POST"])
@producer_only
def new_forum() -> ResponseReturnValue:
    form = ForumForm()
    if request.method == "GET":
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
        form.reminder_offsets.data = ", ".join(str(o // 60) for o in forum.reminder_offsets)
        form.languages.data = ", ".join(forum.languages)
        return _forum_form_page(form, forum)
    return _save_forum(ForumForm(), forum)


@bp.post("/forums/<slug>/status")
@producer_only
def forum_status(slug: str) -> ResponseReturnValue:
    forum = forums.get_by_slug(slug, for_update=True)
    if ConfirmForm().validate_on_submit():
        try:
            forums.update(forum, {"status": request.form.get("status", "")}, utcnow())
        except (Conflict, Invalid) as error:
            rollback()
            flash(error.message, "error")
        else:
            commit()  # then the switchboard's requests: the studio dialled, goodbyes said
            flash(f"The forum is now {forum.status}.", "ok")
    return redirect(url_for("producer.edit_forum", slug=forum.slug))


@bp.get("/forums/<slug>/signups")
@producer_only
def screening(slug: str) -> ResponseReturnValue:
    forum = forums.get_by_slug(slug)
    status = request.args.get("status") or None
    if status not in {s.value for s in SignupStatus}:
        status = None
    q = request.args.get("q", "")
    page = _page()
    items, total = search.search(forum, status=status, q=q, page=page, per_page=PER_PAGE)
    return render_template(
        "producer/screening.html",
        forum=forum,
        items=items,
        total=total,
        page=page,
        pages=_pages(total),
        status=status,
        q=q,
        counts=forums.signup_counts(forum),
        form=ScreenForm(),
        statuses=[s.value for s in SignupStatus],
    )


@bp.post("/signups/<int:signup_id>/screen")
@producer_only
def screen(signup_id: int) -> ResponseReturnValue:
    signup = signups.get(signup_id)
    form = ScreenForm()
    back = request.form.get("back") or url_for("producer.screening", slug=signup.forum.slug)
    if not back.startswith("/") or back.startswith("//"):
        back = url_for("producer.screening", slug=signup.forum.slug)
    if form.validate_on_submit():
        data: dict[str, Any] = {
            "stance": form.stance.data or None,
            "rating": int(form.rating.data) if form.rating.data else None,
            "notes": form.notes.data,
        }
        if form.decision.data:
            data["decision"] = form.decision.data
        try:
            signups.screen(signup, data, utcnow())
        except (Conflict, Invalid) as error:
            rollback()
            flash(f"{signup.name}: {error.message}", "error")
        else:
            commit()
            flash(f"Saved {signup.name} ({signup.status}).", "ok")
    return redirect(f"{back}#signup-{signup.id}")


@bp.get("/forums/<slug>/queue")
@producer_only
def queue_board(slug: str) -> ResponseReturnValue:
    forum = forums.get_by_slug(slug)
    return render_template(
        "producer/queue.html", forum=forum, state=forum.status_at(utcnow()).value
    )


@bp.get("/forums/<slug>/publication")
@producer_only
def publication_editor(slug: str) -> ResponseReturnValue:
    forum = forums.get_by_slug(slug)
    return render_template(
        "producer/publication.html",
        forum=forum,
        # Paged: a forum of 100,000 signups must not load every candidate at once.
        candidates=publication.candidates(forum, page=_page()),
        balance=publication.balance(forum),
        form=PublishForm(),
        confirm=ConfirmForm(),
        state=forum.status_at(utcnow()).value,
    )


@bp.post("/signups/<int:signup_id>/publish")
@producer_only
def publish(signup_id: int) -> ResponseReturnValue:
    signup = signups.get(signup_id)
    form = PublishForm()
    if form.validate_on_submit():
        try:
            publication.set_published(
                signup,
                {
                    "published": form.published.data,
                    "pull_quote": form.pull_quote.data,
                    "order": form.order.data,
                },
                utcnow(),
            )
        except (Conflict, Invalid) as error:
            rollback()
            flash(f"{signup.name}: {error.message}", "error")
        else:
            commit()
    else:
        flash("Give the order as a whole number.", "error")
    return redirect(
        url_for("producer.publication_editor", slug=signup.forum.slug) + f"#signup-{signup.id}"
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
