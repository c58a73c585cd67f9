"""The code page: after the signup form, the listener proves the number with the code sent.

A new signup then goes to its private page, as before. A listener who had signed up with
the number chooses whether to keep their old private link or get a new one; the choice is
offered only to the browser that entered the code (its session says so).
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField

from .. import i18n, verification
from ..database import commit, rollback
from ..errors import Conflict, Invalid
from ..extensions import csrf, db
from ..i18n import _, lazy_gettext
from ..limits import signup_rate
from ..models import Forum, Verification
from ..times import utcnow

bp = Blueprint("verify", __name__)
# As on the public pages: each POST checks its form's CSRF token itself, so that a stale
# form gets the page back in the listener's language rather than an English error page.
csrf.exempt(bp)
PROVED = "verify_proved"


class CodeForm(FlaskForm):
    code = StringField(lazy_gettext("The code we sent you"))


class ResendForm(FlaskForm):
    channel = HiddenField()


class LinkForm(FlaskForm):
    choice = HiddenField()


def _offer(found: Verification | None) -> Forum | None:
    """Speak the forum's languages on this page (the code page of no forum: every one)."""
    forum = db.session.get(Forum, found.forum_id) if found else None
    i18n.offer(forum.languages if forum else None)
    return forum


def _page(found: Verification, form: CodeForm, status: int = 200) -> ResponseReturnValue:
    forum = _offer(found)
    return render_template(
        "public/verify.html",
        mode="code",
        verification=found,
        forum=forum,
        form=form,
        resend=ResendForm(),
        landline=verification.channel_for(found.phone) == "call",
    ), status


@bp.get("/verify/<verification_id>")
def code_page(verification_id: str) -> ResponseReturnValue:
    found = verification.live(verification_id, utcnow())
    form = CodeForm(formdata=None, code=request.args.get("code", "")[:10])
    return _page(found, form)


@bp.post("/verify/<verification_id>")
@signup_rate
def enter_code(verification_id: str) -> ResponseReturnValue:
    now = utcnow()
    found = verification.live(verification_id, now)
    _offer(found)
    form = CodeForm()
    if not form.validate_on_submit():
        return _page(found, form, 400)
    try:
        proof = verification.prove(verification_id, form.code.data or "", now)
    except Conflict as error:
        rollback()
        form.form_errors.append(error.message)
        return _page(found, form, 409)
    commit()  # a wrong code's try counts too
    if not proof.ok or proof.registration is None:
        form.code.errors = [_("That is not the code we sent. Please check it and try again.")]
        return _page(found, form, 422)
    result = proof.registration
    if result.manage_token is not None:
        flash("created", "signup")
        return redirect(url_for("public.manage", token=result.manage_token), code=303)
    session[PROVED] = verification_id
    return redirect(url_for("verify.link_page", verification_id=verification_id), code=303)


@bp.post("/verify/<verification_id>/resend")
@signup_rate
def resend(verification_id: str) -> ResponseReturnValue:
    _offer(db.session.get(Verification, verification_id) if len(verification_id) < 80 else None)
    form = ResendForm()
    if form.validate_on_submit():
        channel = form.channel.data or None
        try:
            verification.resend(verification_id, channel, utcnow())
            commit()
            verification.check_sent()  # the code leaves after the commit; was it refused?
        except Invalid as error:
            rollback()
            flash(next(iter(error.fields.values()), error.message), "error")
        else:
            flash(
                _("We are calling you with a new code.")
                if channel == "call"
                else _("We have sent you a new code."),
                "ok",
            )
    else:
        flash(_("The form expired. Please submit it again."), "error")
    return redirect(url_for("verify.code_page", verification_id=verification_id), code=303)


def _proved_here(verification_id: str) -> bool:
    return bool(verification_id) and session.get(PROVED) == verification_id


@bp.get("/verify/<verification_id>/link")
def link_page(verification_id: str) -> ResponseReturnValue:
    if not _proved_here(verification_id):
        return render_template("public/verify.html", mode="kept", forum=None), 404
    found = db.session.get(Verification, verification_id)
    forum = _offer(found)
    return render_template(
        "public/verify.html",
        mode="choose",
        verification=found,
        forum=forum,
        link_form=LinkForm(),
        changed=bool(found and found.values is not None),
    )


@bp.post("/verify/<verification_id>/link")
def choose_link(verification_id: str) -> ResponseReturnValue:
    form = LinkForm()
    if not _proved_here(verification_id) or not form.validate_on_submit():
        return redirect(url_for("verify.link_page", verification_id=verification_id), code=303)
    session.pop(PROVED, None)
    if form.choice.data == "new":
        token = verification.choose_new_link(verification_id, utcnow())
        commit()
        flash("updated", "signup")
        return redirect(url_for("public.manage", token=token), code=303)
    return render_template("public/verify.html", mode="kept", forum=None)
