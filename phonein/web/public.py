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
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response as WerkzeugResponse

from .. import challenge, consents, forums, i18n, links, phones, publication, signups, verification
from ..database import commit, rollback
from ..errors import Conflict, Invalid, NotFound
from ..extensions import csrf, db
from ..i18n import _
from ..limits import signup_rate
from ..links import forum_url, manage_url
from ..models import MAX_ID, Forum, ForumStatus, Message, Signup
from ..times import utcnow, zone_or_none
from .forms import ConfirmForm, ListenerEditForm, SignupForm

bp = Blueprint("public", __name__)
# Every POST here validates its FlaskForm, CSRF token included, before it changes anything
# (tests/test_listener_csrf.py holds each route to that). The global check would answer a
# stale form (a lost session cookie) with an English error page and the listener's question
# gone; the form's own check re-renders it, filled in, with a new token, in their language.
csrf.exempt(bp)


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


def _forum_page(forum: Forum, form: SignupForm | None, status: int = 200) -> ResponseReturnValue:
    """The forum's page; ``form`` None: a new signup form, made only if the page shows it
    (its CSRF token and country list cost a closed or published page for nothing)."""
    now = utcnow()
    state = forum.status_at(now)
    open_for_signups = forum.accepts_signups_at(now)
    if form is None and open_for_signups:
        form = SignupForm()
    selection = balance = None
    if state == ForumStatus.PUBLISHED:
        selection = publication.published_comments(forum)
        balance = publication.balances(forum, selection, count_unclassified=False, public=True)
    return render_template(
        "public/forum.html",
        forum=forum,
        state=state.value,
        open_for_signups=open_for_signups,
        form=form,
        selection=selection,
        balance=balance,
        zone_countries=phones.zone_countries(),
    ), status


@bp.get("/forums/<slug>")
def forum_page(slug: str) -> ResponseReturnValue:
    forum = forums.get_by_slug(slug)
    i18n.offer(forum.languages)
    return _forum_page(forum, None)


@bp.post("/forums/<slug>")
@signup_rate
def sign_up(slug: str) -> ResponseReturnValue:
    forum = forums.get_by_slug(slug)
    language = i18n.offer(forum.languages)
    form = SignupForm()
    if not forum.accepts_signups_at(utcnow()):
        return render_template("public/closed.html", forum=forum), 409
    if not form.validate_on_submit():
        return _forum_page(forum, form, 400)
    now = utcnow()
    region = current_app.config["DEFAULT_REGION"]
    proving = verification.verifying(current_app.config)
    source = consents.web_form(request.remote_addr)
    if challenge.required(current_app.config):
        try:
            challenge.check(request.form.get("challenge"), now)
        except challenge.ChallengeFailed:
            rollback()
            form.form_errors.append(
                _(
                    "Your browser did not finish our anti-spam check (it needs JavaScript). "
                    "Please send the form again."
                )
            )
            return _forum_page(forum, form, 400)
    data = {**form.data, "language": language}
    if zone_or_none((data.get("timezone") or "").strip()) is None:
        # The browser filled this hidden field ("Etc/Unknown" where it cannot tell): the
        # listener cannot correct it, so an unknown zone is guessed from the number instead.
        data["timezone"] = None
    try:
        if proving:
            found = verification.start(forum, data, now, default_region=region, source=source)
        else:
            result = verification.sign_up_unverified(
                forum, data, now, default_region=region, source=source
            )
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
        try:
            verification.check_sent()  # the code leaves after the commit; was it refused?
        except Invalid as error:
            _attach_errors(form, error)
            return _forum_page(forum, form, 422)
        return redirect(url_for("verify.code_page", verification_id=found.id), code=303)
    if result.manage_token is None:  # PHONEIN_VERIFY=off, and the number had signed up
        return render_template("public/verify.html", mode="known", forum=forum), 202
    flash("created", "signup")
    # Straight to the token-free page: the token is never in a URL (nor an access log).
    return open_manage_page(result.signup)


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
    i18n.offer(forum.languages)
    event.add("summary", _("Phone-in: %(title)s", title=forum.title))
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


# The manage page's cookie: the private link is exchanged for it, so the page's own
# address, the Referer it sends and the access log hold no token.
MANAGE_COOKIE = "phonein_manage"


def _cookie_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.config["SECRET_KEY"]), salt="phonein.manage")


def signup_for_link(token: str) -> Signup:
    """Return the signup a private link's token opens (the listener's own token, or a
    signed link from a text or the manage page); NotFound otherwise."""
    signup: Signup | None = None
    if token.startswith(links.MESSAGE_PREFIX):
        message_id = links.read_message_token(token)
        message = db.session.get(Message, message_id) if message_id else None
        if message is not None and message.signup_id is not None:
            signup = db.session.get(Signup, message.signup_id)
    elif token.startswith(links.SIGNUP_PREFIX):
        ref = links.read_signup_token(token)
        signup = db.session.get(Signup, ref[0]) if ref and 0 < ref[0] <= MAX_ID else None
        if ref and signup is not None and (signup.manage_token_hash or "")[:16] != ref[1]:
            signup = None
    else:
        return signups.by_manage_token(token)
    if signup is None or signup.manage_token_hash is None:
        raise NotFound(
            _("This link is not valid any more. It may have been replaced by a newer one.")
        )
    return signup


