"""Signups in the API: the public signup, and producers' screening and publication."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Response, current_app, jsonify, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from .. import challenge, consents, forums, i18n, publication, search, signups, verification
from ..accounts import require_api, ridden
from ..database import commit
from ..limits import signup_rate
from ..links import manage_url
from ..live import board, queue
from ..models import MAX_ID, Role, Signup
from ..times import utcnow
from ..views import SignupView
from .common import PRODUCER_DOC, documented_errors, unchanged_since_asked
from .schemas import (
    ApiError,
    PublishIn,
    ScreenIn,
    SignupCreated,
    SignupOut,
    SignupPage,
    SignupQuery,
)
from .verifications import SignupKnown, SignupWithChallenge, VerificationStarted, started

blp = Blueprint("api_signups", __name__, description="Listener signups")


def with_position(signup: Signup) -> SignupView:
    return SignupView(signup, queue_position=queue.position_of(signup))


@blp.route("/forums/<slug>/signups", methods=["POST"])
@signup_rate
@blp.arguments(SignupWithChallenge)
@blp.response(
    202,
    VerificationStarted,
    description="PHONEIN_VERIFY=sms: a code is on its way, the same answer for every number. "
    "With PHONEIN_VERIFY=off, a number that had signed up gets 202 with only a message: "
    "nothing changed, and the number is texted a link to its own signup.",
)
@blp.alt_response(201, schema=SignupCreated, description="PHONEIN_VERIFY=off: a new signup")
@blp.alt_response(400, schema=ApiError, description="No valid proof-of-work (fields.challenge)")
@documented_errors(blp, 404, 409, 422)
def create_signup(data: dict[str, Any], slug: str) -> Response:
    """Sign up for a forum. The signup counts once the code sent to the number is entered."""
    now = utcnow()
    if challenge.required(current_app.config):
        challenge.check(data.pop("challenge", None), now)
    forum = forums.get_by_slug(slug)
    if not data.get("language"):
        data["language"] = i18n.choose_language(forum.languages, accept=request.accept_languages)
    region = current_app.config["DEFAULT_REGION"]
    source = consents.api(request.remote_addr)
    if verification.verifying(current_app.config):
        found = verification.start(forum, data, now, default_region=region, source=source)
        commit()
        verification.check_sent()  # the code leaves after the commit; was it refused?
        return started(found)
    result = verification.sign_up_unverified(forum, data, now, default_region=region, source=source)
    commit()
    if not result.created or result.manage_token is None:
        known = SignupKnown().dump(
            {
                "message": "This number has signed up already: nothing was changed. We have "
                "texted it a link to its signup."
            }
        )
        response = jsonify(known)
        response.status_code = 202
        return response
    view = SignupView(result.signup, manage_url=manage_url(result.manage_token))
    created = jsonify(SignupCreated().dump(view))
    created.status_code = 201
    return created


# Totals kept per process, by the forum's state as the list's ETag reads it and by the
# filter: the other pages of an unchanged forum do not count its signups again.
TOTALS_KEPT = 1024


def _known_total(
    now: datetime, args: dict[str, Any]
) -> tuple[dict[str, int], str | None, int | None]:
    """Return the process's totals, this list's key in them, and its total if known.

    The key is a tag of what ``live.board.etag`` reads (the forum, the newest change to
    any of its signups, the queue's version, the minute) and of the filter: a signup
    added, changed or erased changes it, so a kept total is as fresh as a 304 would be
    (see ``etag``), and no older than the minute. No key when the forum's state was not
    read with the caller's check (``ridden``).
    """
    totals: dict[str, int] = current_app.extensions.setdefault("phonein_list_totals", {})
    values = ridden()
    if values is None:
        return totals, None, None
    key = board.etag_of(values, now, "signups-total", args.get("status"), args.get("q"))
    if key is None:
        return totals, None, None
    return totals, key, totals.get(key)


@blp.route("/forums/<slug>/signups", methods=["GET"])
@require_api(Role.PRODUCER, along=board.etag_ride)
@blp.arguments(SignupQuery, location="query")
@blp.response(200, SignupPage, headers={"ETag": {"schema": {"type": "string"}}})
@blp.alt_response(304, description="Unchanged since the ETag given in If-None-Match")
@documented_errors(blp, 401, 403, 404, 422)
@blp.doc(**PRODUCER_DOC)
def list_signups(args: dict[str, Any], slug: str) -> Any:
    """List and search a forum's signups, newest first.

    ``q`` searches name, location and question, ignoring case and accents (Cyrillic and
    Greek are transliterated: "anna" finds "Анна"), and phone numbers however they are
    typed. ``after`` pages by keyset (see ``next_after``); ``page`` by offset. The answer
    carries an ETag, as the queue's does: the producers' board polls the approved list
    every second, and an unchanged list answers 304 from one indexed query.
    """
    key = (
        "signups",
        args.get("status"),
        args.get("q"),
        args["page"],
        args["per_page"],
        args.get("after"),
    )
    now = utcnow()
    headers, unchanged, forum = unchanged_since_asked(slug, now, *key)
    if unchanged is not None:
        return unchanged
    forum = forum or forums.get_by_slug(slug)
    # The first page's total stands for the pages after it (see SignupPage.total).
    counting = args.get("after") is None
    totals, total_key, known = _known_total(now, args) if counting else ({}, None, None)
    found = search.search(
        forum,
        status=args.get("status"),
        q=args.get("q"),
        page=args["page"],
        per_page=args["per_page"],
        after=args.get("after"),
        count=counting and known is None,
        lines=True,
    )
    total = found.total if known is None else known
    if known is None and total_key is not None and found.total is not None:
        if len(totals) >= TOTALS_KEPT:
            totals.clear()
        totals[total_key] = found.total
    places = queue.positions_of(forum.id, found.items)
    lines = found.lines
    views = [
        SignupView(s, queue_position=places.get(s.id), call=lines.get(s.id)) for s in found.items
    ]
    page = {
        "items": views,
        "total": total,
        "page": args["page"],
        "per_page": args["per_page"],
        "next_after": found.next_after,
    }
    return page, 200, headers


@blp.route("/signups/<int:signup_id>", methods=["GET"])
@require_api(Role.PRODUCER)
@blp.response(200, SignupOut)
@documented_errors(blp, 401, 403, 404)
@blp.doc(**PRODUCER_DOC)
def get_signup(signup_id: int) -> SignupView:
    """One signup, everything producers know about it."""
    return with_position(signups.get(signup_id))


@blp.route("/signups/<int:signup_id>/screen", methods=["POST"])
@require_api(Role.PRODUCER)
@blp.arguments(ScreenIn)
@blp.response(200, SignupOut)
@documented_errors(blp, 401, 403, 404, 409, 422)
@blp.doc(**PRODUCER_DOC)
def screen_signup(data: dict[str, Any], signup_id: int) -> SignupView:
    """Approve or reject, and set stance, rating and notes (each optional)."""
    signup = signups.get(signup_id)
    signups.screen(signup, data, utcnow())
    commit()
    return with_position(signup)


@blp.route("/signups/<int:signup_id>/publish", methods=["POST"])
@require_api(Role.PRODUCER)
@blp.arguments(PublishIn)
@blp.response(200, SignupOut)
@documented_errors(blp, 401, 403, 404, 409, 422)
@blp.doc(**PRODUCER_DOC)
def publish_signup(data: dict[str, Any], signup_id: int) -> SignupView:
    """Put a comment in the published selection (only with the listener's consent)."""
    signup = signups.get(signup_id)
    publication.set_published(signup, data, utcnow())
    commit()
    return with_position(signup)


class BulkScreenIn(Schema):
    signup_ids = fields.List(
        fields.Int(strict=True, validate=validate.Range(1, MAX_ID)),
        required=True,
        validate=validate.Length(1, signups.BULK_MAX),
        metadata={"description": "Decided in this order; with queue, queued in this order."},
    )
    decision = fields.Str(required=True, validate=validate.OneOf(signups.DECISIONS))
    queue = fields.Bool(
        load_default=False,
        metadata={"description": "With approve: also add each to the end of the queue."},
    )


class SkippedOut(Schema):
    signup_id = fields.Int()
    reason = fields.Str(
        metadata={
            "enum": [
                "not_found",
                "already_approved",
                "already_rejected",
                "already_queued",
                "not_screenable",
            ]
        }
    )
    message = fields.Str()


class BulkScreenOut(Schema):
    changed = fields.List(fields.Nested(SignupOut))
    skipped = fields.List(fields.Nested(SkippedOut))


@blp.route("/forums/<slug>/signups/screen", methods=["POST"])
@require_api(Role.PRODUCER)
@blp.arguments(BulkScreenIn)
@blp.response(200, BulkScreenOut)
@documented_errors(blp, 401, 403, 404, 409, 422)
@blp.doc(**PRODUCER_DOC)
def screen_signups(data: dict[str, Any], slug: str) -> dict[str, Any]:
    """Approve or reject several signups at once; with ``queue``, approve and queue them.

    One transaction. Signups the decision would not change (already approved, rejected
    or queued; on air or done; not in this forum) are left alone and listed in
    ``skipped`` with a reason, so the same request sent twice changes nothing the second
    time. 409 (nothing changed) when queueing in a forum whose queue is closed.
    """
    forum = forums.get_by_slug(slug)
    result = signups.screen_many(
        forum, data["signup_ids"], data["decision"], utcnow(), and_queue=data["queue"]
    )
    commit()
    places = queue.positions_of(forum.id, result.changed) if result.changed else {}
    return {
        "changed": [SignupView(s, queue_position=places.get(s.id)) for s in result.changed],
        "skipped": result.skipped,
    }
