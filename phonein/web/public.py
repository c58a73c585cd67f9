"""Listener-facing pages: forums, the signup form, the calendar file, the manage link."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from icalendar import Calendar, Event

from .. import challenge, forums, phones, publication, signups, verification
from ..database import commit, rollback
from ..errors import Conflict, Invalid
from ..extensions import db
from ..limits import signup_rate
from ..links import forum_url, manage_url
from ..models import Forum, ForumStatus, Signup
from ..times import format_in_zone, utcnow
from .forms import ConfirmForm, ListenerEditForm, SignupForm

bp = Blueprint("public", __name__)


def _attach_errors(form: FlaskForm, error: Invalid) -> None:
    for name, message in error.fields.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [*field.errors, message]
        else:
            form.form_errors.append(message)


@bp.get("/")
def index() -> ResponseReturnValue:
    now = utcnow()
    past = db.session.scalars(
        sa.select(Forum)
        .where(Forum.status == ForumStatus.PUBLISHED)
        .order_by(Forum.starts_at.desc())
        .limit(10)
    )
    return render_template(
        "public/index.html", upcoming=forums.list_upcoming(now), past=list(past), now=now
    )


def _forum_page(forum: Forum, form: SignupForm, status: int = 200) -> ResponseReturnValue:
    now = utcnow()
    state = forum.status_at(now)
    selection = balance = None
    if state == ForumStatus.PUBLISHED:
        selection = publication.selection(forum)
        balance = publication.balance(forum)
    return render_template(
        "public/forum.html",
        forum=forum,
        state=state.value,
        open_for_signups=forum.accepts_signups_at(now),
        form=form,
        selection=selection,
        balance=balance,
        zone_countries=phones.zone_countries(),
    ), status


@bp.get("/forums/<slug>")
def forum_page(slug: str) -> ResponseReturnValue:
    return _forum_page(forums.get_by_slug(slug), SignupForm())


@bp.post("/forums/<slug>")
@signup_rate
def sign_up(slug: str) -> ResponseReturnValue:
    forum = forums.get_by_slug(slug)
    form = SignupForm()
    if not forum.accepts_signups_at(utcnow()):
        return render_template("public/closed.html", forum=forum), 409
    if not form.validate_on_submit():
        return _forum_page(forum, form, 400)
    now = utcnow()
    region = current_app.config["DEFAULT_REGION"]
    proving = verification.verifying(current_app.config)
    if challenge.required(current_app.config):
        try:
            challenge.check(request.form.get("challenge"), now)
        except challenge.ChallengeFailed:
            rollback()
            form.form_errors.append(
                "Your browser did not finish our anti-spam check (it needs JavaScript). "
                "Please send the form again."
            )
            return _forum_page(forum, form, 400)
    try:
        if proving:
            found = verification.start(
                forum, form.data, now, default_region=region, client_address=request.remote_addr
            )
        else:
            result = verification.sign_up_unverified(forum, form.data, now, default_region=region)
    except Invalid as error:
        rollback()
        _attach_errors(form, error)
        return _forum_page(forum, form, 422)
    except Conflict as error:
        rollback()
        form.form_errors.append(error.message)
        return _forum_page(forum, form, 409)
    commit()
    if proving:
        return redirect(url_for("verify.code_page", verification_id=found.id), code=303)
    if result.manage_token is None:  # PHONEIN_VERIFY=off, and the number had signed up
        return render_template("public/verify.html", mode="known", forum=forum), 202
    flash("created", "signup")
    return redirect(url_for("public.manage", token=result.manage_token), code=303)


@bp.get("/forums/<slug>/calendar.ics")
def calendar(slug: str) -> Response:
    forum = forums.get_by_slug(slug)
    cal = Calendar()
    cal.add("prodid", "-//phonein//phone-in calendar//EN")
    cal.add("version", "2.0")
    event = Event()
    event.add("uid", f"forum-{forum.id}@{current_app.config['PUBLIC_URL'].split('//')[-1]}")
    event.add("dtstamp", utcnow())
    event.add("dtstart", forum.starts_at)
    event.add("dtend", forum.ends_at)
    event.add("summary", f"Phone-in: {forum.title}")
    url = forum_url(forum)
    event.add("description", "\n\n".join(p for p in (forum.question, url) if p))
    event.add("url", url)
    if forum.status == ForumStatus.CANCELLED:
        event.add("status", "CANCELLED")
    cal.add_component(event)
    return Response(
        cal.to_ical(),
        mimetype="text/calendar",
        headers={"Content-Disposition": f'attachment; filename="{forum.slug}.ics"'},
    )


def _manage_page(
    signup: Signup, token: str, form: ListenerEditForm, status: int = 200
) -> ResponseReturnValue:
    forum = signup.forum
    return render_template(
        "public/manage.html",
        signup=signup,
        forum=forum,
        token=token,
        form=form,
        confirm=ConfirmForm(),
        state=forum.status_at(utcnow()).value,
        listener_time=format_in_zone(forum.starts_at, signup.timezone) if signup.timezone else None,
        manage_link=manage_url(token),
        reminder_lead=timedelta(seconds=max(forum.reminder_offsets or [0])),
    ), status


@bp.get("/manage/<token>")
def manage(token: str) -> ResponseReturnValue:
    signup = signups.by_manage_token(token)
    return _manage_page(signup, token, ListenerEditForm(obj=signup))


@bp.post("/manage/<token>")
def manage_update(token: str) -> ResponseReturnValue:
    signup = signups.by_manage_token(token)
    form = ListenerEditForm()
    if not form.validate_on_submit():
        return _manage_page(signup, token, form, 400)
    try:
        values = signups.validate_listener(
            form.data, default_region=current_app.config["DEFAULT_REGION"]
        )
        signups.change_by_listener(signup, values, utcnow())
    except Invalid as error:
        rollback()
        _attach_errors(form, error)
        return _manage_page(signup, token, form, 422)
    except Conflict as error:
        rollback()
        form.form_errors.append(error.message)
        return _manage_page(signup, token, form, 409)
    commit()
    flash("Your changes are saved.", "ok")
    return redirect(url_for("public.manage", token=token), code=303)


@bp.post("/manage/<token>/withdraw")
def manage_withdraw(token: str) -> ResponseReturnValue:
    signup = signups.by_manage_token(token)
    if ConfirmForm().validate_on_submit():
        signups.withdraw(signup, utcnow())
        commit()
        flash("You have withdrawn. We will not call or text you about this forum.", "ok")
    return redirect(url_for("public.manage", token=token), code=303)


@bp.post("/manage/<token>/erase")
def manage_erase(token: str) -> ResponseReturnValue:
    signup = signups.by_manage_token(token)
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("public.manage", token=token), code=303)
    forum = signup.forum
    signups.erase(signup, utcnow())
    commit()
    return render_template("public/erased.html", forum=forum)
