"""Pieces every API module uses: documented errors, auth doc, the boards' ETags."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Response, make_response, request
from flask_smorest import Blueprint
from werkzeug.http import quote_etag

from .. import forums
from ..accounts import ridden
from ..live import board
from ..models import Forum, Role, User
from .schemas import ApiError

PRODUCER_DOC: dict[str, Any] = {"security": [{"bearerAuth": []}]}
ERRORS = {
    401: "No or bad credentials",
    403: "Role not allowed",
    404: "Not found",
    409: "The state forbids the action",
    422: "Invalid fields",
}


View = Callable[..., Any]


def documented_errors(blp: Blueprint, *codes: int) -> Callable[[View], View]:
    """Stack ``alt_response`` for each error code so the OpenAPI document lists them."""

    def decorator(view: View) -> View:
        for code in codes:
            view = blp.alt_response(code, schema=ApiError, description=ERRORS[code])(view)
        return view

    return decorator


def is_producer(user: User | None) -> bool:
    return user is not None and user.can(Role.PRODUCER)


def unchanged_since_asked(
    slug: str, now: datetime, *key: object
) -> tuple[dict[str, str], Response | None, Forum | None]:
    """Return a board poll's ETag headers, the 304 to answer if the client has it, and
    the forum when it was read on the way (else None: the view loads it).

    The tag comes from the query that checked the caller, when the view asked for it
    (``require_api(along=board.etag_ride)``: an unchanged board's poll is that one query),
    else from one indexed query of its own (``live.board.etag``); an unknown forum is a
    404. Weak: ``now`` differs between two answers with the same tag. Staff answers stay
    ``no-store``: the boards keep the last answer themselves and send its tag back.
    """
    values = ridden()
    forum: Forum | None = None
    if values is not None:
        tag = board.etag_of(values, now, *key)
        forum = values[0]
    else:
        tag = board.etag(slug, now, *key)
    if tag is None:
        forums.get_by_slug(slug)  # raises the 404
    headers = {"ETag": quote_etag(tag or "", weak=True), "Vary": "Authorization, Cookie"}
    if tag is not None and request.if_none_match.contains_weak(tag):
        return headers, make_response("", 304, headers), forum
    return headers, None, forum
