"""Domain errors and how they reach users: the contract's JSON on the API, pages elsewhere."""

from __future__ import annotations

import contextlib
from typing import Any

from flask import Flask, Response, abort, jsonify, render_template, request
from flask.globals import request_ctx
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from werkzeug.exceptions import BadHost, HTTPException

from .database import UNAVAILABLE, rollback
from .i18n import _, direction, lazy_gettext, page_language

DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class DomainError(Exception):
    """An operation refused: carries the HTTP status, a stable code and a message."""

    status = 400
    code = "bad_request"

    def __init__(
        self, message: str, *, code: str | None = None, fields: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or {}


class Invalid(DomainError):
    status = 422
    code = "invalid"

    def __init__(self, fields: dict[str, str], message: str | None = None):
        first = next(iter(fields.items()), ("input", "is invalid"))
        super().__init__(message or f"{first[0]}: {first[1]}", fields=fields)


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Upstream(DomainError):
    """Twilio refused or did not answer a request phonein had to make at once."""

    status = 502
    code = "twilio_error"


def wants_json() -> bool:
    return request.path.startswith(("/api/", "/webhooks/", "/healthz")) or (
        request.accept_mimetypes.best == "application/json"
    )


def error_response(
    status: int, code: str, message: str, fields: dict[str, str] | None = None
) -> tuple[Response | str, int]:
    if wants_json():
        body: dict[str, Any] = {"code": code, "message": message}
        if fields:
            body["fields"] = fields
        return jsonify(error=body), status
    if request_ctx.url_adapter is None:
        # A Host header the URL map cannot bind ("a..b", a 64-letter label: werkzeug's
        # BadHost): the site's template builds links, which needs that binding, and would
        # fail inside this handler (a 500 from the server). A plain page says it instead.
        return plain_page(_("Sorry"), message), status
    return render_template("error.html", status=status, message=message), status


def _flatten_webargs(messages: Any) -> dict[str, str]:
    """Turn webargs' {"json": {"phone": ["Not a valid string."]}} into {"phone": "…"}."""
    fields: dict[str, str] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                name = str(key) if key != "_schema" else "input"
                walk(f"{prefix}.{name}" if prefix else name, value)
        elif isinstance(node, list) and node and all(isinstance(m, str) for m in node):
            fields[prefix or "input"] = " ".join(node)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(f"{prefix}.{i}", value)
        else:
            fields[prefix or "input"] = str(node)

    if isinstance(messages, dict):
        # The top level names where the input came from (json, query, form): drop it.
        for value in messages.values():
            walk("", value)
    return fields


def handle_http_exception(error: HTTPException) -> tuple[Response | str, int]:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    fields = _flatten_webargs(data.get("messages")) if "messages" in data else {}
    if status == 422 and fields:
        name, text = next(iter(fields.items()))
        return error_response(422, "invalid", f"{name}: {text}", fields)
    if isinstance(error, CSRFError):
        # Flask-WTF says only "The CSRF token is missing."; say what the caller should do.
        return error_response(
            400,
            "csrf_failed",
            f"{error.description} A request authenticated by the login session must send "
            "the page's CSRF token (the X-CSRFToken header, or csrf_token in a form); "
            "API clients should use 'Authorization: Bearer TOKEN' instead.",
        )
    if not wants_json() and status in PAGE_MESSAGES:
        # Pages say it in the reader's language; werkzeug's descriptions are English.
        message = str(PAGE_MESSAGES[status])
    elif isinstance(error, BadHost):
        message = "The Host header does not name a valid host."
    elif status == 400 and request.path.startswith("/api/"):
        message = "The request body is not valid JSON (or not UTF-8)."
    elif status == 413:
        message = "The request body is too large."
    elif status == 429:
        message = f"Too many requests: {error.description}. Please wait and try again."
    else:
        message = data.get("message") or error.description or "Request failed."
    return error_response(status, DEFAULT_CODES.get(status, "error"), message)


def handle_domain_error(error: DomainError) -> tuple[Response | str, int]:
    rollback()
    return error_response(error.status, error.code, error.message, error.fields)


# What a page says for an HTTP error, in the reader's language (werkzeug's is English).
PAGE_MESSAGES = {
    400: lazy_gettext(
        "Your browser sent a request we could not read. Please go back and try again."
    ),
    404: lazy_gettext("There is nothing at this address. The link may be old or mistyped."),
    405: lazy_gettext("This page cannot be used that way. Please go back and try again."),
    413: lazy_gettext("What you sent is too large."),
    429: lazy_gettext(
        "Too many requests from your connection. Please wait a minute and try again."
    ),
}


def plain_page(title: str, text: str) -> str:
    """Return a page of a title and a sentence, in the reader's language, built without
    the site's templates (they need the database and the URL map)."""
    language = page_language()
    title, text = escape(title), escape(text)
    return (
        f'<!doctype html><html lang="{language}" dir="{direction(language)}">'
        f"<meta charset=utf-8><title>{title} · phonein</title>"
        f"<h1>{title}</h1><p>{text}</p></html>"
    )


def unavailable_page() -> str:
    """Return the plain page for a database outage, in the reader's language.

    Plain on purpose: the site's templates ask the database (who is logged in), which is
    what just failed. Choosing the language needs no database.
    """
    return plain_page(
        _("Temporarily unavailable"),
        _("We cannot reach our database just now. Please try again in a minute."),
    )


def handle_database_unavailable(error: Exception) -> tuple[Response | str, int, dict[str, str]]:
    """Answer 503 when the database refuses, times out or hangs; never a 500.

    The HTML page is plain on purpose: the site's templates ask the database (who is
    logged in), which is what just failed.
    """
    # The connection may be gone already: the pool replaces it.
    with contextlib.suppress(Exception):
        rollback()
    from flask import current_app

    current_app.logger.warning(
        "database unavailable on %s %s: %s", request.method, request.path, error
    )
    headers = {"Retry-After": "5"}
    if wants_json():
        body = {"code": "unavailable", "message": "The database is unavailable; try again soon."}
        return jsonify(error=body), 503, headers
    return unavailable_page(), 503, {**headers, "Content-Type": "text/html; charset=utf-8"}


def handle_unexpected(error: Exception) -> tuple[Response | str, int]:
    rollback()
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    from flask import current_app

    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", _("Something went wrong on our side."))


def refuse_nul_in_path() -> None:
    """Answer 404 for a path with a NUL in it: no slug, token or file name has one, and
    PostgreSQL refuses NUL in text, so it must not reach a query as a 500."""
    if "\x00" in request.path:
        abort(404)


def init_app(app: Flask) -> None:
    app.before_request(refuse_nul_in_path)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DomainError, handle_domain_error)
    for unavailable in UNAVAILABLE:
        app.register_error_handler(unavailable, handle_database_unavailable)
    app.register_error_handler(Exception, handle_unexpected)
