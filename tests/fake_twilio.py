"""A fake Twilio REST API on loopback, for the tests and benchmarks.

It implements what phonein calls (Messages: create, list, fetch) closely enough for the
official SDK, can inject faults (429, 500, latency, permanent errors per number), keeps a
log of every message it accepted, and can post signed status callbacks.

    with FakeTwilio() as fake:
        app = create_app({"TWILIO_API_URL": fake.url, ...})
        ...
        fake.sent_to("+447400123456")
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "f" * 32
AUTH_TOKEN = "fake-auth-token"
MESSAGES = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Messages(?:/(?P<sid>SM\w+))?\.json$"
)


@dataclass
class Faults:
    """What to do to requests: a share of transient errors, latency, permanent errors."""

    transient_rate: float = 0.0  # share of creates answered 429 or 500
    latency: float = 0.0  # seconds added to every create
    permanent: dict[str, int] = field(default_factory=dict)  # number -> Twilio error code
    seed: int = 1


class FakeTwilio:
    def __init__(self, *, faults: Faults | None = None, callbacks: bool = False):
        self.faults = faults or Faults()
        self.callbacks = callbacks
        self.messages: list[dict[str, Any]] = []
        self.attempts = 0
        self.rejected: list[tuple[int, str]] = []
        self.lock = threading.Lock()
        self.rng = random.Random(self.faults.seed)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> FakeTwilio:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # What tests read.

    def sent_to(self, to: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.messages if m["to"] == to]

    def bodies(self) -> list[str]:
        with self.lock:
            return [m["body"] for m in self.messages]

    def created_times(self) -> list[float]:
        with self.lock:
            return [m["_created"] for m in self.messages]

    # The HTTP side.

    def _create(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        # Stamped on arrival, as Twilio counts a request: the injected latency (and any
        # stall of this process while it sleeps) must not shift the rate measurement.
        arrived, arrived_wall = time.monotonic(), time.time()
        with self.lock:
            self.attempts += 1
            roll = self.rng.random()
        if self.faults.latency:
            time.sleep(self.faults.latency)
        to = form.get("To", "")
        if not to or not form.get("Body"):
            return 400, {"code": 21602, "message": "Message body is required.", "status": 400}
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return 400, {
                "code": 21603,
                "message": "A 'From' phone number is required.",
                "status": 400,
            }
        if to in self.faults.permanent:
            code = self.faults.permanent[to]
            with self.lock:
                self.rejected.append((code, to))
            return 400, {"code": code, "message": f"Error {code} for {to}", "status": 400}
        if roll < self.faults.transient_rate:
            status = 429 if roll < self.faults.transient_rate / 2 else 500
            with self.lock:
                self.rejected.append((status, to))
            return status, {
                "code": 20429 if status == 429 else 20500,
                "message": "Too Many Requests" if status == 429 else "Internal",
                "status": status,
            }
        now = datetime.now(UTC)
        message = {
            "sid": "SM" + uuid.uuid4().hex,
            "account_sid": ACCOUNT_SID,
            "to": to,
            "from": form.get("From") or "+15005550006",
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form["Body"],
            "status": "queued",
            "direction": "outbound-api",
            "num_segments": "1",
            "date_created": format_datetime(now),
            "date_updated": format_datetime(now),
            "date_sent": format_datetime(now),
            "error_code": None,
            "error_message": None,
            "uri": "",
            "_created": arrived,
            "_arrived_wall": arrived_wall,
            "_date": now,
            "_callback": form.get("StatusCallback"),
        }
        with self.lock:
            self.messages.append(message)
        if self.callbacks and message["_callback"]:
            threading.Thread(target=self._callback, args=(message,), daemon=True).start()
        return 201, self._public(message)

    def _callback(self, message: dict[str, Any]) -> None:
        for status in ("sent", "delivered"):
            params = {
                "MessageSid": message["sid"],
                "MessageStatus": status,
                "AccountSid": ACCOUNT_SID,
                "To": message["to"],
            }
            signature = RequestValidator(AUTH_TOKEN).compute_signature(message["_callback"], params)
            try:
                requests.post(
                    message["_callback"],
                    data=params,
                    timeout=5,
                    headers={"X-Twilio-Signature": signature},
                )
            except requests.RequestException:
                return

    @staticmethod
    def _public(message: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in message.items() if not k.startswith("_")}

    def _list(self, query: dict[str, list[str]]) -> dict[str, Any]:
        to = query.get("To", [None])[0]
        after = query.get("DateSent>", [None])[0]
        since = (
            datetime.strptime(after, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if after else None
        )
        with self.lock:
            found = [
                self._public(m)
                for m in self.messages
                if (to is None or m["to"] == to) and (since is None or m["_date"] >= since)
            ]
        return {
            "messages": found,
            "next_page_uri": None,
            "uri": "",
            "page": 0,
            "page_size": len(found),
            "first_page_uri": "",
            "previous_page_uri": None,
            "start": 0,
            "end": len(found),
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self) -> re.Match[str] | None:
                import base64

                header = self.headers.get("Authorization", "")
                expected = (
                    "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
                )
                if header != expected:
                    self._reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
                    return None
                match = MESSAGES.match(urlsplit(self.path).path)
                if match is None:
                    self._reply(404, {"code": 20404, "message": "Not found", "status": 404})
                return match

            def do_POST(self) -> None:
                if (match := self._route()) is None:
                    return
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if match["sid"]:
                    self._reply(405, {"code": 20004, "message": "Method not allowed"})
                    return
                self._reply(*fake._create(form))

            def do_GET(self) -> None:
                if (match := self._route()) is None:
                    return
                if match["sid"]:
                    with fake.lock:
                        found = [m for m in fake.messages if m["sid"] == match["sid"]]
                    if found:
                        self._reply(200, fake._public(found[0]))
                    else:
                        self._reply(404, {"code": 20404, "message": "Not found", "status": 404})
                    return
                self._reply(200, fake._list(parse_qs(urlsplit(self.path).query)))

        return Handler


def settings(fake: FakeTwilio, **extra: Any) -> dict[str, Any]:
    """App settings that point phonein's Twilio backend at ``fake``."""
    config = {
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_API_URL": fake.url,
    }
    config.update(extra)
    return config


def signed(url: str, params: dict[str, str]) -> dict[str, str]:
    """Return the X-Twilio-Signature header Twilio would send for ``params`` to ``url``."""
    return {"X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, params)}


__all__ = ["ACCOUNT_SID", "AUTH_TOKEN", "FakeTwilio", "Faults", "settings", "signed", "urlencode"]
