"""A fake Twilio REST API and phone network on loopback, for the tests and benchmarks.

Messages: it implements what phonein calls (create, list, fetch) closely enough for the
official SDK, can inject faults (429, 500, latency, permanent errors per number), keeps a
log of every message it accepted, and can post signed status callbacks.

Voice: Calls, Queues (members) and Conferences (participants) answer the SDK as Twilio does,
and the fake runs TwiML the way the phone network would: it fetches the app's webhooks, hears
<Say>, holds callers in <Enqueue> queues, joins them to <Dial><Conference> rooms and posts
status, queue-action and conference-event callbacks. That work runs in order on one worker
thread, never inside the REST request that caused it, so tests call ``settle()`` first.

    with FakeTwilio() as fake:
        app = create_app({"TWILIO_API_URL": fake.url, ...})
        ...
        fake.sent_to("+447400123456")

        fake.route_to(app)
        sid = fake.incoming_call("+447400123456", voice_url="http://phonein.test/voice")
        fake.settle()
        assert fake.queue_members("show") == [sid]
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import re
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from queue import SimpleQueue
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "f" * 32
AUTH_TOKEN = "fake-auth-token"
MESSAGES = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Messages(?:/(?P<sid>SM\w+))?\.json$"
)
VOICE = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>AC\w+)"
    r"/(?P<rest>(?:Calls|Queues|Conferences)(?:/\w+){0,3})\.json$"
)
# Twilio Verify (verify.twilio.com, sent to the fake by PHONEIN_TWILIO_API_URL).
VERIFY = re.compile(r"^/v2/Services/(?P<service>VA\w+)/(?P<what>Verifications|VerificationCheck)$")
VERIFY_SERVICE_SID = "VA" + "e" * 32
# Verify's limits: sends of one pending verification, and checks of its code.
VERIFY_MAX_SENDS = 5
VERIFY_MAX_CHECKS = 5
# Verify's errors a test can inject per number (Faults.verify_errors) and their HTTP status.
VERIFY_ERRORS = {
    60200: (400, "Invalid parameter"),
    60203: (429, "Max send attempts reached"),
    60205: (400, "SMS is not supported by landline phone number"),
    60410: (403, "Verification delivery attempt blocked"),
}
BASE = f"/2010-04-01/Accounts/{ACCOUNT_SID}"
LIVE = ("queued", "ringing", "in-progress")  # a call in any other status has ended

Work = Callable[[], None]  # one step of voice work, run on the worker thread
Webhook = Callable[[str, dict[str, str]], tuple[int, str]]  # (url, params) -> (status, body)


@dataclass
class Faults:
    """What to do to requests: a share of transient errors, latency, permanent errors."""

    transient_rate: float = 0.0  # share of creates answered 429 or 500
    latency: float = 0.0  # seconds added to every create
    permanent: dict[str, int] = field(default_factory=dict)  # number -> Twilio error code
    seed: int = 1
    # Voice REST requests whose path contains a key are answered with that HTTP status, at
    # most voice_error_limit times in all (None: every time), so a test can prove a retry.
    voice_errors: dict[str, int] = field(default_factory=dict)
    voice_error_limit: int | None = None
    # Verify: number -> a Verify error code (60200, 60203, 60205, 60410) for every send.
    verify_errors: dict[str, int] = field(default_factory=dict)
    # Verify: the code every verification gets (None: a random one). For load benchmarks,
    # whose client stands in for listeners it cannot give phones to read.
    verify_code: str | None = None


class FakeTwilio:
    def __init__(
        self,
        *,
        faults: Faults | None = None,
        callbacks: bool = False,
        webhook: Webhook | None = None,
    ):
        self.faults = faults or Faults()
        self.callbacks = callbacks
        self.messages: list[dict[str, Any]] = []
        self.attempts = 0
        self.rejected: list[tuple[int, str]] = []
        # Reentrant: the voice state helpers call each other with the lock held.
        self.lock = threading.RLock()
        self.rng = random.Random(self.faults.seed)
        # Voice. `webhook` posts to the app; route_to(app) swaps in Flask's test client.
        self.webhook: Webhook = webhook or _http_webhook
        self.requests: list[dict[str, Any]] = []  # every REST request, in arrival order
        self.webhook_log: list[tuple[str, dict[str, str], int]] = []
        self.errors: list[BaseException] = []  # raised by webhooks; settle() reports them
        self.calls: dict[str, dict[str, Any]] = {}
        self.queues: dict[str, dict[str, Any]] = {}  # friendly name -> queue
        self.conferences: list[dict[str, Any]] = []  # a name is reused once one has ended
        # number -> busy | no-answer | failed | ringing | machine (voicemail picks up)
        self.answer_mode: dict[str, str] = {}
        # Verify: (service, number) -> its pending verification; every code sent, in order.
        self.verifications: dict[tuple[str, str], dict[str, Any]] = {}
        self.codes_sent: list[dict[str, Any]] = []
        self._work: SimpleQueue[list[Work] | None] = SimpleQueue()
        self._pending = 0
        self._idle = threading.Condition()
        self._closing = False
        self._sequence = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        # A short poll makes shutdown() quick: every test stops a server.
        serve = partial(self.server.serve_forever, poll_interval=0.05)
        self.thread = threading.Thread(target=serve, daemon=True)
        self.worker = threading.Thread(target=self._drain, daemon=True, name="fake-twilio-voice")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> FakeTwilio:
        self.thread.start()
        self.worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # Work still queued would post to an app the test has already torn down: drop it.
        self._closing = True
        self._work.put(None)
        self.worker.join(timeout=5)
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

    def rest(self, method: str | None = None, path_contains: str | None = None) -> list[dict]:
        """The REST requests received, filtered, so a test can assert what the app called."""
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r["method"] == method.upper())
                and (path_contains is None or path_contains in r["path"])
            ]

    def call(self, sid: str) -> dict[str, Any]:
        """A snapshot of one call's public fields (see incoming_call for what they mean)."""
        with self.lock:
            return {
                k: list(v) if isinstance(v, list) else v
                for k, v in self.calls[sid].items()
                if not k.startswith("_")
            }

    def calls_to(self, number: str) -> list[dict[str, Any]]:
        with self.lock:
            return [self.call(sid) for sid, c in self.calls.items() if c["to"] == number]

    def queue_members(self, name: str) -> list[str]:
        """Call sids waiting in queue ``name``, front first."""
        with self.lock:
            line = self.queues.get(name)
            return list(line["members"]) if line else []

    def conference_participants(self, name: str) -> list[str]:
        """Call sids in the conference ``name`` now in progress, in joining order."""
        with self.lock:
            conference = self._live_conference(name)
            return list(conference["participants"]) if conference else []

    def verify_code(self, to: str) -> str | None:
        """The code Verify last sent to ``to`` (what the listener reads on their phone)."""
        with self.lock:
            codes = [c["code"] for c in self.codes_sent if c["to"] == to]
            return codes[-1] if codes else None

    # What tests do to the phone network.

    def route_to(self, app: Any) -> None:
        """Deliver webhooks through ``app``'s test client instead of over HTTP."""

        def webhook(url: str, params: dict[str, str]) -> tuple[int, str]:
            parts = urlsplit(url)
            response = app.test_client().post(
                parts.path + (f"?{parts.query}" if parts.query else ""),
                base_url=f"{parts.scheme}://{parts.netloc}",
                data=params,
                headers=signed(url, params),
            )
            return response.status_code, response.get_data(as_text=True)

        self.webhook = webhook

    def settle(self, timeout: float = 5.0) -> None:
        """Wait until all voice work queued so far (and what it queued) has run.

        Raises AssertionError on timeout, or if a webhook raised meanwhile: an exception
        in the app's webhook is a bug the test should see, not an "application error".
        """
        with self._idle:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout):
                raise AssertionError(f"voice work still running after {timeout}s")
        with self.lock:
            errors, self.errors = self.errors, []
        if errors:
            raise AssertionError(f"webhooks raised: {errors!r}") from errors[0]

    def incoming_call(
        self,
        from_: str,
        to: str = "+15005550006",
        *,
        voice_url: str,
        status_callback: str | None = None,
    ) -> str:
        """A listener dials ``to``: Twilio fetches ``voice_url`` and runs its TwiML.

        ``status_callback`` is the number's configured status callback, told "completed"
        when the call ends. A call's public fields: sid, direction, from, to, status,
        status_callback(_events), transcript (every <Say> heard), queue and conference
        (names, or None), muted, hold, and history (what happened to it, in order).
        """
        with self.lock:
            call = self._new_call("inbound", from_, to, "in-progress", status_callback, None)
            work = partial(self._run, call["sid"], 0, voice_url, None, {"CallStatus": "ringing"})
            self._defer([work])
            return call["sid"]

    def answer(self, sid: str) -> None:
        """The callee picks up an outbound call left ringing by answer_mode "ringing"."""
        with self.lock:
            call = self.calls[sid]
            if call["status"] == "ringing":
                self._defer(self._pick_up(call))

    def hangup(self, sid: str) -> None:
        """The far end hangs up (a ringing callee declining shows as busy, as on Twilio)."""
        with self.lock:
            call = self.calls[sid]
            if call["status"] in LIVE:
                call["history"].append(("hangup",))
            ended = "completed" if call["status"] == "in-progress" else "busy"
            self._defer(self._end(call, ended))

    def hold_loop(self, sid: str) -> None:
        """Fetch a queued call's waitUrl again, as Twilio does when its hold TwiML ends."""
        with self.lock:
            self._defer([partial(self._hold_music, sid, self.calls[sid]["_gen"])])

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

    # Voice: the worker. Handlers change state at once and queue the webhooks it causes.

    def _defer(self, work: list[Work]) -> None:
        if not work:
            return
        with self._idle:
            self._pending += 1
        self._work.put(work)

    def _drain(self) -> None:
        while (work := self._work.get()) is not None:
            try:
                for step in work:
                    if not self._closing:
                        step()
            except Exception as error:  # a bug in the fake: report it, keep the network up
                with self.lock:
                    self.errors.append(error)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _post(self, url: str, params: dict[str, str]) -> tuple[int, str]:
        try:
            status, body = self.webhook(url, params)
        except Exception as error:
            with self.lock:
                self.errors.append(error)
            status, body = 0, ""
        with self.lock:
            self.webhook_log.append((url, dict(params), status))
        return status, body

    @staticmethod
    def _parse(twiml: str) -> ET.Element | None:
        try:
            root = ET.fromstring(twiml)
        except (ET.ParseError, ValueError):
            return None
        return root if root.tag == "Response" else None

    def _fetch(self, url: str, params: dict[str, str]) -> ET.Element | None:
        """Post to a TwiML webhook; None is what Twilio calls an application error."""
        status, body = self._post(url, params)
        return self._parse(body) if status == 200 else None

    def _run(
        self,
        sid: str,
        gen: int,
        url: str | None,
        twiml: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        """Fetch (or take) a call's TwiML and execute it, unless it moved on meanwhile."""
        with self.lock:
            call = self.calls[sid]
            if call["_gen"] != gen or call["status"] != "in-progress":
                return
            params = self._voice_params(call) | (extra or {})
        root = self._parse(twiml) if twiml is not None else self._fetch(url or "", params)
        if root is not None:
            self._execute(sid, gen, list(root), url or "")
            return
        with self.lock:
            if call["_gen"] != gen:
                return
            call["transcript"].append("application error")
            work = self._end(call, "failed", "error")
        self._run_all(work)

    def _execute(self, sid: str, gen: int, verbs: list[ET.Element], base: str) -> None:
        for index, verb in enumerate(verbs):
            with self.lock:
                call = self.calls[sid]
                if call["_gen"] != gen or call["status"] != "in-progress":
                    return
                if verb.tag == "Say":
                    call["transcript"].append("".join(verb.itertext()).strip())
                    continue
                if verb.tag == "Hangup":
                    call["history"].append(("hangup",))
                    work = self._end(call, "completed")
                elif verb.tag == "Redirect":
                    target = urljoin(base, (verb.text or "").strip())
                    call["history"].append(("redirect", target))
                    work = [partial(self._run, sid, gen, target)]
                elif verb.tag == "Enqueue":
                    work = self._enqueue(call, verb, base)
                elif verb.tag == "Dial" and verb.find("Conference") is not None:
                    work = self._join(call, verb, verbs[index + 1 :], base)
                else:
                    continue  # <Pause>, and what the fake does not simulate
            self._run_all(work)
            return
        with self.lock:  # the end of the document: Twilio hangs up
            call = self.calls[sid]
            work = self._end(call, "completed") if call["_gen"] == gen else []
        self._run_all(work)

    @staticmethod
    def _run_all(work: list[Work]) -> None:
        for step in work:
            step()

    # Voice: state. These run with self.lock held and return the webhooks to post.

    def _new_call(
        self,
        direction: str,
        from_: str,
        to: str,
        status: str,
        callback: str | None,
        events: list[str] | None,
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        call: dict[str, Any] = {
            "sid": "CA" + uuid.uuid4().hex,
            "direction": direction,
            "from": from_,
            "to": to,
            "status": status,
            "status_callback": callback,
            "status_callback_events": events or ["completed"],
            "transcript": [],
            "queue": None,
            "conference": None,
            "muted": False,
            "hold": False,
            "history": [],
            "_created": now,
            "_started": now if status == "in-progress" else None,
            "_ended": None,
            "_gen": 0,  # bumped whenever the TwiML it was running stops counting
            "_url": None,
            "_twiml": None,
            "_enqueue": {},
            "_dial": {},
            "_after": [],  # the verbs after its <Dial>, run when it leaves the conference
            "_base": "",
        }
        self.calls[call["sid"]] = call
        return call

    def _voice_params(self, call: dict[str, Any]) -> dict[str, str]:
        return {
            "CallSid": call["sid"],
            "AccountSid": ACCOUNT_SID,
            "From": call["from"],
            "To": call["to"],
            "Caller": call["from"],
            "Called": call["to"],
            "CallStatus": call["status"],
            "Direction": call["direction"],
            "ApiVersion": "2010-04-01",
        }

    @staticmethod
    def _duration(call: dict[str, Any]) -> int:
        if call["_started"] is None:
            return 0
        return int(((call["_ended"] or datetime.now(UTC)) - call["_started"]).total_seconds())

    def _status_event(self, call: dict[str, Any], event: str) -> list[Work]:
        url = call["status_callback"]
        if not url or event not in call["status_callback_events"]:
            return []
        params = self._voice_params(call) | {
            "CallStatus": {"initiated": "initiated", "ringing": "ringing"}.get(
                event, call["status"]
            ),
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(next(self._sequence)),
            "Timestamp": format_datetime(datetime.now(UTC)),
        }
        if event == "completed":
            params["CallDuration"] = str(self._duration(call))
        return [partial(self._post, url, params)]

    def _pick_up(self, call: dict[str, Any]) -> list[Work]:
        call["status"], call["_started"] = "in-progress", datetime.now(UTC)
        call["history"].append(("answered",))
        extra = None
        if call.get("_amd"):
            machine = self.answer_mode.get(call["to"]) == "machine"
            extra = {"AnsweredBy": "machine_start" if machine else "human"}
        run = partial(self._run, call["sid"], call["_gen"], call["_url"], call["_twiml"], extra)
        return [*self._status_event(call, "answered"), run]

    def _dial_out(self, sid: str, gen: int) -> None:
        """Ring an outbound call, then answer it as answer_mode says for its number."""
        for step in ("initiated", "ringing", "answer"):
            with self.lock:
                call = self.calls[sid]
                if call["_gen"] != gen or call["status"] not in ("queued", "ringing"):
                    return
                if step == "ringing":
                    call["status"] = "ringing"
                if step != "answer":
                    work = self._status_event(call, step)
                elif (mode := self.answer_mode.get(call["to"], "answer")) == "ringing":
                    return
                elif mode in ("busy", "no-answer", "failed"):
                    work = self._end(call, mode)
                else:
                    work = self._pick_up(call)
            self._run_all(work)

    def _end(self, call: dict[str, Any], status: str, queue_result: str = "hangup") -> list[Work]:
        if call["status"] not in LIVE:
            return []
        call["status"], call["_ended"] = status, datetime.now(UTC)
        call["_gen"] += 1
        work = self._leave_queue(call, queue_result) + self._leave_conference(call, resume=False)
        call["history"].append(("end", status))
        return work + self._status_event(call, "completed")

    def _redirect(self, call: dict[str, Any], url: str | None, twiml: str | None) -> list[Work]:
        work = self._leave_queue(call, "redirected") + self._leave_conference(call, resume=False)
        call["_gen"] += 1
        call["history"].append(("redirect", url if url is not None else "twiml"))
        return [*work, partial(self._run, call["sid"], call["_gen"], url, twiml)]

    def _enqueue(self, call: dict[str, Any], verb: ET.Element, base: str) -> list[Work]:
        name = (verb.text or "").strip()
        line = self.queues.get(name) or self._new_queue(name)
        if len(line["members"]) >= line["max_size"]:
            # Twilio refuses the caller and runs the action's TwiML (QueueResult=queue-full).
            call["history"].append(("queue-full", name))
            action = _link(base, verb, "action")
            if not action:
                return self._end(call, "completed")
            params = self._voice_params(call) | {
                "QueueResult": "queue-full",
                "QueueSid": line["sid"],
                "QueueTime": "0",
            }
            return [partial(self._run, call["sid"], call["_gen"], action, None, params)]
        line["members"].append(call["sid"])
        call["queue"] = name
        call["_enqueue"] = {
            "at": datetime.now(UTC),
            "action": _link(base, verb, "action"),
            "wait_url": _link(base, verb, "waitUrl"),
        }
        call["history"].append(("enqueue", name))
        return [partial(self._hold_music, call["sid"], call["_gen"])]

    def _new_queue(self, name: str) -> dict[str, Any]:
        sid, now = "QU" + uuid.uuid4().hex, datetime.now(UTC)
        # Twilio's default for a queue <Enqueue> creates: 100 callers.
        line = {
            "sid": sid,
            "friendly_name": name,
            "members": [],
            "date_created": now,
            "max_size": 100,
        }
        self.queues[name] = line
        return line

    def _queue_params(self, call: dict[str, Any]) -> dict[str, str]:
        line = self.queues[call["queue"]]
        now = datetime.now(UTC)
        waits = [
            (now - self.calls[sid]["_enqueue"]["at"]).total_seconds() for sid in line["members"]
        ]
        return {
            "QueueSid": line["sid"],
            "QueuePosition": str(line["members"].index(call["sid"]) + 1),
            "QueueTime": str(int((now - call["_enqueue"]["at"]).total_seconds())),
            "AvgQueueTime": str(int(sum(waits) / len(waits))),
            "CurrentQueueSize": str(len(line["members"])),
            "MaxQueueSize": str(line["max_size"]),
        }

    def _hold_music(self, sid: str, gen: int) -> None:
        """Fetch a queued call's waitUrl once and hear its <Say>s; the call stays queued."""
        with self.lock:
            call = self.calls[sid]
            url = call["_enqueue"].get("wait_url")
            if call["_gen"] != gen or call["queue"] is None or not url:
                return
            params = self._voice_params(call) | self._queue_params(call)
        root = self._fetch(url, params)
        with self.lock:
            if call["_gen"] != gen or call["queue"] is None:
                return
            if root is not None:
                call["transcript"].extend("".join(s.itertext()).strip() for s in root.iter("Say"))
                return
            call["transcript"].append("application error")
            work = self._end(call, "failed", "error")
        self._run_all(work)

    def _leave_queue(self, call: dict[str, Any], result: str) -> list[Work]:
        if call["queue"] is None:
            return []
        line = self.queues[call["queue"]]
        params = self._voice_params(call) | self._queue_params(call)
        params = {k: v for k, v in params.items() if k not in ("QueuePosition", "AvgQueueTime")}
        line["members"].remove(call["sid"])
        call["history"].append(("dequeue", call["queue"], result))
        call["queue"] = None
        action = call["_enqueue"].get("action")
        if not action:
            return []
        # Twilio ignores the action's TwiML for a redirected or hung-up caller, and so do we.
        return [partial(self._post, action, params | {"QueueResult": result})]

    def _live_conference(self, name: str) -> dict[str, Any] | None:
        for conference in self.conferences:
            if conference["friendly_name"] == name and conference["status"] != "completed":
                return conference
        return None

    def _join(
        self, call: dict[str, Any], dial: ET.Element, after: list[ET.Element], base: str
    ) -> list[Work]:
        noun = dial.find("Conference")
        assert noun is not None
        name = (noun.text or "").strip()
        callback = _link(base, noun, "statusCallback")
        conference = self._live_conference(name)
        if created := conference is None:
            conference = {
                "sid": "CF" + uuid.uuid4().hex,
                "friendly_name": name,
                "status": "in-progress",
                "participants": [],
                "callback": None,
                "events": set(),
                "date_created": datetime.now(UTC),
            }
            self.conferences.append(conference)
        if conference["callback"] is None and callback:
            # As on Twilio, the first participant to bring a statusCallback sets it.
            conference["callback"] = callback
            conference["events"] = set(_events([noun.get("statusCallbackEvent", "")]))
        work = self._conference_event(conference, "conference-start", None) if created else []
        conference["participants"].append(call["sid"])
        call["conference"], call["hold"] = name, False
        call["muted"] = noun.get("muted", "false").lower() == "true"
        call["_dial"] = {
            "start": noun.get("startConferenceOnEnter", "true").lower() != "false",
            "end": noun.get("endConferenceOnExit", "false").lower() == "true",
        }
        call["_after"], call["_base"] = after, base
        call["history"].append(("conference", name))
        return work + self._conference_event(conference, "participant-join", call)

    def _conference_event(
        self, conference: dict[str, Any], event: str, call: dict[str, Any] | None
    ) -> list[Work]:
        family = event.split("-", 1)[1].removeprefix("un")  # participant-unmute -> mute
        if not conference["callback"] or family not in conference["events"]:
            return []
        params = {
            "ConferenceSid": conference["sid"],
            "FriendlyName": conference["friendly_name"],
            "StatusCallbackEvent": event,
            "AccountSid": ACCOUNT_SID,
            "SequenceNumber": str(next(self._sequence)),
            "Timestamp": format_datetime(datetime.now(UTC)),
        }
        if call is not None:
            params |= {
                "CallSid": call["sid"],
                "Muted": str(call["muted"]).lower(),
                "Hold": str(call["hold"]).lower(),
                "StartConferenceOnEnter": str(call["_dial"]["start"]).lower(),
                "EndConferenceOnExit": str(call["_dial"]["end"]).lower(),
            }
        return [partial(self._post, conference["callback"], params)]

    def _leave_conference(self, call: dict[str, Any], *, resume: bool) -> list[Work]:
        """Take a call out of its conference; ``resume`` runs the verbs after its <Dial>."""
        conference = self._live_conference(call["conference"] or "")
        if conference is None:
            return []
        conference["participants"].remove(call["sid"])
        work = self._conference_event(conference, "participant-leave", call)
        call["history"].append(("leave", call["conference"]))
        call["conference"], call["muted"], call["hold"] = None, False, False
        if call["_dial"].get("end") or not conference["participants"]:
            work += self._end_conference(conference)
        return work + (self._resume(call) if resume else [])

    def _end_conference(self, conference: dict[str, Any]) -> list[Work]:
        conference["status"] = "completed"  # first, so nobody leaving ends it again
        work: list[Work] = []
        resumes: list[Work] = []
        for sid in list(conference["participants"]):
            call = self.calls[sid]
            conference["participants"].remove(sid)
            work += self._conference_event(conference, "participant-leave", call)
            call["history"].append(("leave", call["conference"]))
            call["conference"], call["muted"], call["hold"] = None, False, False
            resumes += self._resume(call)
        return work + self._conference_event(conference, "conference-end", None) + resumes

    def _resume(self, call: dict[str, Any]) -> list[Work]:
        call["_gen"] += 1
        after, call["_after"] = call["_after"], []
        return [partial(self._execute, call["sid"], call["_gen"], after, call["_base"])]

    # Voice: REST resources.

    def _call_resource(self, call: dict[str, Any]) -> dict[str, Any]:
        sid, ended = call["sid"], call["status"] not in LIVE
        return {
            "sid": sid,
            "account_sid": ACCOUNT_SID,
            "to": call["to"],
            "from": call["from"],
            "status": call["status"],
            "direction": call["direction"],
            "api_version": "2010-04-01",
            "date_created": _stamp(call["_created"]),
            "date_updated": _stamp(datetime.now(UTC)),
            "start_time": _stamp(call["_started"]),
            "end_time": _stamp(call["_ended"]),
            "duration": str(self._duration(call)) if ended else None,
            "uri": f"{BASE}/Calls/{sid}.json",
            "subresource_uris": {},
        }

    def _queue_resource(self, line: dict[str, Any]) -> dict[str, Any]:
        return {
            "sid": line["sid"],
            "account_sid": ACCOUNT_SID,
            "friendly_name": line["friendly_name"],
            "current_size": len(line["members"]),
            "max_size": line["max_size"],
            "average_wait_time": 0,
            "date_created": _stamp(line["date_created"]),
            "date_updated": _stamp(datetime.now(UTC)),
            "uri": f"{BASE}/Queues/{line['sid']}.json",
        }

    def _member_resource(self, line: dict[str, Any], sid: str) -> dict[str, Any]:
        enqueued = self.calls[sid]["_enqueue"]["at"]
        return {
            "call_sid": sid,
            "queue_sid": line["sid"],
            "position": line["members"].index(sid) + 1,
            "wait_time": int((datetime.now(UTC) - enqueued).total_seconds()),
            "date_enqueued": _stamp(enqueued),
            "uri": f"{BASE}/Queues/{line['sid']}/Members/{sid}.json",
        }

    def _conference_resource(self, conference: dict[str, Any]) -> dict[str, Any]:
        return {
            "sid": conference["sid"],
            "account_sid": ACCOUNT_SID,
            "friendly_name": conference["friendly_name"],
            "status": conference["status"],
            "api_version": "2010-04-01",
            "date_created": _stamp(conference["date_created"]),
            "date_updated": _stamp(datetime.now(UTC)),
            "uri": f"{BASE}/Conferences/{conference['sid']}.json",
            "subresource_uris": {},
        }

    def _participant_resource(self, conference: dict[str, Any], sid: str) -> dict[str, Any]:
        call = self.calls[sid]
        return {
            "account_sid": ACCOUNT_SID,
            "call_sid": sid,
            "conference_sid": conference["sid"],
            "muted": call["muted"],
            "hold": call["hold"],
            "status": "connected",
            "start_conference_on_enter": call["_dial"]["start"],
            "end_conference_on_exit": call["_dial"]["end"],
            "date_created": _stamp(call["_created"]),
            "date_updated": _stamp(datetime.now(UTC)),
            "uri": f"{BASE}/Conferences/{conference['sid']}/Participants/{sid}.json",
        }

    def _voice(
        self, method: str, path: str, form: dict[str, list[str]], query: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any] | None]:
        """Answer one voice REST request; the webhooks it causes go to the worker."""
        match = VOICE.match(path)
        assert match is not None
        kind, *ids = match["rest"].split("/")
        missing = _error(404, 20404, f"The requested resource {path} was not found")

        def one(values: dict[str, list[str]], key: str) -> str | None:
            return values[key][-1] if key in values else None

        if method == "DELETE" and not (kind == "Conferences" and len(ids) == 3):
            return _error(405, 20004, "Method not allowed")
        with self.lock:
            if kind == "Calls" and not ids and method == "GET":
                found = [
                    self._call_resource(c)
                    for c in reversed(self.calls.values())  # newest first, as Twilio lists
                    if all(
                        one(query, key) in (None, c[field])
                        for key, field in (("To", "to"), ("From", "from"), ("Status", "status"))
                    )
                ]
                return 200, _page("calls", found)
            if kind == "Calls" and not ids and method == "POST":
                return self._create_call(form, one)
            if kind == "Calls" and len(ids) == 1:
                if (call := self.calls.get(ids[0])) is None:
                    return missing
                if method == "POST":
                    return self._update_call(
                        call, one(form, "Url"), one(form, "Twiml"), one(form, "Status")
                    )
                return 200, self._call_resource(call)
            if kind == "Queues" and not ids:
                if method == "POST":
                    name = one(form, "FriendlyName") or ""
                    line = self.queues.get(name) or self._new_queue(name)
                    if (size := one(form, "MaxSize")) and size.isdigit():
                        line["max_size"] = min(5000, max(1, int(size)))
                    return 201, self._queue_resource(line)
                return 200, _page("queues", [self._queue_resource(q) for q in self.queues.values()])
            if kind == "Queues":
                line = next((q for q in self.queues.values() if q["sid"] == ids[0]), None)
                if line is None or (len(ids) > 1 and ids[1] != "Members"):
                    return missing
                if len(ids) == 1:
                    if method == "POST" and (size := one(form, "MaxSize")):
                        if not size.isdigit() or not 1 <= int(size) <= 5000:
                            return _error(400, 20001, "MaxSize must be 1 to 5000.")
                        line["max_size"] = int(size)
                    return 200, self._queue_resource(line)
                if len(ids) == 2:
                    members = [self._member_resource(line, sid) for sid in line["members"]]
                    return 200, _page("queue_members", members)
                sid = line["members"][0] if ids[2] == "Front" and line["members"] else ids[2]
                if sid not in line["members"]:
                    return missing
                member = self._member_resource(line, sid)
                if method == "POST":
                    if not (url := one(form, "Url")):
                        return _error(400, 21205, "Url parameter is required.")
                    self._defer(self._redirect(self.calls[sid], url, None))
                return 200, member
            if kind == "Conferences" and not ids:
                found = [
                    self._conference_resource(c)
                    for c in reversed(self.conferences)
                    if one(query, "FriendlyName") in (None, c["friendly_name"])
                    and one(query, "Status") in (None, c["status"])
                ]
                return 200, _page("conferences", found)
            if kind == "Conferences":
                conference = next((c for c in self.conferences if c["sid"] == ids[0]), None)
                if conference is None or (len(ids) > 1 and ids[1] != "Participants"):
                    return missing
                if len(ids) == 1:
                    ending = method == "POST" and one(form, "Status") == "completed"
                    if ending and conference["status"] != "completed":
                        self._defer(self._end_conference(conference))
                    return 200, self._conference_resource(conference)
                if len(ids) == 2:
                    found = [
                        self._participant_resource(conference, sid)
                        for sid in conference["participants"]
                    ]
                    return 200, _page("participants", found)
                if ids[2] not in conference["participants"]:
                    return missing
                call = self.calls[ids[2]]
                if method == "DELETE":
                    self._defer(self._leave_conference(call, resume=True))
                    return 204, None
                if method == "POST":
                    self._defer(self._participant_update(conference, call, form, one))
                return 200, self._participant_resource(conference, call["sid"])
            return missing

    def _create_call(
        self, form: dict[str, list[str]], one: Callable[..., str | None]
    ) -> tuple[int, dict[str, Any]]:
        to, from_ = one(form, "To"), one(form, "From")
        url, twiml = one(form, "Url"), one(form, "Twiml")
        if not to:
            return _error(400, 21201, "No 'To' number is specified")
        if not from_:
            return _error(400, 21213, "No 'From' number is specified")
        if not (url or twiml):
            return _error(400, 21205, "Url parameter is required.")
        events = _events(form.get("StatusCallbackEvent", []))
        call = self._new_call(
            "outbound-api", from_, to, "queued", one(form, "StatusCallback"), events
        )
        call["_url"], call["_twiml"] = url, twiml
        # Answering machine detection: the answer webhook then says who picked up.
        call["_amd"] = one(form, "MachineDetection") is not None
        self._defer([partial(self._dial_out, call["sid"], call["_gen"])])
        return 201, self._call_resource(call)

    def _update_call(
        self, call: dict[str, Any], url: str | None, twiml: str | None, status: str | None
    ) -> tuple[int, dict[str, Any]]:
        if call["status"] not in LIVE:
            return _error(400, 21220, "Call is not in-progress. Cannot redirect.")
        answered = call["status"] == "in-progress"
        if status in ("completed", "canceled"):
            if answered and status == "completed":
                call["history"].append(("hangup",))
                self._defer(self._end(call, "completed"))
            elif not answered:  # Twilio ignores "canceled" for a call already answered
                self._defer(self._end(call, "canceled"))
        elif status is not None:
            return _error(400, 21218, f"Invalid value '{status}' for Status")
        elif answered and (url or twiml):
            self._defer(self._redirect(call, url, twiml))
        elif url or twiml:  # not answered yet: it will run this when it is
            call["_url"], call["_twiml"] = url, twiml
        return 200, self._call_resource(call)

    def _participant_update(
        self,
        conference: dict[str, Any],
        call: dict[str, Any],
        form: dict[str, list[str]],
        one: Callable[..., str | None],
    ) -> list[Work]:
        work: list[Work] = []
        for key, flag in (("Muted", "muted"), ("Hold", "hold")):
            value = one(form, key)
            if value is None or (wanted := value.lower() == "true") == call[flag]:
                continue
            call[flag] = wanted
            call["history"].append((flag, wanted))
            event = f"participant-{'' if wanted else 'un'}{'mute' if flag == 'muted' else 'hold'}"
            work += self._conference_event(conference, event, call)
        return work

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any] | None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.entry["status"] = status
                self.send_response(status)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _receive(self, method: str) -> bool:
                """Log the request and check its credentials, as Twilio does first."""
                length = int(self.headers.get("Content-Length") or 0)
                self.raw = self.rfile.read(length).decode() if length else ""
                parts = urlsplit(self.path)
                self.entry: dict[str, Any] = {
                    "method": method,
                    "path": parts.path,
                    "query": _flat(parse_qs(parts.query, keep_blank_values=True)),
                    "form": _flat(parse_qs(self.raw, keep_blank_values=True)),
                    "time": time.time(),
                    "status": None,
                }
                with fake.lock:
                    fake.requests.append(self.entry)
                header = self.headers.get("Authorization", "")
                expected = (
                    "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
                )
                if header != expected:
                    self._reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
                    return False
                return True

            def _route(self, method: str) -> re.Match[str] | None:
                """Answer voice requests here; return the match of a Messages request."""
                if not self._receive(method):
                    return None
                path = urlsplit(self.path).path
                if match := MESSAGES.match(path):
                    return match
                if match := VERIFY.match(path):
                    if method != "POST":
                        self._reply(405, {"code": 20004, "message": "Method not allowed"})
                    else:
                        form = {k: v[0] for k, v in parse_qs(self.raw).items()}
                        self._reply(*fake._verify(match["service"], match["what"], form))
                    return None
                if VOICE.match(path) is None:
                    self._reply(404, {"code": 20404, "message": "Not found", "status": 404})
                elif fault := fake._voice_fault(path):
                    self._reply(*_error(fault, 20000 + fault, "Injected fault"))
                else:
                    form = parse_qs(self.raw, keep_blank_values=True)
                    query = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
                    self._reply(*fake._voice(method, path, form, query))
                return None

            def do_POST(self) -> None:
                if (match := self._route("POST")) is None:
                    return
                form = {k: v[0] for k, v in parse_qs(self.raw).items()}
                if match["sid"]:
                    self._reply(405, {"code": 20004, "message": "Method not allowed"})
                    return
                self._reply(*fake._create(form))

            def do_DELETE(self) -> None:
                if self._route("DELETE") is not None:
                    self._reply(405, {"code": 20004, "message": "Method not allowed"})

            def do_GET(self) -> None:
                if (match := self._route("GET")) is None:
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

    def _verify(self, service: str, what: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Twilio Verify: start (or resend) a verification, or check its code."""
        to, now = form.get("To", ""), datetime.now(UTC)
        if not re.fullmatch(r"\+[1-9]\d{6,14}", to):
            return _error(400, 60200, "Invalid parameter `To`")
        with self.lock:
            pending = self.verifications.get((service, to))
            if what == "VerificationCheck":
                if pending is None:
                    return _error(404, 20404, "The requested resource was not found")
                pending["checks"] += 1
                if pending["checks"] > VERIFY_MAX_CHECKS:
                    del self.verifications[(service, to)]
                    return _error(429, 60202, "Max check attempts reached")
                if form.get("Code") == pending["code"]:
                    pending["status"] = "approved"
                    del self.verifications[(service, to)]
                return 200, self._verification(pending, now)
            channel = form.get("Channel", "")
            if channel not in ("sms", "call", "whatsapp", "email"):
                return _error(400, 60200, "Invalid parameter `Channel`")
            if code := self.faults.verify_errors.get(to):
                status, message = VERIFY_ERRORS[code]
                return _error(status, code, message)
            if pending is None:
                pending = {
                    "sid": f"VE{uuid.uuid4().hex}",
                    "service": service,
                    "to": to,
                    "code": self.faults.verify_code or f"{self.rng.randrange(10**6):06d}",
                    "status": "pending",
                    "sends": 0,
                    "checks": 0,
                    "created": now,
                }
                self.verifications[(service, to)] = pending
            if pending["sends"] >= VERIFY_MAX_SENDS:
                return _error(429, 60203, "Max send attempts reached")
            pending["sends"] += 1
            pending["channel"] = channel
            self.codes_sent.append(
                {"to": to, "channel": channel, "code": pending["code"], "wall": time.time()}
            )
            return 201, self._verification(pending, now)

    @staticmethod
    def _verification(item: dict[str, Any], now: datetime) -> dict[str, Any]:
        return {
            "sid": item["sid"],
            "service_sid": item["service"],
            "account_sid": ACCOUNT_SID,
            "to": item["to"],
            "channel": item.get("channel", "sms"),
            "status": item["status"],
            "valid": item["status"] == "approved",
            "lookup": {},
            "amount": None,
            "payee": None,
            "send_code_attempts": [],
            "date_created": item["created"].isoformat(),
            "date_updated": now.isoformat(),
            "sna": None,
            "url": f"https://verify.twilio.com/v2/Services/{item['service']}/Verifications/{item['sid']}",
        }

    def _voice_fault(self, path: str) -> int | None:
        with self.lock:
            limit = self.faults.voice_error_limit
            for fragment, status in self.faults.voice_errors.items():
                if fragment in path and (limit is None or limit > 0):
                    if limit is not None:
                        self.faults.voice_error_limit = limit - 1
                    return status
        return None


def _http_webhook(url: str, params: dict[str, str]) -> tuple[int, str]:
    """Post a signed webhook over HTTP, as Twilio does."""
    response = requests.post(url, data=params, headers=signed(url, params), timeout=5)
    return response.status_code, response.text


def _link(base: str, element: ET.Element, attribute: str) -> str | None:
    """A TwiML attribute's URL, made absolute as Twilio resolves it against the document."""
    value = element.get(attribute)
    return urljoin(base, value) if value else None


def _stamp(moment: datetime | None) -> str | None:
    return format_datetime(moment) if moment else None


def _error(status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {
        "code": code,
        "message": message,
        "status": status,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
    }


def _flat(parsed: dict[str, list[str]]) -> dict[str, Any]:
    """A form as a dict: a repeated key keeps its list, any other key its one value."""
    return {k: v[0] if len(v) == 1 else v for k, v in parsed.items()}


def _events(values: list[str]) -> list[str]:
    """Event names from repeated parameters or a space-separated TwiML attribute."""
    return [event for value in values for event in re.split(r"[\s,]+", value) if event]


def _page(key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        key: items,
        "next_page_uri": None,
        "uri": "",
        "page": 0,
        "page_size": len(items),
        "first_page_uri": "",
        "previous_page_uri": None,
        "start": 0,
        "end": len(items),
    }


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


def signed(url: str, params: Mapping[str, str]) -> dict[str, str]:
    """Return the X-Twilio-Signature header Twilio would send for ``params`` to ``url``
    (every value of a repeated field when ``params`` is a MultiDict)."""
    return {"X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, params)}


__all__ = [
    "ACCOUNT_SID",
    "AUTH_TOKEN",
    "VERIFY_SERVICE_SID",
    "FakeTwilio",
    "Faults",
    "settings",
    "signed",
    "urlencode",
]
