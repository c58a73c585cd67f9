"""The fake Twilio's phone network, driven by the real SDK against a stand-in app.

The app's voice tests trust this fake to behave like Twilio: these pin down what it does
(queues, conferences, outbound calls, callbacks, errors) before the app relies on it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator

import pytest
from flask import Flask, request
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from phonein.twilio import RedirectingHttpClient

from .fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

SITE = "http://phonein.test"
VOICE, WAIT, LEFT = f"{SITE}/voice", f"{SITE}/wait", f"{SITE}/left"
ON_AIR, HOST, HELLO = f"{SITE}/on-air", f"{SITE}/host", f"{SITE}/hello"
EVENTS, STATUS = f"{SITE}/events", f"{SITE}/status"
STUDIO = (
    '<Dial><Conference statusCallback="/events" statusCallbackEvent="start end join leave'
    ' mute hold" endConferenceOnExit="{end}">studio</Conference></Dial>'
)
PAGES: dict[str, str] = {
    VOICE: '<Response><Say>Welcome to the show.</Say><Enqueue waitUrl="/wait" action="/left">'
    "show</Enqueue></Response>",
    WAIT: "<Response><Say>You are in the queue.</Say><Play>/music.mp3</Play></Response>",
    ON_AIR: f"<Response><Say>You are on air.</Say>{STUDIO.format(end='false')}"
    "<Say>Thanks for calling.</Say></Response>",
    HOST: f"<Response>{STUDIO.format(end='true')}</Response>",
    HELLO: "<Response><Say>Hello from the studio.</Say><Pause/></Response>",
    LEFT: "<Response><Say>Never heard: Twilio ignores this.</Say></Response>",
    EVENTS: "",
    STATUS: "",
}


class StandIn:
    """The app's side of the webhooks: TwiML by URL (404 if unknown), and what it got."""

    def __init__(self) -> None:
        self.pages: dict[str, str | Callable[[dict[str, str]], str]] = dict(PAGES)
        self.posts: list[tuple[str, dict[str, str]]] = []

    def __call__(self, url: str, params: dict[str, str]) -> tuple[int, str]:
        self.posts.append((url, params))
        if (page := self.pages.get(url)) is None:
            return 404, "Not found"
        return 200, page(params) if callable(page) else page

    def to(self, url: str) -> list[dict[str, str]]:
        return [params for posted, params in self.posts if posted == url]

    def events(self) -> list[str]:
        return [params["StatusCallbackEvent"] for params in self.to(EVENTS)]


@pytest.fixture
def app() -> StandIn:
    return StandIn()


@pytest.fixture
def fake(app: StandIn) -> Iterator[FakeTwilio]:
    with FakeTwilio(webhook=app) as fake:
        yield fake


@pytest.fixture
def client(fake: FakeTwilio) -> Client:
    return Client(ACCOUNT_SID, AUTH_TOKEN, http_client=RedirectingHttpClient(fake.url))


def ring(fake: FakeTwilio, *numbers: str, url: str = VOICE) -> list[str]:
    sids = [fake.incoming_call(n, voice_url=url, status_callback=STATUS) for n in numbers]
    fake.settle()
    return sids


def studio_sid(client: Client) -> str:
    (conference,) = client.conferences.list(friendly_name="studio", status="in-progress")
    return str(conference.sid)


def test_an_incoming_caller_waits_in_the_queue_and_hears_the_wait_url_once(fake, app, client):
    first, second = ring(fake, "+447400000001", "+447400000002")

    assert fake.queue_members("show") == [first, second]
    greeted = app.to(VOICE)[0]
    assert (greeted["CallSid"], greeted["CallStatus"], greeted["Direction"]) == (
        first,
        "ringing",
        "inbound",
    )
    waits = [(p["CallSid"], p["QueuePosition"], p["CurrentQueueSize"]) for p in app.to(WAIT)]
    assert waits == [(first, "1", "1"), (second, "2", "2")]
    assert fake.call(first)["transcript"] == ["Welcome to the show.", "You are in the queue."]
    (queue,) = client.queues.list()
    assert (queue.friendly_name, queue.current_size) == ("show", 2)
    members = client.queues(queue.sid).members.list()
    assert [(m.call_sid, m.position) for m in members] == [(first, 1), (second, 2)]
    assert client.calls(first).fetch().status == "in-progress"

    fake.hold_loop(first)
    fake.settle()
    assert [p["CallSid"] for p in app.to(WAIT)] == [first, second, first]


