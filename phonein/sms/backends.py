"""SMS backends: a small interface with twilio, console and memory implementations.

``PHONEIN_SMS_BACKEND`` picks one (``twilio`` by default when credentials are set, else
``console``). The Twilio backend uses the official SDK through ``phonein.twilio``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from flask import Flask, current_app

from .. import twilio
from ..settings import choose

log = logging.getLogger("phonein.sms")


@dataclass
class SendResult:
    sid: str
    status: str  # the provider's status: queued, accepted, sent, ...


class SmsBackend(Protocol):
    def send(self, to: str, body: str) -> SendResult:
        """Hand one message to the provider; raise TwilioFailure when it is refused."""

    def find(self, to: str, body: str, since: datetime) -> SendResult | None:
        """Return the provider's message to ``to`` with ``body`` sent since ``since``, if any."""


class ConsoleBackend:
    """Print every message to the log: the default without Twilio credentials."""

    def send(self, to: str, body: str) -> SendResult:
        log.info("SMS to %s: %s", to, body)
        return SendResult(sid=f"CONSOLE{uuid.uuid4().hex}", status="sent")

    def find(self, to: str, body: str, since: datetime) -> SendResult | None:
        return None  # the log cannot be asked; a crash mid-send may print twice


@dataclass
class MemoryBackend:
    """Keep messages in a list: for tests."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, to: str, body: str) -> SendResult:
        with self.lock:
            sid = f"MEM{len(self.sent):06d}"
            self.sent.append({"sid": sid, "to": to, "body": body, "at": datetime.now(UTC)})
        return SendResult(sid=sid, status="sent")

    def find(self, to: str, body: str, since: datetime) -> SendResult | None:
        with self.lock:
            for item in self.sent:
                if item["to"] == to and item["body"] == body and item["at"] >= since:
                    return SendResult(sid=item["sid"], status="sent")
        return None


class TwilioBackend:
    """Send through Twilio's Messages API with the official SDK."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None,
        messaging_service_sid: str | None,
        status_callback: str | None,
        api_url: str | None,
    ):
        if not (from_number or messaging_service_sid):
            raise ValueError("set TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER")
        self.client = twilio.client(account_sid, auth_token, api_url)
        self.sender: dict[str, str] = (
            {"messaging_service_sid": messaging_service_sid}
            if messaging_service_sid
            else {"from_": from_number or ""}
        )
        self.status_callback = status_callback
        # The SDK builds its API classes on first use; doing it here keeps that cost out
        # of the first sends, which would otherwise run late against their rate slots.
        self.messages = self.client.messages

    def send(self, to: str, body: str) -> SendResult:
        extra: dict[str, Any] = dict(self.sender)
        if self.status_callback:
            extra["status_callback"] = self.status_callback
        message = twilio.call(self.messages.create, to=to, body=body, **extra)
        return SendResult(sid=message.sid or "", status=str(message.status or "queued"))

    def find(self, to: str, body: str, since: datetime) -> SendResult | None:
        # Newest first, filtered here by creation time: a message still queued at Twilio
        # has no DateSent yet, so a DateSent filter would miss exactly the ones in doubt.
        earliest = since - timedelta(minutes=1)
        for message in twilio.call(self.messages.list, to=to, limit=100):
            created = message.date_created
            if created is not None and created < earliest:
                break
            if message.body == body:
                return SendResult(sid=message.sid or "", status=str(message.status or "queued"))
        return None


def init_app(app: Flask) -> None:
    """Pick the backend named by SMS_BACKEND and keep it in app.extensions."""
    config = app.config

    def twilio_backend() -> SmsBackend:
        return TwilioBackend(
            account_sid=config["TWILIO_ACCOUNT_SID"],
            auth_token=config["TWILIO_AUTH_TOKEN"],
            from_number=config.get("TWILIO_FROM_NUMBER"),
            messaging_service_sid=config.get("TWILIO_MESSAGING_SERVICE_SID"),
            status_callback=f"{config['PUBLIC_URL']}/webhooks/twilio/status",
            api_url=config.get("TWILIO_API_URL"),
        )

    makers = {"twilio": twilio_backend, "console": ConsoleBackend, "memory": MemoryBackend}
    app.extensions["phonein_sms"] = choose(app, "SMS_BACKEND", makers)


def backend(app: Flask | None = None) -> SmsBackend:
    """The app's SMS backend (the current app's by default)."""
    found: SmsBackend = (app or current_app).extensions["phonein_sms"]
    return found
