"""Commanding calls: a small interface over Twilio Voice's REST API, with twilio, console
and memory implementations chosen by ``PHONEIN_VOICE_BACKEND``.

phonein never holds a call itself. It answers Twilio's webhooks with TwiML, and changes a
call already in progress with REST requests: place it (``calls.create``), send it to new
TwiML (``calls(sid).update``), hold or mute it in the on-air conference (Conference
Participants). ``PHONEIN_TWILIO_API_URL`` redirects these like every other Twilio request.

Without Twilio credentials the console backend logs what it would do: no call can reach
phonein then anyway. The memory backend keeps every request in a list, for tests.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from flask import Flask, current_app

from .. import twilio
from ..settings import choose

log = logging.getLogger("phonein.live")


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


@dataclass
class MemoryVoice:
    """Keep every request in ``requests``, in order: for tests."""

    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    limits: dict[str, int] = field(default_factory=dict)

    def _record(self, name: str, **details: Any) -> None:
        with self.lock:
            self.requests.append((name, details))

    def dial(self, to: str, from_: str, url: str, status_callback: str, *, detect: bool) -> str:
        sid = f"CA{uuid.uuid4().hex}"
        self._record("dial", to=to, from_=from_, url=url, sid=sid, detect=detect)
        return sid

    def find_call(self, to: str, since: datetime) -> str | None:
        with self.lock:
            for name, details in reversed(self.requests):
                if name == "dial" and details["to"] == to:
                    return str(details["sid"])
        return None

    def redirect(self, sid: str, url: str) -> None:
        self._record("redirect", sid=sid, url=url)

    def play(self, sid: str, twiml: str) -> None:
        self._record("play", sid=sid, twiml=twiml)

    def cancel(self, sid: str) -> None:
        self._record("cancel", sid=sid)

    def participant(self, conference_sid: str, sid: str, **flags: bool) -> None:
        self._record("participant", conference_sid=conference_sid, sid=sid, **flags)

    def conference_sid(self, name: str) -> str | None:
        return None

    def resize_queue(self, queue_sid: str, size: int) -> None:
        self._record("resize_queue", queue_sid=queue_sid, size=size)
        self.limits[queue_sid] = size

    def queue_limit(self, queue_sid: str) -> int:
        return self.limits.get(queue_sid, 100)


class TwilioVoice:
    """Command calls through Twilio's REST API with the official SDK."""

    def __init__(self, *, account_sid: str, auth_token: str, api_url: str | None):
        self.client = twilio.client(account_sid, auth_token, api_url)

    def dial(self, to: str, from_: str, url: str, status_callback: str, *, detect: bool) -> str:
        extra: dict[str, Any] = {"machine_detection": "Enable"} if detect else {}
        call = twilio.call(
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
        for call in twilio.call(self.client.calls.list, to=to, limit=20):
            created = call.date_created
            if created is not None and created >= since:
                return str(call.sid)
        return None

    def redirect(self, sid: str, url: str) -> None:
        twilio.call(self.client.calls(sid).update, url=url, method="POST")

    def play(self, sid: str, twiml: str) -> None:
        twilio.call(self.client.calls(sid).update, twiml=twiml)

    def cancel(self, sid: str) -> None:
        twilio.call(self.client.calls(sid).update, status="canceled")

    def participant(self, conference_sid: str, sid: str, **flags: bool) -> None:
        twilio.call(self.client.conferences(conference_sid).participants(sid).update, **flags)

    def conference_sid(self, name: str) -> str | None:
        found = twilio.call(
            self.client.conferences.list, friendly_name=name, status="in-progress", limit=1
        )
        return str(found[0].sid) if found else None

    def resize_queue(self, queue_sid: str, size: int) -> None:
        twilio.call(self.client.queues(queue_sid).update, max_size=size)

    def queue_limit(self, queue_sid: str) -> int:
        return int(twilio.call(self.client.queues(queue_sid).fetch).max_size or 0)


def init_app(app: Flask) -> None:
    """Pick the backend named by VOICE_BACKEND and keep it in app.extensions."""
    config = app.config

    def twilio_backend() -> VoiceBackend:
        return TwilioVoice(
            account_sid=config["TWILIO_ACCOUNT_SID"],
            auth_token=config["TWILIO_AUTH_TOKEN"],
            api_url=config.get("TWILIO_API_URL"),
        )

    makers = {"twilio": twilio_backend, "console": ConsoleVoice, "memory": MemoryVoice}
    app.extensions["phonein_voice"] = choose(app, "VOICE_BACKEND", makers)


def backend() -> VoiceBackend:
    """The current app's voice backend."""
    found: VoiceBackend = current_app.extensions["phonein_voice"]
    return found
