"""Links to listeners' pages, as listeners reach them (``PUBLIC_URL``), and keeping the
private ones out of what is stored and logged.

A private link is a bearer credential: whoever has it can change, withdraw or erase a
signup. So a text is stored with ``PLACEHOLDER`` where its link goes (the producers' SMS log
shows that, not a working link) and the link is put in only as the text is handed to the
SMS backend (``fill``): a signed reference to the message, made from the secret key
without a database call. Log lines lose any private link (``redact``).
"""

from __future__ import annotations

import logging
import re

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from .models import Forum

PLACEHOLDER = "[your private link]"
MESSAGE_PREFIX = "m."
SIGNUP_PREFIX = "s."
# Where the manage page lives once the link has been exchanged for a cookie: no token.
MINE = "mine"
# /manage/<anything but the token-free page> in a log line or a stored text.
PRIVATE_RE = re.compile(r"/manage/(?!mine\b)[^\s\"'?#/]+")


def forum_url(forum: Forum) -> str:
    """The forum's public page."""
    return f"{current_app.config['PUBLIC_URL']}/forums/{forum.slug}"


def manage_url(token: str) -> str:
    """The listener's private link: see, change, withdraw or erase their signup."""
    return f"{current_app.config['PUBLIC_URL']}/manage/{token}"


def _signer(purpose: str) -> URLSafeSerializer:
    return URLSafeSerializer(str(current_app.config["SECRET_KEY"]), salt=f"phonein.{purpose}")


def message_token(message_id: int) -> str:
    """Return the private link's token a text carries: a signed reference to the message."""
    return MESSAGE_PREFIX + str(_signer("message-link").dumps(message_id))


def signup_token(signup_id: int, token_hash: str) -> str:
    """Return a private link's token for a signup, bound to its current manage token.

    The manage page shows this one (it knows only the hash of the listener's token); it
    stops working when the listener's link is replaced or the signup erased.
    """
    return SIGNUP_PREFIX + str(_signer("signup-link").dumps([signup_id, token_hash[:16]]))


def read_message_token(token: str) -> int | None:
    try:
        value = _signer("message-link").loads(token.removeprefix(MESSAGE_PREFIX))
    except BadSignature:
        return None
    return value if isinstance(value, int) else None


def read_signup_token(token: str) -> tuple[int, str] | None:
    try:
        value = _signer("signup-link").loads(token.removeprefix(SIGNUP_PREFIX))
    except BadSignature:
        return None
    if (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], int)
        and isinstance(value[1], str)
    ):
        return value[0], value[1]
    return None


def fill(body: str, message_id: int) -> str:
    """Put the private link into a text as it is sent (no database call: see above)."""
    if PLACEHOLDER not in body:
        return body
    return body.replace(PLACEHOLDER, manage_url(message_token(message_id)))


# A one-time code carried in a link (the verification link texted to a known number).
CODE_RE = re.compile(r"([?&]code=)[^\s&\"'#]+")


def redact(text: str) -> str:
    """Return ``text`` with every private link's token, and any code in a link, replaced."""
    return CODE_RE.sub(r"\1[private]", PRIVATE_RE.sub("/manage/[private]", text))


# A phone number as Twilio's error messages spell it ("The 'To' number +44 7700 900123 …").
NUMBER_RE = re.compile(r"\+?\d[\d ().-]{5,}\d")


def redact_numbers(text: str) -> str:
    """Return ``text`` (a provider's error message, for a log line) without phone numbers."""
    return NUMBER_RE.sub("[number]", text)


class RedactPrivateLinks(logging.Filter):
    """A logging filter that takes private links out of every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's business, not ours
            return True
        if "/manage/" in message or "code=" in message:
            record.msg, record.args = redact(message), None
        return True


# The loggers that can see a request's path or a text's body: access logs of every server
# phonein runs under, the app's, and the SMS and voice backends (console backend prints).
REDACTED_LOGGERS = (
    "gunicorn.access",
    "gunicorn.error",
    "waitress",
    "werkzeug",
    "phonein",
    "phonein.sms",
    "phonein.live",
    "phonein.codes",
    "phonein.worker",
    "phonein.database",
)


def redact_logs() -> None:
    """Attach the filter to every logger that could print a private link (idempotent)."""
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactPrivateLinks) for f in logger.filters):
            logger.addFilter(RedactPrivateLinks())