def test_redirecting_a_queued_caller_puts_them_on_air(fake, app, client):
    first, second = ring(fake, "+447400000001", "+447400000002")

    assert client.calls(first).update(url=ON_AIR, method="POST").sid == first
    fake.settle()

    assert fake.queue_members("show") == [second]
    assert [(p["CallSid"], p["QueueResult"]) for p in app.to(LEFT)] == [(first, "redirected")]
    assert fake.conference_participants("studio") == [first]
    assert app.events() == ["conference-start", "participant-join"]
    participants = client.conferences(studio_sid(client)).participants.list()
    assert [p.call_sid for p in participants] == [first]
    assert fake.call(first)["transcript"][-1] == "You are on air."
    (update,) = fake.rest("POST", f"/Calls/{first}.json")
    assert update["form"] == {"Url": ON_AIR, "Method": "POST"}


def test_hold_and_mute_change_the_participant_and_post_events(fake, app, client):
    (sid,) = ring(fake, "+447400000001", url=ON_AIR)
    conference = client.conferences(studio_sid(client))

    assert conference.participants(sid).update(hold=True).hold is True
    conference.participants(sid).update(muted=True)
    conference.participants(sid).update(hold=False)
    fake.settle()

    assert (fake.call(sid)["muted"], fake.call(sid)["hold"]) == (True, False)
    changes = [(p["StatusCallbackEvent"], p["Muted"], p["Hold"]) for p in app.to(EVENTS)[2:]]
    assert changes == [
        ("participant-hold", "false", "true"),
        ("participant-mute", "true", "true"),
        ("participant-unhold", "true", "false"),
    ]
    assert fake.rest("POST", "/Participants/")[0]["form"] == {"Hold": "true"}
    with pytest.raises(TwilioRestException) as error:
        conference.participants("CA" + "0" * 32).update(hold=True)
    assert (error.value.status, error.value.code) == (404, 20404)


def test_a_removed_participant_hears_what_follows_the_dial(fake, app, client):
    (sid,) = ring(fake, "+447400000001", url=ON_AIR)

    assert client.conferences(studio_sid(client)).participants(sid).delete() is True
    fake.settle()

    call = fake.call(sid)
    assert call["transcript"] == ["You are on air.", "Thanks for calling."]
    assert call["status"] == "completed"
    assert app.events() == [
        "conference-start",
        "participant-join",
        "participant-leave",
        "conference-end",
    ]
    assert [(p["CallSid"], p["CallStatus"]) for p in app.to(STATUS)] == [(sid, "completed")]
    assert client.conferences.list(friendly_name="studio", status="in-progress") == []


def test_a_host_leaving_with_end_conference_on_exit_releases_the_caller(fake, app, client):
    (host,) = ring(fake, "+447400000000", url=HOST)
    (caller,) = ring(fake, "+447400000001", url=ON_AIR)

    fake.hangup(host)
    fake.settle()

    assert fake.call(caller)["transcript"][-1] == "Thanks for calling."
    assert [fake.call(s)["status"] for s in (host, caller)] == ["completed", "completed"]
    assert app.events()[-3:] == ["participant-leave", "participant-leave", "conference-end"]


def test_an_outbound_call_is_answered_or_busy(fake, app, client):
    fake.answer_mode["+447400000009"] = "busy"
    events = ["initiated", "ringing", "answered", "completed"]
    answered, busy = (
        client.calls.create(
            to=number,
            from_="+15005550006",
            url=HELLO,
            method="POST",
            status_callback=STATUS,
            status_callback_event=events,
            status_callback_method="POST",
        )
        for number in ("+447400000008", "+447400000009")
    )
    assert answered.status == "queued" and re.fullmatch(r"CA[0-9a-f]{32}", answered.sid)
    fake.settle()

    progress = [(p["CallSid"], p["CallStatus"]) for p in app.to(STATUS)]
    assert [s for c, s in progress if c == answered.sid] == [
        "initiated",
        "ringing",
        "in-progress",
        "completed",
    ]
    assert [s for c, s in progress if c == busy.sid] == ["initiated", "ringing", "busy"]
    assert [(p["CallSid"], p["Direction"]) for p in app.to(HELLO)] == [
        (answered.sid, "outbound-api")
    ]
    assert fake.call(answered.sid)["transcript"] == ["Hello from the studio."]
    assert fake.rest("POST", "/Calls.json")[0]["form"]["StatusCallbackEvent"] == events
    assert [c.sid for c in client.calls.list(status="busy")] == [busy.sid]
    assert [c.sid for c in client.calls.list(to="+447400000008")] == [answered.sid]


