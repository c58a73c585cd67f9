"""One-time codes to a number: a small interface with Verify, outbox, console and memory senders.

``PHONEIN_VERIFY_BACKEND`` picks one; left unset it is ``twilio`` (Twilio Verify, through the
SDK) when ``TWILIO_VERIFY_SERVICE_SID`` is set, else ``outbox`` with the Twilio SMS backend
(phonein makes the code and texts it as an ordinary message), else ``console`` (the code is
printed: the embedded default). ``memory`` keeps codes in a list for tests.

Twilio Verify makes, expires and counts tries of its codes itself (``makes_codes`` False):
phonein only asks it to send and to check. The other senders deliver a code phonein made;
``phonein.verification`` keeps its hash, expiry and tries.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from flask import Flask, current_app

from .. import twilio
from ..models import MessageKind
from ..settings import choose
from . import outbox
from .texts import code_text

log = logging.getLogger("phonein.codes")

# Twilio Verify's errors that phonein answers on (https://www.twilio.com/docs/api/errors).
INVALID_PARAMETER = 60200
MAX_SEND_ATTEMPTS = 60203
LANDLINE = 60205
BLOCKED = 60410
MAX_CHECK_ATTEMPTS = 60202


class CodeRefused(Exception):
    """The code could not be sent or checked; ``reason`` says why, in one word.

    ``invalid`` (the number or channel), ``landline`` (no SMS to that number), ``blocked``
    (the provider's fraud rules), ``too_many`` (sends or tries used up), ``gone`` (the
    provider forgot the verification: expired or already used), ``upstream`` (no answer).
    """

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail


class CodeSender(Protocol):
    makes_codes: bool  # False: the provider makes and checks the codes (Twilio Verify)
    # True: ``send`` reaches the outside world (a provider, a log), so it runs only once the
    # request's transaction has committed. False: it writes an outbox row, which commits
    # (or rolls back) with the request and leaves afterwards anyway.
    outside: bool

    def send(
        self,
        to: str,
        channel: str,
        code: str | None,
        key: str,
        now: datetime,
        language: str | None = None,
    ) -> str | None:
        """Send ``code`` (None: the provider's own) to ``to`` by ``channel`` in ``language``;
        return an id."""

    def check(self, to: str, code: str) -> str | None:
        """Ask the provider whether ``code`` is the one it sent to ``to`` (Verify only).

        Return None for a wrong code; for a right one, the provider's id of the verification
        it approved ("" when it gives none)."""


def text(code: str, language: str | None = None) -> str:
    """Return the text carrying a code phonein made, in ``language`` (None: the station's)."""
    return code_text(code, language)


class ConsoleSender:
    """Print each code to the log: the embedded default without Twilio."""

    makes_codes = True
    outside = True

    def send(
        self,
        to: str,
        channel: str,
        code: str | None,
        key: str,
        now: datetime,
        language: str | None = None,
    ) -> str | None:
        log.warning("Code for %s by %s: %s", to, channel, code)
        return None

    def check(self, to: str, code: str) -> str | None:
        raise NotImplementedError("phonein checks the codes it made")


@dataclass
class MemorySender:
    """Keep every code in a list: for tests."""

    makes_codes: bool = True
    outside: bool = True
    sent: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(
        self,
        to: str,
        channel: str,
        code: str | None,
        key: str,
        now: datetime,
        language: str | None = None,
    ) -> str | None:
        with self.lock:
            self.sent.append({"to": to, "channel": channel, "code": code, "key": key})
        return None

    def check(self, to: str, code: str) -> str | None:
        raise NotImplementedError("phonein checks the codes it made")

    def last_code(self, to: str) -> str | None:
        with self.lock:
            codes = [item["code"] for item in self.sent if item["to"] == to]
        return codes[-1] if codes else None


class OutboxSender:
    """Text the code as an ordinary message through the outbox (no Verify service).

    The fallback: the row is written with the verification, in its transaction, keyed by
    the verification and the send, and leaves only once that commits. Voice codes need
    Twilio Verify.
    """

    makes_codes = True
    outside = False

    def send(
        self,
        to: str,
        channel: str,
        code: str | None,
        key: str,
        now: datetime,
        language: str | None = None,
    ) -> str | None:
        if channel != "sms" or code is None:
            raise CodeRefused(
                "invalid", "We can only text codes here: please give a mobile number."
            )
        enqueue(to, text(code, language), key, now)
        return None

    def check(self, to: str, code: str) -> str | None:
        raise NotImplementedError("phonein checks the codes it made")


def enqueue(
    to: str,
    body: str,
    key: str,
    now: datetime,
    *,
    forum_id: int | None = None,
    signup_id: int | None = None,
) -> bool:
    """Write one ``code`` text to ``to`` unless its key exists or the number opted out."""
    return outbox.enqueue(
        to, MessageKind.CODE, key, body, now, forum_id=forum_id, signup_id=signup_id
    )


class VerifySender:
    """Twilio Verify through the official SDK: Twilio makes, sends, expires and checks codes."""

    makes_codes = False
    outside = True

    def __init__(self, *, account_sid: str, auth_token: str, service_sid: str, api_url: str | None):
        self.service = twilio.client(account_sid, auth_token, api_url).verify.v2.services(
            service_sid
        )

    def send(
        self,
        to: str,
        channel: str,
        code: str | None,
        key: str,
        now: datetime,
        language: str | None = None,
    ) -> str | None:
        try:
            # Verify speaks and texts its own code in the listener's language (``locale``).
            found = twilio.call(
                self.service.verifications.create,
                to=to,
                channel=channel,
                locale=(language or "en").split("-")[0],
            )
        except twilio.TwilioFailure as error:
            raise _refused(error) from error
        return str(found.sid or "") or None

    def check(self, to: str, code: str) -> str | None:
        try:
            found = twilio.call(self.service.verification_checks.create, to=to, code=code)
        except twilio.TwilioFailure as error:
            raise _refused(error) from error
        if found.status != "approved":
            return None
        # The check names the verification it approved (Verify's VE… SID), which the proof
        # records: no write of its own after the send.
        return str(found.sid or "")


def _refused(error: twilio.TwilioFailure) -> CodeRefused:
    reasons = {
        INVALID_PARAMETER: "invalid",
        LANDLINE: "landline",
        BLOCKED: "blocked",
        MAX_SEND_ATTEMPTS: "too_many",
        MAX_CHECK_ATTEMPTS: "too_many",
    }
    if error.code in reasons:
        return CodeRefused(reasons[error.code], error.message)
    if error.gone:
        return CodeRefused("gone", error.message)
    if error.status == 429:
        return CodeRefused("too_many", error.message)
    return CodeRefused("upstream", error.message)


def init_app(app: Flask) -> None:
    """Pick the code sender (VERIFY_BACKEND, derived when unset) into app.extensions."""
    config = app.config
    if not config.get("VERIFY_BACKEND"):
        if config.get("TWILIO_VERIFY_SERVICE_SID"):
            config["VERIFY_BACKEND"] = "twilio"
        elif config["SMS_BACKEND"] == "twilio":
            config["VERIFY_BACKEND"] = "outbox"
        else:
            config["VERIFY_BACKEND"] = "console"

    def verify_sender() -> CodeSender:
        return VerifySender(
            account_sid=config["TWILIO_ACCOUNT_SID"],
            auth_token=config["TWILIO_AUTH_TOKEN"],
            service_sid=config["TWILIO_VERIFY_SERVICE_SID"],
            api_url=config.get("TWILIO_API_URL"),
        )

    makers = {
        "twilio": verify_sender,
        "outbox": OutboxSender,
        "console": ConsoleSender,
        "memory": MemorySender,
    }
    app.extensions["phonein_codes"] = choose(app, "VERIFY_BACKEND", makers)


def sender(app: Flask | None = None) -> CodeSender:
    """The app's code sender (the current app's by default)."""
    found: CodeSender = (app or current_app).extensions["phonein_codes"]
    return found
