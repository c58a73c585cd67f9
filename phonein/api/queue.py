"""The caller queue in the API."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from .. import forums
from ..accounts import api_user, require_api
from ..database import commit
from ..live import board, queue
from ..models import Role
from ..times import utcnow
from ..views import SignupView
from .common import PRODUCER_DOC, documented_errors, is_producer, unchanged_since_asked
from .schemas import QueueNext, QueueOut, QueuePlace, QueuePlaced, QueueQuery, QueueStep

blp = Blueprint("api_queue", __name__, description="The caller queue")


@blp.route("/forums/<slug>/queue", methods=["GET"])
@require_api(Role.PRESENTER)
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
    headers, unchanged = unchanged_since_asked(slug, now, "queue", limit, full)
    if unchanged is not None:
        return unchanged
    forum = forums.get_by_slug(slug)
    return board.board(forum, now, limit=limit, full=full), 200, headers


@blp.route("/forums/<slug>/queue", methods=["POST"])
@require_api(Role.PRODUCER)
@blp.arguments(QueuePlace)
@blp.response(200, QueuePlaced)
@documented_errors(blp, 401, 403, 404, 409, 422)
@blp.doc(**PRODUCER_DOC)
def place(data: dict[str, Any], slug: str) -> dict[str, Any]:
    """Add an approved signup at a 1-based position (default last), or move a queued one."""
    forum, signup, position = queue.place(slug, data["signup_id"], data.get("position"), utcnow())
    commit()
    return {
        "signup": SignupView(signup, queue_position=position),
        "position": position,
        "version": forum.queue_version,
    }


@blp.route("/forums/<slug>/queue/<int:signup_id>", methods=["DELETE"])
@require_api(Role.PRODUCER)
@blp.response(200, QueuePlaced)
@documented_errors(blp, 401, 403, 404, 409)
@blp.doc(**PRODUCER_DOC)
def remove(slug: str, signup_id: int) -> dict[str, Any]:
    """Take a caller out of the queue (back to approved)."""
    forum, signup = queue.remove(slug, signup_id, utcnow())
    commit()
    return {"signup": SignupView(signup), "position": None, "version": forum.queue_version}


def _step(step: queue.Step) -> dict[str, Any]:
    # The callers' lines follow the commit: the one finished is thanked, the next goes on air.
    commit()
    return {
        "done": step.done and SignupView(step.done),
        "on_air": step.on_air and SignupView(step.on_air),
        "next_up": step.next_up and SignupView(step.next_up, queue_position=1),
        "version": step.forum.queue_version,
    }


@blp.route("/forums/<slug>/queue/next", methods=["POST"])
@require_api(Role.PRODUCER)
@blp.arguments(QueueNext(), required=False)
@blp.response(200, QueueStep)
@documented_errors(blp, 401, 403, 404, 409, 422)
@blp.doc(**PRODUCER_DOC)
def advance(data: dict[str, Any], slug: str) -> dict[str, Any]:
    """The caller on air is done; the head of the queue (or ``signup_id``) goes on air.

    A caller holding on the line is moved into the on-air conference with the studio.
    """
    return _step(queue.advance(slug, utcnow(), (data or {}).get("signup_id")))


@blp.route("/forums/<slug>/queue/finish", methods=["POST"])
@require_api(Role.PRODUCER)
@blp.response(200, QueueStep)
@documented_errors(blp, 401, 403, 404, 409)
@blp.doc(**PRODUCER_DOC)
def finish(slug: str) -> dict[str, Any]:
    """The caller on air is done; nobody goes on air."""
    return _step(queue.finish(slug, utcnow()))
