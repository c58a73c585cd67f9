"""The presenter's live board, where presenters land, and the live actions' HTML forms
(go live, close, cancel, undo) for the producers' queue board without JavaScript."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from .. import accounts, forums
from ..database import commit, rollback
from ..errors import Conflict, Invalid
from ..extensions import db
from ..live import actions
from ..models import Forum, ForumStatus, LiveAction, Role, forums_not_over
from ..times import utcnow
from .forms import ConfirmForm

bp = Blueprint("board", __name__)
producer_only = accounts.require_staff(Role.PRODUCER)


@bp.get("/board/<slug>")
@accounts.require_staff(Role.PRESENTER)
def board(slug: str) -> ResponseReturnValue:
    return render_template("board/board.html", forum=forums.get_by_slug(slug))


def current_forum() -> Forum | None:
    """The forum a presenter wants now: the one live, else the next to start."""
    now = utcnow()
    coming = list(db.session.scalars(forums_not_over(now).limit(20)))
    live = [f for f in coming if f.status_at(now) == ForumStatus.LIVE]
    return (live or coming)[0] if coming else None


@bp.get("/board")
@accounts.require_staff(Role.PRESENTER)
def landing() -> ResponseReturnValue:
    """Send a presenter to the board of the live (or next) forum."""
    forum = current_forum()
    if forum is None:
        return render_template("board/none.html"), 200
    return redirect(url_for("board.board", slug=forum.slug))


def _back(slug: str) -> ResponseReturnValue:
    return redirect(url_for("producer.queue_board", slug=slug))


@bp.post("/producer/forums/<slug>/live")
@producer_only
def live_status(slug: str) -> ResponseReturnValue:
    """Go live, close or cancel from a form: an undoable live action."""
    return apply_live_form(slug)


def apply_live_form(slug: str) -> ResponseReturnValue:
    """Apply a go live / close / cancel form (status, announce) and go to the queue board."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        change = forums.change_live(
            slug,
            request.form.get("status", ""),
            utcnow(),
            announce=request.form.get("announce", "keep"),
            user_id=current_user.id,
        )
    except (Conflict, Invalid) as error:
        rollback()
        flash(error.message, "error")
        return _back(slug)
    commit()  # then the switchboard's requests: the studio dialled, goodbyes said
    flash(change.message, "ok")
    return _back(change.forum.slug)


@bp.post("/producer/forums/<slug>/actions/<int:action_id>/undo")
@producer_only
def undo(slug: str, action_id: int) -> ResponseReturnValue:
    """Undo a live action from a form (the queue board's Undo without JavaScript)."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        done = actions.undo(slug, action_id, utcnow())
    except Conflict as error:
        rollback()
        flash(error.message, "error")
        return _back(slug)
    commit()
    flash(done.message, "ok")
    return _back(slug)


def latest_action(forum: Forum) -> LiveAction | None:
    """The forum's last action while it can be undone (for the queue page's form)."""
    return actions.latest(forum, utcnow())
