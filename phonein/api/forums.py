"""Forums in the API."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from .. import forums
from ..accounts import api_user, require_api
from ..database import commit
from ..links import forum_url
from ..models import Forum, Role
from ..sms import outbox
from ..times import utcnow
from .common import PRODUCER_DOC, documented_errors, is_producer
from .schemas import ForumCreate, ForumList, ForumOut, ForumPatch, MessagePage, MessageQuery

blp = Blueprint("api_forums", __name__, description="Forums: live phone-in sessions")


def forum_json(forum: Forum, *, with_counts: bool) -> dict[str, Any]:
    now = utcnow()
    data = {
        column: getattr(forum, column)
        for column in (
            "slug",
            "title",
            "question",
            "correspondent",
            "description",
            "starts_at",
            "ends_at",
            "duration_minutes",
            "timezone",
            "signup_closes_at",
            "reminder_offsets",
            "languages",
        )
    }
    data["status"] = forum.status_at(now).value
    data["accepting_signups"] = forum.accepts_signups_at(now)
    data["url"] = forum_url(forum)
    if with_counts:
        data["counts"] = forums.signup_counts(forum)
    return data


@blp.route("/forums", methods=["GET"])
@blp.response(200, ForumList)
def list_forums() -> dict[str, Any]:
    """Upcoming and live forums, soonest first."""
    return {"forums": [forum_json(f, with_counts=False) for f in forums.list_upcoming(utcnow())]}


@blp.route("/forums", methods=["POST"])
@require_api(Role.PRODUCER)
@blp.arguments(ForumCreate)
@blp.response(201, ForumOut)
@documented_errors(blp, 401, 403, 409, 422)
@blp.doc(**PRODUCER_DOC)
def create_forum(values: dict[str, Any]) -> dict[str, Any]:
    """Create a forum."""
    forum = forums.create(values, utcnow())
    commit()
    return forum_json(forum, with_counts=True)


@blp.route("/forums/<slug>", methods=["GET"])
@blp.response(200, ForumOut)
@documented_errors(blp, 404)
def get_forum(slug: str) -> dict[str, Any]:
    """One forum; producers also get signup counts by status."""
    forum = forums.get_by_slug(slug)
    return forum_json(forum, with_counts=is_producer(api_user()))


@blp.route("/forums/<slug>", methods=["PATCH"])
@require_api(Role.PRODUCER)
@blp.arguments(ForumPatch)
@blp.response(200, ForumOut)
@documented_errors(blp, 401, 403, 404, 409, 422)
@blp.doc(**PRODUCER_DOC)
def patch_forum(values: dict[str, Any], slug: str) -> dict[str, Any]:
    """Change fields, or the status: live (start early), closed, published, cancelled."""
    forum = forums.get_by_slug(slug, for_update=True)
    forums.update(forum, values, utcnow())
    # Going live dials the studio; closing says goodbye to the callers still waiting: the
    # requests to Twilio follow the commit.
    commit()
    return forum_json(forum, with_counts=True)


@blp.route("/forums/<slug>/messages", methods=["GET"])
@require_api(Role.PRODUCER)
@blp.arguments(MessageQuery, location="query")
@blp.response(200, MessagePage)
@documented_errors(blp, 401, 403, 404, 422)
@blp.doc(**PRODUCER_DOC)
def list_messages(args: dict[str, Any], slug: str) -> dict[str, Any]:
    """The forum's SMS log, newest first, with delivery status."""
    forum = forums.get_by_slug(slug)
    page, per_page = args["page"], args["per_page"]
    items, total = outbox.log(
        forum,
        kind=args.get("kind"),
        status=args.get("status"),
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    return {"items": items, "total": total, "page": page, "per_page": per_page}