def _remember(response: WerkzeugResponse, signup: Signup) -> WerkzeugResponse:
    """Set the short-lived cookie that opens ``signup``'s manage page."""
    value = _cookie_signer().dumps([signup.id, (signup.manage_token_hash or "")[:16]])
    response.set_cookie(
        MANAGE_COOKIE,
        value,
        max_age=int(float(current_app.config["MANAGE_COOKIE_MINUTES"]) * 60),
        path="/manage",
        secure=bool(current_app.config["SESSION_COOKIE_SECURE"]),
        httponly=True,
        samesite="Lax",
    )
    return response


def _signup_from_cookie() -> Signup:
    expired = NotFound(
        _("This page needs your private link: open it again from your text or your notes.")
    )
    raw = request.cookies.get(MANAGE_COOKIE, "")
    try:
        value = _cookie_signer().loads(
            raw, max_age=int(float(current_app.config["MANAGE_COOKIE_MINUTES"]) * 60)
        )
    except BadSignature:
        raise expired from None
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)):
        raise expired
    signup = db.session.get(Signup, value[0]) if 0 < value[0] <= MAX_ID else None
    if signup is None or not signup.manage_token_hash or signup.manage_token_hash[:16] != value[1]:
        raise expired
    return signup


def open_manage_page(signup: Signup) -> WerkzeugResponse:
    """Redirect to the token-free manage page, with the cookie that opens it."""
    return _remember(redirect(url_for("public.manage_mine"), code=303), signup)


def _manage_page(signup: Signup, form: ListenerEditForm, status: int = 200) -> ResponseReturnValue:
    forum = signup.forum
    i18n.offer(forum.languages, stored=signup.reads_in)
    token_hash = signup.manage_token_hash or ""
    return render_template(
        "public/manage.html",
        signup=signup,
        forum=forum,
        form=form,
        confirm=ConfirmForm(),
        state=forum.status_at(utcnow()).value,
        listener_time=(
            i18n.format_moment(forum.starts_at, signup.timezone, i18n.format_locale())
            if signup.timezone and signup.timezone != forum.timezone
            else None
        ),
        manage_link=manage_url(links.signup_token(signup.id, token_hash)),
        reminder_lead=timedelta(seconds=max(forum.reminder_offsets or [0])),
    ), status


def _update(signup: Signup) -> ResponseReturnValue:
    # Before anything says something: errors and flashes are in the listener's language.
    i18n.offer(signup.forum.languages, stored=signup.reads_in)
    form = ListenerEditForm()
    if not form.validate_on_submit():
        return _manage_page(signup, form, 400)
    try:
        values = signups.validate_listener(
            form.data, default_region=current_app.config["DEFAULT_REGION"]
        )
        signups.change_by_listener(
            signup, values, utcnow(), source=consents.manage_page(request.remote_addr)
        )
    except Invalid as error:
        rollback()
        _attach_errors(form, error)
        return _manage_page(signup, form, 422)
    except Conflict as error:
        rollback()
        form.form_errors.append(error.message)
        return _manage_page(signup, form, 409)
    commit()
    flash(_("Your changes are saved."), "ok")
    return open_manage_page(signup)


def _withdraw(signup: Signup) -> ResponseReturnValue:
    i18n.offer(signup.forum.languages, stored=signup.reads_in)
    if ConfirmForm().validate_on_submit():
        signups.withdraw(signup, utcnow(), source=consents.withdrawal(request.remote_addr))
        commit()
        flash(_("You have withdrawn. We will not call or text you about this forum."), "ok")
    else:
        flash(_("The form expired. Please submit it again."), "error")
    return open_manage_page(signup)


def _erase(signup: Signup) -> ResponseReturnValue:
    forum = signup.forum
    i18n.offer(forum.languages, stored=signup.reads_in)
    if not ConfirmForm().validate_on_submit():
        flash(_("The form expired. Please submit it again."), "error")
        return open_manage_page(signup)
    signups.erase(signup, utcnow())
    commit()
    response = Response(render_template("public/erased.html", forum=forum))
    response.delete_cookie(MANAGE_COOKIE, path="/manage")
    return response


# The token-free manage page (a literal path: werkzeug matches it before <token>).
@bp.get(f"/manage/{links.MINE}")
def manage_mine() -> ResponseReturnValue:
    signup = _signup_from_cookie()
    return _manage_page(signup, ListenerEditForm(obj=signup))


@bp.post(f"/manage/{links.MINE}")
def manage_mine_update() -> ResponseReturnValue:
    return _update(_signup_from_cookie())


@bp.post(f"/manage/{links.MINE}/withdraw")
def manage_mine_withdraw() -> ResponseReturnValue:
    return _withdraw(_signup_from_cookie())


@bp.post(f"/manage/{links.MINE}/erase")
def manage_mine_erase() -> ResponseReturnValue:
    return _erase(_signup_from_cookie())


@bp.get("/manage/<token>")
def manage(token: str) -> ResponseReturnValue:
    """Exchange the private link for the cookie, then show the page at a token-free URL."""
    return open_manage_page(signup_for_link(token))


# The token routes still take the forms of pages rendered before the exchange existed.
@bp.post("/manage/<token>")
def manage_update(token: str) -> ResponseReturnValue:
    return _update(signup_for_link(token))


@bp.post("/manage/<token>/withdraw")
def manage_withdraw(token: str) -> ResponseReturnValue:
    return _withdraw(signup_for_link(token))


@bp.post("/manage/<token>/erase")
def manage_erase(token: str) -> ResponseReturnValue:
    return _erase(signup_for_link(token))
