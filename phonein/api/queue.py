"""The caller queue in the API."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from .. import forums, signups
from ..accounts import api_user, require_api, ridden
from ..database import commit
from ..errors import Conflict
from ..inputs import clean_line
from ..live import actions, board, queue
from ..models import Role
from ..times import utcnow
from ..views import SignupView
from .common import PRODUCER_DOC, documented_errors, is_producer, unchanged_since_asked
from .schemas import (
    LiveStatusIn,
    LiveStatusOut,
    PronunciationIn,
    QueueNext,
    QueueOut,
    QueuePlace,
    QueuePlaced,
    QueueQuery,
    QueueStep,
    SignupOut,
    UndoOut,
)

blp = Blueprint("api_queue", __name__, description="The caller queue")


@blp.route("/forums/<slug>/queue", methods=["GET"])
@require_api(Role.PRESENTER, along=board.etag_ride)
@blp.arguments(QueueQuery, location="query")
@blp.response(200, QueueOut, headers={"ETag": {"schema": {"type": "string"}}})
@blp.alt_response(304, description="Unchanged since the ETag given in If-None-Match")
@documented_errors(blp, 401, 403, 404, 422)
@blp.doc(**PRODUCER_DOC)
def get_queue(args: dict[str, Any], slug: str) -> Any:
    """Who is on air and who waits, in order; ``version`` changes with every queue change.

    Presenters get what the board shows (name, location, question); producers get all.
    ``limit`` pages the waiting list (``total_waiting`` counts them all). The answer
    carries an ETag: send it back in ``If-None-Match`` and an unchanged board answers
    304 with no body, from one indexed query. Everything but ``now`` and
    ``remaining_seconds`` (which clients tick themselves) is then as last answered.
    """
    now = utcnow()
    limit = args.get("limit")
    full = is_producer(api_user())
    headers, unchanged, forum = unchanged_since_asked(slug, now, "queue", limit, full)
    if unchanged is not None:
        return unchanged
    forum = forum or forums.get_by_slug(slug)
    return board.board(forum, now, limit=limit, full=full), 200, headers


def _user_id() -> int | None:
    user = api_user()
    return user.id if user is not None else None


@blp.route("/forums/<slug>/queue", methods=["POST"])
@require_api(Role.PRODUCER)
@blp.arguments(QueuePlace)
@blp.response(200, QueuePlaced)
@documented_errors(blp, 401, 403, 404, 409, 422)
@blp.doc(**PRODUCER_DOC)
def place(data: dict[str, Any], slug: str) -> dict[str, Any]:
    """Add an approved signup at a 1-based position (default last), or move a queued one.

    A caller who is ``done`` (or was ``dropped``) goes back in the queue the same way;
    that is a live action, undoable for a while (``action``).
    """
    now = utcnow()
    signup_id, wanted = data["signup_id"], data.get("position")
    action = None
    try:
        # Adding or moving: the common case, and no live action (nothing to capture).
        forum, signup, position = queue.place(slug, signup_id, wanted, now)
    except Conflict as refused:
        if refused.code != "not_approved":
            raise
        # The failed place holds the lock: this reads the forum's row under it again, and
        # the capture and the requeue work under that one lock.
        locked = queue.lock(slug, now)
        before = actions.capture(locked, now, signup_id)
        if before.signups.get(signup_id, {}).get("status") not in ("done", "dropped"):
            raise
        forum, signup, position = queue.requeue(slug, signup_id, wanted, now, locked=locked)
        action = actions.record(before, forum, actions.Kind.REQUEUE, now, _user_id())
    commit()
    return {
        "signup": SignupView(signup, queue_position=position),
        "position": position,
        "version": forum.queue_version,
        "action": action,
    }


@blp.route("/forums/<slug>/queue/<int:signup_id>", methods=["DELETE"])
@require_api(Role.PRODUCER)
@blp.response(200, QueuePlaced)
@documented_errors(blp, 401, 403, 404, 409)
@blp.doc(**PRODUCER_DOC)
def remove(slug: str, signup_id: int) -> dict[str, Any]:
    """Take a caller out of the queue (back to approved); undoable for a while."""
    now = utcnow()
    locked = queue.lock(slug, now)
    before = actions.capture(locked, now, signup_id)
    forum, signup = queue.remove(slug, signup_id, now, locked=locked)
    action = actions.record(before, forum, actions.Kind.REMOVE, now, _user_id())
    commit()
    return {
        "signup": SignupView(signup),
        "position": None,
        "version": forum.queue_version,
        "action": action,
    }


def step_message(step: queue.Step, kind: actions.Kind) -> str:
    """Say what a next or finish did, in the producer's words."""
    done, on_air = step.done, step.on_air
    if on_air is not None:
        message = (
            f"{done.name} is done; {on_air.name} is on air."
            if done
            else (f"{on_air.name} is on air.")
        )
        if on_air.id not in step.on_the_line:
            message += f" {on_air.name} is not on the line: call them back."
        return message
    if kind == actions.Kind.NEXT:
        if done is not None:
            return f"Nobody was waiting: {done.name} is done, and nobody is on air."
        return "Nobody was waiting and nobody was on air: nothing changed."
    if done is not None:
        return f"{done.name} is done; nobody is on air."
    return "Nobody was on air: nothing changed."