def test_updating_an_ended_call_is_error_21220_and_an_unknown_one_20404(fake, client):
    (sid,) = ring(fake, "+447400000001", url=HELLO)
    assert fake.call(sid)["status"] == "completed"

    with pytest.raises(TwilioRestException) as error:
        client.calls(sid).update(url=ON_AIR, method="POST")
    assert (error.value.status, error.value.code) == (400, 21220)
    with pytest.raises(TwilioRestException) as error:
        client.calls("CA" + "0" * 32).fetch()
    assert (error.value.status, error.value.code) == (404, 20404)


def test_hanging_up_in_the_queue_posts_the_action_and_the_status_callback(fake, app):
    (sid,) = ring(fake, "+447400000001")

    fake.hangup(sid)
    fake.settle()

    assert fake.queue_members("show") == []
    assert [(p["CallSid"], p["QueueResult"]) for p in app.to(LEFT)] == [(sid, "hangup")]
    assert [(p["CallSid"], p["CallStatus"]) for p in app.to(STATUS)] == [(sid, "completed")]
    assert "Never heard: Twilio ignores this." not in fake.call(sid)["transcript"]


def test_dequeuing_a_member_takes_the_right_caller_from_the_middle(fake, app, client):
    first, second, third = ring(fake, "+447400000001", "+447400000002", "+447400000003")
    (queue,) = client.queues.list()

    member = client.queues(queue.sid).members(second).update(url=ON_AIR, method="POST")
    fake.settle()

    assert (member.call_sid, member.position) == (second, 2)
    assert fake.queue_members("show") == [first, third]
    assert fake.conference_participants("studio") == [second]
    assert [(p["CallSid"], p["QueueResult"]) for p in app.to(LEFT)] == [(second, "redirected")]
    positions = client.queues(queue.sid).members.list()
    assert [(m.call_sid, m.position) for m in positions] == [(first, 1), (third, 2)]


def test_an_unusable_answer_is_an_application_error(fake):
    (sid,) = ring(fake, "+447400000001", url=f"{SITE}/missing")

    assert fake.call(sid)["transcript"] == ["application error"]
    assert fake.call(sid)["status"] == "failed"


def test_settle_waits_for_the_worker_and_says_when_it_gives_up(fake, app):
    release = threading.Event()
    app.pages[f"{SITE}/slow"] = lambda params: PAGES[HELLO] if release.wait(5) else ""
    sid = fake.incoming_call("+447400000001", voice_url=f"{SITE}/slow")

    with pytest.raises(AssertionError, match="still running"):
        fake.settle(timeout=0.05)
    release.set()
    fake.settle()
    assert fake.call(sid)["status"] == "completed"


def test_voice_faults_answer_a_limited_number_of_requests(fake, client):
    (sid,) = ring(fake, "+447400000001")
    fake.faults.voice_errors["/Calls/"] = 500
    fake.faults.voice_error_limit = 1

    with pytest.raises(TwilioRestException) as error:
        client.calls(sid).update(url=ON_AIR, method="POST")
    assert error.value.status == 500
    client.calls(sid).update(url=ON_AIR, method="POST")
    fake.settle()
    assert [r["status"] for r in fake.rest("POST", f"/Calls/{sid}")] == [500, 200]
    assert fake.conference_participants("studio") == [sid]


def test_route_to_posts_signed_webhooks_through_a_flask_app(fake):
    flask_app = Flask(__name__)
    valid: list[bool] = []

    @flask_app.post("/voice")
    def voice() -> str:
        signature = request.headers.get("X-Twilio-Signature", "")
        valid.append(RequestValidator(AUTH_TOKEN).validate(request.url, request.form, signature))
        return PAGES[HELLO]

    fake.route_to(flask_app)
    sid = fake.incoming_call("+447400000001", voice_url=f"{SITE}/voice?show=1")
    fake.settle()

    assert valid == [True]
    assert fake.call(sid)["transcript"] == ["Hello from the studio."]
    assert fake.webhook_log[0][0] == f"{SITE}/voice?show=1" and fake.webhook_log[0][2] == 200


def test_messages_are_unchanged_and_logged(fake, client):
    message = client.messages.create(to="+447400000001", from_="+15005550006", body="Hi")

    assert message.status == "queued" and fake.bodies() == ["Hi"]
    assert fake.sent_to("+447400000001")[0]["sid"] == message.sid
    (logged,) = fake.rest("POST", "/Messages.json")
    assert logged["form"] == {"To": "+447400000001", "From": "+15005550006", "Body": "Hi"}
    assert logged["status"] == 201
