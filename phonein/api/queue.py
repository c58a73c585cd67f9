"""The caller queue in the API."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from flask_smorest import Blueprint

from .. import forums, queue, switchboard
from ..auth import api_user, require_api
from ..extensions import db
from ..models import Role
from ..times import utcnow
from .common import PRODUCER_DOC, documented_errors, is_producer
from .schemas import QueueNext, QueueOut, QueuePlace, QueuePlaced, QueueQuery, QueueStep

blp = Blueprint("api_queue", __name__, description="The caller queue")


# What a presenter may see of a caller: what the board shows, not the phone, email or the
# producers' notes.
BOARD_FIELDS = (
    "id",
    "name",
    "location",
    "question",
    "status",
    "queue_position",
    "updated_at",
    "on_air_at",
    "live_call",
    "expected_on_air_at",
    "will_make_it",
)


def queue_json(slug: str, limit: int | None = None, *, full: bool) -> dict[str, Any]:
    """The queue with each caller's line and back-timing, and the unscreened callers."""
    now = utcnow()
    forum = forums.get_by_slug(slug)
    snap = queue.snapshot(forum, limit)
    for i, signup in enumerate(snap.waiting, start=1):
        signup.queue_position = i  # type: ignore[attr-defined]
    everyone = [*snap.waiting, *([snap.on_air] if snap.on_air else [])]
    switchboard.attach_calls(everyone)
    timing = switchboard.back_time(forum, snap.on_air, snap.waiting, now)

    def shown(signup: Any) -> Any:
        if full or signup is None:
            return signup
        return SimpleNamespace(**{field: getattr(signup, field, None) for field in BOARD_FIELDS})

    unscreened = []
    for call, signup in switchboard.unscreened(forum):
        line = SimpleNamespace(**vars(call))
        line.name = signup.name if signup is not None else None
        if not full:
            line.number = None
        unscreened.append(line)
    return {
        "status": forum.status_at(now).value,
        "on_air": shown(snap.on_air),
        "waiting": [shown(s) for s in snap.waiting],
        "total_waiting": snap.total_waiting,
        "version": snap.version,
        "unscreened": unscreened,
        "studio": switchboard.studio_call(forum),
        "now": now,
        "ends_at": forum.ends_at,
        **timing,
    }


@blp.route("/forums/<slug>/queue", methods=["GET"])
@require_api(Role.PRESENTER)
@blp.arguments(QueueQuery, location="query")
@blp.response(200, QueueOut)
@documented_errors(blp, 401, 403, 404, 422)
@blp.doc(**PRODUCER_DOC)
def get_queue(args: dict[str, Any], slug: str):  # type: ignore[no-untyped-def]
    """Who is on air and who waits, in order; ``version`` changes with every queue change.

    Presenters get what the board shows (name, location, question); producers get all.
    """
    return queue_json(slug, args.get("limit"), full=is_producer(api_user()))


@blp.route("/forums/<slug>/queue", methods=["POST"])
@require_api(Role.PRODUCER)
@blp.arguments(QueuePlace)
@blp.response(200, QueuePlaced)
@documented_errors(blp, 401, 403, 404, 409, 422)
@blp.doc(**PRODUCER_DOC)
def place(data: dict[str, Any], slug: str):  # type: ignore[no-untyped-def]
    """Add an approved signup at a 1-based position (default last), or move a queued one."""
    forum, signup, position = queue.place(slug, data["signup_id"], data.get("position"), utcnow())
    db.session.commit()
    signup.queue_position = position  # type: ignore[attr-defined]
    return {"signup": signup, "position": position, "version": forum.queue_version}


@blp.route("/forums/<slug>/queue/<int:signup_id>", methods=["DELETE"])
@require_api(Role.PRODUCER)
@blp.response(200, QueuePlaced)
@documented_errors(blp, 401, 403, 404, 409)
@blp.doc(**PRODUCER_DOC)
def remove(slug: str, signup_id: int):  # type: ignore[no-untyped-def]
    """Take a caller out of the queue (back to approved)."""
    forum, signup = queue.remove(slug, signup_id, utcnow())
    db.session.commit()
    return {"signup": signup, "position": None, "version": forum.queue_version}


def _step(step: queue.Step) -> dict[str, Any]:
    db.session.commit()
    # The callers' lines follow at once: the one finished is thanked, the next goes on air.
    switchboard.apply_pending(step.forum.id, switchboard.IN_REQUEST)
    if step.next_up is not None:
        step.next_up.queue_position = 1  # type: ignore[attr-defined]
    return {
        "done": step.done,
        "on_air": step.on_air,
        "next_up": step.next_up,
        "version": step.forum.queue_version,
    }


@blp.route("/forums/<slug>/queue/next", methods=["POST"])
@require_api(Role.PRODUCER)
@blp.arguments(QueueNext(), required=False)
@blp.response(200, QueueStep)
@documented_errors(blp, 401, 403, 404, 409, 422)
@blp.doc(**PRODUCER_DOC)
def advance(data: dict[str, Any], slug: str):  # type: ignore[no-untyped-def]
    """The caller on air is done; the head of the queue (or ``signup_id``) goes on air.

    A caller holding on the line is moved into the on-air conference with the studio.
    """
    return _step(queue.advance(slug, utcnow(), (data or {}).get("signup_id")))


@blp.route("/forums/<slug>/queue/finish", methods=["POST"])
@require_api(Role.PRODUCER)
@blp.response(200, QueueStep)
@documented_errors(blp, 401, 403, 404, 409)
@blp.doc(**PRODUCER_DOC)
def finish(slug: str):  # type: ignore[no-untyped-def]
    """The caller on air is done; nobody goes on air."""
    return _step(queue.finish(slug, utcnow()))
