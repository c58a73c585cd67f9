"""Commanding calls: a small interface over Twilio Voice's REST API, and a console stand-in.

phonein never holds a call itself. It answers Twilio's webhooks with TwiML, and changes a
call already in progress with REST requests: place it (``calls.create``), send it to new
TwiML (``calls(sid).update``), hold or mute it in the on-air conference (Conference
Participants). ``PHONEIN_TWILIO_API_URL`` redirects these like every other Twilio request.

Without Twilio credentials the console backend logs what it would do: no call can reach
phonein then anyway.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any, Protocol

import requests
from flask import Flask, current_app

from .sms import redirecting_http_client

log = logging.getLogger("phonein.telephony")

# Twilio errors that mean the call is no longer there to command.
NOT_IN_PROGRESS = 21220
NOT_FOUND = 20404


class VoiceError(Exception):
    """A REST request about a call failed.

    ``retryable``: trying again later can help (429, 5xx, no answer). ``gone``: the call
    has ended (or never existed), so the request no longer applies.
    """

    def __init__(
        self, message: str, *, code: int | None = None, retryable: bool = False, gone: bool = False
    ):
        super().__init__(message)
        self.code = code
        self.retryable = retryable
        self.gone = gone


class VoiceBackend(Protocol):
    def dial(self, to: str, from_: str, url: str, status_callback: str, *, detect: bool) -> str:
        """Place a call that fetches its TwiML from ``url``; return its CallSid.

        ``detect``: ask Twilio to tell a person from an answering machine (``AnsweredBy``).
        """

    def find_call(self, to: str, since: datetime) -> str | None:
        """Return the SID of a call phonein placed to ``to`` since ``since``, if any."""

    def redirect(self, sid: str, url: str) -> None:
        """Send a call in progress to the TwiML at ``url`` (out of a queue or conference)."""

    def play(self, sid: str, twiml: str) -> None:
        """Replace what a call in progress is doing with ``twiml``."""

    def cancel(self, sid: str) -> None:
        """Stop a call that has not been answered yet."""

    def participant(self, conference_sid: str, sid: str, **flags: bool) -> None:
        """Set ``hold`` and/or ``muted`` on a participant of the on-air conference."""

    def conference_sid(self, name: str) -> str | None:
        """Return the SID of the conference called ``name`` in progress, if any."""

    def resize_queue(self, queue_sid: str, size: int) -> None:
        """Let the hold queue take ``size`` callers (Twilio creates it for 100)."""

    def queue_limit(self, queue_sid: str) -> int:
        """Return how many callers the hold queue takes now."""


class ConsoleVoice:
    """Log every request: the stand-in when Twilio is not configured."""

    def dial(self, to: str, from_: str, url: str, status_callback: str, *, detect: bool) -> str:
        sid = f"CONSOLE{uuid.uuid4().hex}"
        log.info("voice: would dial %s from %s (TwiML %s) as %s", to, from_, url, sid)
        return sid

    def find_call(self, to: str, since: datetime) -> str | None:
        return None  # the log cannot be asked

    def redirect(self, sid: str, url: str) -> None:
        log.info("voice: would send call %s to %s", sid, url)

    def play(self, sid: str, twiml: str) -> None:
        log.info("voice: would play to call %s: %s", sid, twiml)

    def cancel(self, sid: str) -> None:
        log.info("voice: would cancel call %s", sid)

    def participant(self, conference_sid: str, sid: str, **flags: bool) -> None:
        log.info("voice: would set %s on call %s in %s", flags, sid, conference_sid)

    def conference_sid(self, name: str) -> str | None:
        return None

    def resize_queue(self, queue_sid: str, size: int) -> None:
        log.info("voice: would let queue %s hold %d callers", queue_sid, size)

    def queue_limit(self, queue_sid: str) -> int:
        return 100


class TwilioVoice:
    """Command calls through Twilio's REST API with the official SDK."""

    def __init__(self, *, account_sid: str, auth_token: str, api_url: str | None):
        from twilio.rest import Client

        self.client = Client(account_sid, auth_token, http_client=redirecting_http_client(api_url))

    def _do(self, action: Any, *args: Any, **kwargs: Any) -> Any:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        try:
            return action(*args, **kwargs)
        except TwilioRestException as error:
            gone = error.code in (NOT_IN_PROGRESS, NOT_FOUND) or error.status == 404
            raise VoiceError(
                str(error.msg),
                code=error.code,
                retryable=error.status == 429 or error.status >= 500,
                gone=gone,
            ) from error
        except (requests.RequestException, TwilioException) as error:
            raise VoiceError(f"no answer from Twilio: {error}", retryable=True) from error

    def dial(self, to: str, from_: str, url: str, status_callback: str, *, detect: bool) -> str:
        extra: dict[str, Any] = {"machine_detection": "Enable"} if detect else {}
        call = self._do(
            self.client.calls.create,
            to=to,
            from_=from_,
            url=url,
            method="POST",
            status_callback=status_callback,
            status_callback_method="POST",
            status_callback_event=["initiated", "ringing", "answered", "completed"],
            **extra,
        )
        return str(call.sid)

    def find_call(self, to: str, since: datetime) -> str | None:
        # Newest first; a call still ringing has no start time, so filter on creation.
        for call in self._do(self.client.calls.list, to=to, limit=20):
            created = call.date_created
            if created is not None and created >= since:
                return str(call.sid)
        return None

    def redirect(self, sid: str, url: str) -> None:
        self._do(self.client.calls(sid).update, url=url, method="POST")

    def play(self, sid: str, twiml: str) -> None:
        self._do(self.client.calls(sid).update, twiml=twiml)

    def cancel(self, sid: str) -> None:
        self._do(self.client.calls(sid).update, status="canceled")

    def participant(self, conference_sid: str, sid: str, **flags: bool) -> None:
        self._do(self.client.conferences(conference_sid).participants(sid).update, **flags)

    def conference_sid(self, name: str) -> str | None:
        found = self._do(
            self.client.conferences.list, friendly_name=name, status="in-progress", limit=1
        )
        return str(found[0].sid) if found else None

    def resize_queue(self, queue_sid: str, size: int) -> None:
        self._do(self.client.queues(queue_sid).update, max_size=size)

    def queue_limit(self, queue_sid: str) -> int:
        return int(self._do(self.client.queues(queue_sid).fetch).max_size or 0)


def init_app(app: Flask) -> None:
    config = app.config
    backend: VoiceBackend
    if config.get("TWILIO_ACCOUNT_SID") and config.get("TWILIO_AUTH_TOKEN"):
        backend = TwilioVoice(
            account_sid=config["TWILIO_ACCOUNT_SID"],
            auth_token=config["TWILIO_AUTH_TOKEN"],
            api_url=config.get("TWILIO_API_URL"),
        )
    else:
        backend = ConsoleVoice()
    app.extensions["phonein_voice"] = backend


def backend() -> VoiceBackend:
    """The current app's voice backend."""
    return current_app.extensions["phonein_voice"]  # type: ignore[no-any-return]