def _step(slug: str, kind: actions.Kind, chosen: int | None = None) -> dict[str, Any]:
    taken = queue.ridden_lock(ridden())
    step, action = actions.step(slug, kind, utcnow(), chosen, _user_id(), taken=taken)
    message = step_message(step, kind)
    # The callers' lines follow the commit: the one finished is thanked, the next goes on air.
    commit()
    return {
        "done": step.done and SignupView(step.done),
        "on_air": step.on_air and SignupView(step.on_air),
        "next_up": step.next_up and SignupView(step.next_up, queue_position=1),
        "version": step.forum.queue_version,
        "message": message,
        "action": action,
    }


@blp.route("/forums/<slug>/queue/next", methods=["POST"])
@require_api(Role.PRODUCER, along=queue.lock_ride)
@blp.arguments(QueueNext(), required=False)
@blp.response(200, QueueStep)
@documented_errors(blp, 401, 403, 404, 409, 422)
@blp.doc(**PRODUCER_DOC)
def advance(data: dict[str, Any], slug: str) -> dict[str, Any]:
    """The caller on air is done; the head of the queue (or ``signup_id``) goes on air.

    A caller holding on the line is moved into the on-air conference with the studio.
    ``message`` says what happened (nobody waiting, a caller not on the line); ``action``
    undoes it for a while (``POST …/actions/{id}/undo``).
    """
    return _step(slug, actions.Kind.NEXT, (data or {}).get("signup_id"))


@blp.route("/forums/<slug>/queue/finish", methods=["POST"])
@require_api(Role.PRODUCER, along=queue.lock_ride)
@blp.response(200, QueueStep)
@documented_errors(blp, 401, 403, 404, 409)
@blp.doc(**PRODUCER_DOC)
def finish(slug: str) -> dict[str, Any]:
    """The caller on air is done; nobody goes on air (with nobody on air: nothing changes,
    and ``message`` says so)."""
    return _step(slug, actions.Kind.FINISH)


@blp.route("/forums/<slug>/actions/<int:action_id>/undo", methods=["POST"])
@require_api(Role.PRODUCER)
@blp.response(200, UndoOut)
@documented_errors(blp, 401, 403, 404, 409)
@blp.doc(**PRODUCER_DOC)
def undo(slug: str, action_id: int) -> dict[str, Any]:
    """Undo a live action while it can be: the queue, who is on air and the forum's status
    and times are as before it, in the same order.

    Idempotent: undoing twice answers ``already: true`` and changes nothing. 409
    ``undo_expired`` past its ``expires_at``; 409 ``changed_since`` when the queue has
    changed since. A text the action wrote that already went out is not un-sent (one
    still pending is cancelled); a line it hung up stays hung up; ``message`` says which.
    """
    done = actions.undo(slug, action_id, utcnow())
    commit()
    return {
        "message": done.message,
        "already": done.already,
        "lines_ended": done.lines_ended,
        "version": done.forum.queue_version,
    }


@blp.route("/forums/<slug>/live", methods=["POST"])
@require_api(Role.PRODUCER)
@blp.arguments(LiveStatusIn)
@blp.response(200, LiveStatusOut)
@documented_errors(blp, 401, 403, 404, 409, 422)
@blp.doc(**PRODUCER_DOC)
def live_status(data: dict[str, Any], slug: str) -> dict[str, Any]:
    """Go live now, close or cancel the show, as an undoable live action.

    Going live before the announced start keeps that start for listeners (``announce``
    ``keep``: reminders go out as planned) or texts them the change (``text``).
    """
    change = forums.change_live(
        slug, data["status"], utcnow(), announce=data["announce"], user_id=_user_id()
    )
    commit()
    forum = change.forum
    return {
        "status": forum.status,
        "starts_at": forum.starts_at,
        "ends_at": forum.ends_at,
        "message": change.message,
        "action": change.action,
        "version": forum.queue_version,
    }


@blp.route("/signups/<int:signup_id>/pronunciation", methods=["PUT"])
@require_api(Role.PRODUCER)
@blp.arguments(PronunciationIn)
@blp.response(200, SignupOut)
@documented_errors(blp, 401, 403, 404, 422)
@blp.doc(**PRODUCER_DOC)
def set_pronunciation(data: dict[str, Any], signup_id: int) -> SignupView:
    """Note how to say a caller's name (shown on the presenter's board); null clears it."""
    signup = signups.get(signup_id)
    # Producer-written, shown to presenters: one clean line (pages escape it anyway).
    note = clean_line(data["pronunciation"] or "")
    queue.bump(signup.forum_id)
    signup.pronunciation = note or None
    signup.updated_at = utcnow()
    commit()
    return SignupView(signup)
