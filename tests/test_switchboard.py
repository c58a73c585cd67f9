"""The live phone-in end to end: callers, Twilio's queue, the on-air conference, the studio.

phonein talks to the project's fake Twilio through the real SDK; the fake runs the TwiML
phonein returns (holds callers in queues, joins conferences, posts signed callbacks back
through the test client), so these tests assert what a caller would hear and where each
call ends up, as well as the REST requests phonein made.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree

import pytest
import sqlalchemy as sa

from phonein import worker
from phonein.extensions import db
from phonein.live import calls, dispatch, twiml
from phonein.models import Call, CallCommand, Message, Signup
from phonein.times import utcnow

from .conftest import bearer, make_forum, make_signup, make_user
from .fake_twilio import FakeTwilio, settings, signed

STUDIO = "+442079460000"
SHOW = "+15005550006"
VOICE_URL = "http://phonein.test/webhooks/twilio/voice"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def voice_app(make_app: Any, fake: FakeTwilio) -> Iterator[Any]:
    app = make_app(**settings(fake, SMS_BACKEND="memory", VOICE_STUDIO_NUMBER=STUDIO))
    fake.route_to(app)
    with app.app_context():
        yield app


@pytest.fixture
def api(voice_app: Any) -> Any:
    client = voice_app.test_client()
    headers = bearer(make_user("producer")[1])

    def call(method: str, path: str, json: Any = None, status: int | None = 200) -> Any:
        response = client.open(f"/api/v1{path}", method=method, json=json, headers=headers)
        if status is not None:
            assert response.status_code == status, response.get_data(as_text=True)
        db.session.expire_all()  # the request committed in its own session
        return response.get_json()

    return call


def live_forum(**values: Any) -> Any:
    now = utcnow()
    return make_forum(starts_at=now - timedelta(minutes=5), now=now, **values)


def dial_in(fake: FakeTwilio, number: str) -> str:
    sid = fake.incoming_call(number, SHOW, voice_url=VOICE_URL)
    fake.settle()
    db.session.expire_all()
    return sid


def call_of(sid: str) -> Call:
    db.session.expire_all()
    call = db.session.scalars(sa.select(Call).where(Call.sid == sid)).one()
    return call


def tick_after_backoff(app: Any) -> None:
    """Run a scheduler tick as if the backoff after a Twilio error had passed."""
    db.session.execute(
        sa.update(Call)
        .where(Call.applied.is_(None), Call.applied_at.is_not(None))
        .values(applied_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    worker.tick(app, "test-worker")


def heard(fake: FakeTwilio, sid: str) -> str:
    return " | ".join(fake.call(sid)["transcript"])


def tick_and_settle(app: Any, fake: FakeTwilio, times: int = 1) -> None:
    """Run ``times`` scheduler ticks past any backoff, letting the fake Twilio follow each."""
    for _ in range(times):
        tick_after_backoff(app)
        fake.settle()


def studio_on_air(app: Any, fake: FakeTwilio, forum: Any) -> str:
    """Let the tick take the forum live and dial the studio into the conference."""
    tick_and_settle(app, fake)
    [studio] = fake.calls_to(STUDIO)
    assert studio["sid"] in fake.conference_participants(twiml.conference_name(forum))
    return str(studio["sid"])


def test_a_listener_who_dials_in_is_greeted_held_and_told_their_place(voice_app, fake, api):
    forum = live_forum(title="Car-free cities")
    first = make_signup(forum, name="Ama Owusu", status="queued")
    second = make_signup(forum, name="Lena Vogel", status="queued")
    sid = dial_in(fake, second.phone)
    assert "Hello Lena Vogel" in heard(fake, sid) and "number 2 in line" in heard(fake, sid)
    assert fake.queue_members(twiml.queue_name(forum)) == [sid]
    call = call_of(sid)
    assert (call.state, call.signup_id, call.direction) == ("holding", second.id, "inbound")
    queue = api("GET", f"/forums/{forum.slug}/queue")
    line = queue["waiting"][1]["call"]
    assert line["state"] == "holding" and line["waiting_since"] is not None
    assert queue["waiting"][0]["call"] is None  # Ama has not rung in
    assert first.id == queue["waiting"][0]["id"]


def test_next_moves_the_chosen_caller_into_the_conference_wherever_they_hold(voice_app, fake, api):
    forum = live_forum()
    listeners = [make_signup(forum, status="queued") for _ in range(3)]
    # They ring in the reverse of phonein's order: Twilio's queue is first-in-first-out.
    sids = {s.id: dial_in(fake, s.phone) for s in reversed(listeners)}
    held = twiml.queue_name(forum)
    assert fake.queue_members(held) == [sids[s.id] for s in reversed(listeners)]

    api("POST", f"/forums/{forum.slug}/queue/next")
    fake.settle()
    head = listeners[0]
    [moved] = fake.rest("POST", f"/Calls/{sids[head.id]}.json")
    assert moved["form"]["Url"].endswith(f"/on-air?call={call_of(sids[head.id]).id}")
    on_air_room = twiml.conference_name(forum)
    assert sids[head.id] in fake.conference_participants(on_air_room)
    assert fake.queue_members(held) == [sids[listeners[2].id], sids[listeners[1].id]]
    call = call_of(sids[head.id])
    assert call.state == "on_air" and call.on_air_at is not None
    assert call.conference_sid and call.conference_sid.startswith("CF")
    queue = api("GET", f"/forums/{forum.slug}/queue")
    assert queue["on_air"]["id"] == head.id
    assert queue["on_air"]["call"]["on_air_since"] is not None

    # The producer picks the third, not the second: the second keeps holding.
    third = listeners[2]
    api("POST", f"/forums/{forum.slug}/queue/next", json={"signup_id": third.id})
    fake.settle()
    assert fake.conference_participants(on_air_room)[-1:] == [sids[third.id]]
    assert sids[head.id] not in fake.conference_participants(on_air_room)
    assert "Thank you for calling" in heard(fake, sids[head.id])
    assert fake.call(sids[head.id])["status"] == "completed"
    assert call_of(sids[head.id]).state == "completed"
    assert fake.queue_members(held) == [sids[listeners[1].id]]
    assert db.session.get(Signup, head.id).status == "done"


def test_a_caller_ringing_in_as_they_are_put_on_air_reaches_the_conference(voice_app, fake, api):
    """The producer's "next" may commit while the caller's ring-in is being recorded (in
    another process): the caller is on air in phonein, so they must end up in the on-air
    conference, not left holding in Twilio's queue for the rest of the show.
    """
    from phonein.live import queue

    forum = live_forum()
    slug = forum.slug
    listener = make_signup(forum, status="queued")
    original = calls.record_inbound
    pressed: list[BaseException] = []

    def press_next() -> None:
        try:
            with voice_app.app_context():
                queue.advance(slug, utcnow())
                db.session.commit()
                dispatch.apply_pending()
                db.session.remove()
        except BaseException as error:  # surfaced below
            pressed.append(error)

    def racing(*args: Any, **kwargs: Any) -> Call:
        worker = threading.Thread(target=press_next)
        worker.start()
        worker.join(timeout=20)
        return original(*args, **kwargs)

    calls.record_inbound = racing  # type: ignore[assignment]
    try:
        sid = dial_in(fake, listener.phone)
    finally:
        calls.record_inbound = original  # type: ignore[assignment]
    assert pressed == []
    assert db.session.get(Signup, listener.id).status == "on_air"
    tick_and_settle(voice_app, fake, 3)
    fake.hold_loop(sid)
    fake.settle()
    assert sid in fake.conference_participants(twiml.conference_name(forum)), (
        call_of(sid).state,
        heard(fake, sid),
    )


def test_the_studio_is_dialled_into_the_conference_once_per_forum(voice_app, fake, api):
    now = utcnow()
    forum = make_forum(starts_at=now + timedelta(minutes=30), now=now)
    api("PATCH", f"/forums/{forum.slug}", json={"status": "live"})
    fake.settle()
    # The scheduler's ticks after it find the forum live and the studio on the line.
    for _ in range(2):
        worker.tick(voice_app, "test-worker")
    api("POST", f"/forums/{forum.slug}/studio", status=409)
    fake.settle()
    [dialled] = fake.rest("POST", "/Calls.json")
    assert dialled["form"]["To"] == STUDIO and dialled["form"]["From"] == SHOW
    [studio] = fake.calls_to(STUDIO)
    assert fake.conference_participants(twiml.conference_name(forum)) == [studio["sid"]]
    queue = api("GET", f"/forums/{forum.slug}/queue")
    assert queue["studio"]["state"] == "on_air" and queue["studio"]["direction"] == "studio"


def test_a_forum_going_live_by_the_clock_dials_the_studio(voice_app, fake):
    now = utcnow()
    forum = make_forum(starts_at=now + timedelta(seconds=1), now=now)
    forum.starts_at = now - timedelta(seconds=1)  # its time has come
    forum.ends_at = forum.starts_at + forum.duration
    db.session.commit()
    worker.tick(voice_app, "test-worker")
    worker.tick(voice_app, "test-worker")
    fake.settle()
    assert len(fake.calls_to(STUDIO)) == 1
    assert fake.conference_participants(twiml.conference_name(forum))


def test_closing_the_forum_leaves_nobody_holding(voice_app, fake, api):
    forum = live_forum()
    on_air, waiting, approved = (
        make_signup(forum, status=s) for s in ("queued", "queued", "approved")
    )
    quiet = make_signup(forum, status="queued", sms_consent=False)
    sids = {s.id: dial_in(fake, s.phone) for s in (on_air, waiting, approved, quiet)}
    stranger = dial_in(fake, "+447400999777")
    api("POST", f"/forums/{forum.slug}/queue/next")
    fake.settle()

    api("PATCH", f"/forums/{forum.slug}", json={"status": "closed"})
    fake.settle()
    assert fake.queue_members(twiml.queue_name(forum)) == []
    for sid in [*sids.values(), stranger]:
        assert fake.call(sid)["status"] == "completed", heard(fake, sid)
        assert call_of(sid).state == "completed"
    for sid in (sids[waiting.id], sids[approved.id], stranger):
        assert "could not take your call" in heard(fake, sid)
    assert "Thank you for calling" in heard(fake, sids[on_air.id])
    goodbyes = db.session.scalars(sa.select(Message).where(Message.kind == "goodbye")).all()
    # A text for each waiting listener who agreed to texts; the stranger gave no question.
    assert sorted(m.signup_id for m in goodbyes) == sorted([waiting.id, approved.id])
    assert all("may still be published" in m.body and forum.slug in m.body for m in goodbyes)
    assert db.session.get(Signup, waiting.id).status == "dropped"


def test_cancelling_a_live_forum_does_not_promise_waiting_callers_publication(voice_app, fake, api):
    """A caller holding when the producers cancel the show gets the "cancelled" text, not
    the goodbye of a show that ran out of time ("your comment may still be published"): a
    cancelled forum is never published.
    """
    forum = live_forum()
    listener = make_signup(forum, status="queued")
    dial_in(fake, listener.phone)
    api("PATCH", f"/forums/{forum.slug}", json={"status": "cancelled"})
    fake.settle()
    bodies = db.session.scalars(
        sa.select(Message.body).where(Message.signup_id == listener.id)
    ).all()
    assert not [b for b in bodies if "may still be published" in b], bodies


def test_a_producer_calls_an_approved_listener_back(voice_app, fake, api):
    forum = live_forum(title="Fishing rights")
    listener = make_signup(forum, name="Rahul Mehta", status="approved")
    created = api("POST", f"/signups/{listener.id}/call", status=201)
    assert created["direction"] == "callback" and created["number"] == listener.phone
    fake.settle()
    [placed] = fake.rest("POST", "/Calls.json")
    assert placed["form"]["To"] == listener.phone
    assert placed["form"]["Url"].endswith(f"/answer?call={created['id']}")
    sid = fake.calls_to(listener.phone)[0]["sid"]
    assert "Hello Rahul Mehta, this is Fishing rights calling you back" in heard(fake, sid)
    assert fake.queue_members(twiml.queue_name(forum)) == [sid]
    call = call_of(sid)
    assert (call.id, call.state) == (created["id"], "holding")
    api("POST", f"/signups/{listener.id}/call", status=409)  # already on the line

    pending = make_signup(forum, status="pending")
    assert api("POST", f"/signups/{pending.id}/call", status=409)["error"]["code"] == "not_approved"


def test_a_call_back_that_is_not_answered_is_shown_failed(voice_app, fake, api):
    forum = live_forum()
    listener = make_signup(forum, status="approved")
    fake.answer_mode[listener.phone] = "busy"
    created = api("POST", f"/signups/{listener.id}/call", status=201)
    fake.settle()
    call = db.session.get(Call, created["id"])
    assert (call.state, call.end_reason) == ("failed", "busy")
    # The line is free again: the producer can try later.
    api("POST", f"/signups/{listener.id}/call", status=201)


def test_a_call_back_dropped_as_it_is_answered_is_hung_up(voice_app, fake, api):
    """The producer may drop a call-back while its /answer webhook runs: the listener
    must be hung up (Twilio's call completed), not left holding in the queue for the rest
    of the show on a call phonein shows completed.
    """
    forum = live_forum()
    listener = make_signup(forum, status="approved")
    original = calls.holding
    dropped: list[BaseException] = []

    def drop(call_id: int) -> None:
        try:
            with voice_app.app_context():
                dispatch.want(forum.id, CallCommand.END, Call.id == call_id)
                db.session.commit()
                dispatch.apply_pending()
                db.session.remove()
        except BaseException as error:  # surfaced below
            dropped.append(error)

    def racing(call: Call, now: Any) -> bool:
        worker = threading.Thread(target=drop, args=(call.id,))
        worker.start()
        worker.join(timeout=20)
        return original(call, now)

    calls.holding = racing  # type: ignore[assignment]
    try:
        created = api("POST", f"/signups/{listener.id}/call", status=201)
        fake.settle()
    finally:
        calls.holding = original  # type: ignore[assignment]
    assert dropped == []
    sid = fake.calls_to(listener.phone)[0]["sid"]
    assert db.session.get(Call, created["id"]).state == "completed"
    assert fake.call(sid)["status"] == "completed", (fake.call(sid)["history"], heard(fake, sid))


def test_hold_and_mute_go_through_the_conference_participants_api(voice_app, fake, api):
    forum = live_forum()
    listener = make_signup(forum, status="queued")
    sid = dial_in(fake, listener.phone)
    call_id = call_of(sid).id
    api("PATCH", f"/calls/{call_id}", json={"muted": True}, status=409)  # still holding
    api("POST", f"/forums/{forum.slug}/queue/next")
    fake.settle()

    out = api("PATCH", f"/calls/{call_id}", json={"muted": True})
    assert out["muted"] is True
    out = api("PATCH", f"/calls/{call_id}", json={"held": True})
    assert out["held"] is True
    fake.settle()
    conference = call_of(sid).conference_sid
    changes = fake.rest("POST", f"/Conferences/{conference}/Participants/{sid}.json")
    assert [c["form"] for c in changes] == [{"Muted": "true"}, {"Hold": "true"}]
    assert fake.call(sid)["muted"] and fake.call(sid)["hold"]
    api("PATCH", f"/calls/{call_id}", json={"held": False})
    fake.settle()
    assert not fake.call(sid)["hold"] and not call_of(sid).held


def test_an_unknown_caller_is_screened_live_and_added_to_the_queue(voice_app, fake, api):
    forum = live_forum()
    ahead = make_signup(forum, status="queued")
    sid = dial_in(fake, "+447400555123")
    assert "A producer will speak to you shortly" in heard(fake, sid)
    queue = api("GET", f"/forums/{forum.slug}/queue")
    [line] = queue["unscreened"]
    assert line["number"] == "+447400555123" and line["state"] == "holding"

    screened = api(
        "POST",
        f"/calls/{line['id']}/screen",
        json={"name": "Tomás Ruiz", "location": "Valencia, Spain", "question": "Why not trams?"},
    )
    assert screened["position"] == 2 and screened["signup"]["status"] == "queued"
    signup = db.session.get(Signup, screened["signup"]["id"])
    assert (signup.phone, signup.name, signup.status) == ("+447400555123", "Tomás Ruiz", "queued")
    queue = api("GET", f"/forums/{forum.slug}/queue")
    assert queue["unscreened"] == []
    assert [w["id"] for w in queue["waiting"]] == [ahead.id, signup.id]
    assert queue["waiting"][1]["call"]["id"] == line["id"]
    fake.hold_loop(sid)
    fake.settle()
    assert "number 2 in line" in heard(fake, sid)

    bad = api(
        "POST",
        f"/calls/{line['id']}/screen",
        json={"name": "", "location": "x", "question": "y"},
        status=422,
    )
    assert "name" in bad["error"]["fields"]


def test_a_caller_who_hangs_up_while_holding_leaves_the_line(voice_app, fake, api):
    forum = live_forum()
    listener = make_signup(forum, status="queued")
    sid = dial_in(fake, listener.phone)
    fake.hangup(sid)
    fake.settle()
    call = call_of(sid)
    assert (call.state, call.end_reason) == ("completed", "hung_up")
    queue = api("GET", f"/forums/{forum.slug}/queue")
    assert queue["waiting"][0]["call"] is None  # still queued, but not on the line


def test_dropping_a_waiting_caller_hangs_up_and_drops_the_signup(voice_app, fake, api):
    forum = live_forum()
    listener = make_signup(forum, status="queued")
    sid = dial_in(fake, listener.phone)
    out = api("POST", f"/calls/{call_of(sid).id}/hangup")
    fake.settle()
    assert out["state"] == "completed"
    assert (
        fake.call(sid)["status"] == "completed"
        and fake.queue_members(twiml.queue_name(forum)) == []
    )
    assert db.session.get(Signup, listener.id).status == "dropped"
    api("POST", f"/calls/{out['id']}/hangup", status=409)


def test_twilio_errors_leave_the_move_pending_until_a_retry_succeeds(voice_app, fake, api):
    forum = live_forum()
    listener = make_signup(forum, status="queued")
    sid = dial_in(fake, listener.phone)
    fake.faults.voice_errors = {f"/Calls/{sid}": 500}
    api("POST", f"/forums/{forum.slug}/queue/next")  # on air in phonein; Twilio said 500
    fake.settle()
    call = call_of(sid)
    assert call.state == "holding" and "Twilio" in (call.error or "")
    assert fake.queue_members(twiml.queue_name(forum)) == [sid]
    fake.faults.voice_errors = {}
    worker.tick(voice_app, "test-worker")  # too early: the backoff holds it back
    fake.settle()
    assert call_of(sid).state == "holding"
    tick_after_backoff(voice_app)  # the scheduler makes the request again
    fake.settle()
    call = call_of(sid)
    assert call.state == "on_air" and call.error is None
    assert sid in fake.conference_participants(twiml.conference_name(forum))


def test_a_hang_up_is_retried_even_after_the_move_on_air_used_up_retries(voice_app, fake, api):
    """Each command gets its own retries: tries spent putting a caller on air do not count
    against the later hang-up, so a transient 500 on the hang-up is retried and the
    finished caller leaves the on-air conference.
    """
    forum = live_forum()
    listener = make_signup(forum, status="queued")
    sid = dial_in(fake, listener.phone)
    # Twilio blips while the caller is put on air: three 500s, then the move succeeds.
    fake.faults.voice_errors = {f"/Calls/{sid}": 500}
    fake.faults.voice_error_limit = 3
    api("POST", f"/forums/{forum.slug}/queue/next")
    fake.settle()
    tick_and_settle(voice_app, fake, 3)
    room = twiml.conference_name(forum)
    assert sid in fake.conference_participants(room)

    # One more transient 500, on the hang-up this time.
    fake.faults.voice_error_limit = 1
    api("POST", f"/forums/{forum.slug}/queue/finish")
    fake.settle()
    assert db.session.get(Signup, listener.id).status == "done"
    tick_and_settle(voice_app, fake, 5)  # Twilio is fine again; the tick hangs up the caller
    assert sid not in fake.conference_participants(room), call_of(sid).error
    assert call_of(sid).state == "completed"


def test_the_studio_is_hung_up_at_close_despite_a_five_second_twilio_outage(voice_app, fake, api):
    """The tick keeps making the goodbyes until every call has ended: five Twilio 5xx in a
    row as the forum closes (more than the retries of any other command) still end with
    the studio line off the air.
    """
    forum = live_forum()
    studio = studio_on_air(voice_app, fake, forum)
    fake.faults.voice_errors = {f"/Calls/{studio}": 503}
    fake.faults.voice_error_limit = 5
    api("PATCH", f"/forums/{forum.slug}", json={"status": "closed"})
    fake.settle()
    for _ in range(8):  # Twilio answers again after the fifth error
        tick_and_settle(voice_app, fake)
        # Let the backoff's time pass without sleeping.
        db.session.execute(
            sa.update(Call).where(Call.applied.is_(None)).values(applied_at=utcnow())
        )
        db.session.commit()
    assert fake.call(studio)["status"] == "completed", fake.call(studio)["history"]
    assert call_of(studio).state == "completed"


def test_a_move_lost_to_a_crash_is_made_again(voice_app, fake, api):
    forum = live_forum()
    listener = make_signup(forum, status="queued")
    sid = dial_in(fake, listener.phone)
    # A process claimed the move, then died before asking Twilio.
    from phonein.live import queue

    queue.advance(forum.slug, utcnow())
    db.session.execute(
        sa.update(Call)
        .where(Call.sid == sid)
        .values(applied="on_air", applied_at=utcnow() - timedelta(minutes=1), attempts=1)
    )
    db.session.commit()
    worker.tick(voice_app, "test-worker")
    fake.settle()
    assert call_of(sid).state == "on_air"
    assert len(fake.rest("POST", f"/Calls/{sid}.json")) == 1


def test_a_move_for_a_caller_who_already_hung_up_ends_the_line(voice_app, fake, api):
    forum = live_forum()
    listener = make_signup(forum, status="queued")
    sid = dial_in(fake, listener.phone)
    fake.calls[sid]["status"] = "completed"  # hung up, and phonein was never told
    api("POST", f"/forums/{forum.slug}/queue/next")
    call = call_of(sid)
    assert (call.state, call.end_reason) == ("completed", "gone")


def test_call_states_only_move_forward(voice_app, fake):
    forum = live_forum()
    listener = make_signup(forum, status="approved")
    sid = dial_in(fake, listener.phone)
    client = voice_app.test_client()
    for status in ("completed", "ringing", "in-progress"):
        form = {"CallSid": sid, "CallStatus": status}
        response = client.post(
            "/webhooks/twilio/voice/status",
            data=form,
            headers=signed(f"{VOICE_URL}/status", form),
        )
        assert response.status_code == 204
    assert call_of(sid).state == "completed"
    forged = client.post("/webhooks/twilio/voice/status", data={"CallSid": sid})
    assert forged.status_code == 403


def test_back_timing_flags_callers_who_will_not_make_it(voice_app, api):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=50), now=now)  # 10 minutes left
    done = make_signup(forum, status="done")
    done.on_air_at, done.done_at = now - timedelta(minutes=5), now - timedelta(minutes=2)
    db.session.commit()  # one call so far, of 3 minutes
    waiting = [make_signup(forum, status="queued") for _ in range(4)]
    queue = api("GET", f"/forums/{forum.slug}/queue")
    assert queue["average_call_seconds"] == 180
    assert 590 <= queue["remaining_seconds"] <= 600
    flags = [w["will_make_it"] for w in queue["waiting"]]
    # Nobody on air: they start now, +3, +6, +9 minutes; the last has under a minute.
    assert flags == [True, True, True, False]
    assert [w["id"] for w in queue["waiting"]] == [w.id for w in waiting]
    assert queue["waiting"][1]["expected_on_air_at"] > queue["waiting"][0]["expected_on_air_at"]


def test_presenters_see_lines_but_not_numbers(voice_app, fake):
    forum = live_forum()
    listener = make_signup(forum, status="queued")
    dial_in(fake, listener.phone)
    dial_in(fake, "+447400555999")
    headers = bearer(make_user("presenter")[1])
    client = voice_app.test_client()
    queue = client.get(f"/api/v1/forums/{forum.slug}/queue", headers=headers).get_json()
    assert queue["waiting"][0]["call"]["state"] == "holding"
    assert "phone" not in queue["waiting"][0]
    assert queue["unscreened"][0]["number"] is None
    assert "+447400555999" not in json.dumps(queue)
    for method, path in (
        ("POST", f"/signups/{listener.id}/call"),
        ("GET", f"/forums/{forum.slug}/calls"),
    ):
        assert client.open(f"/api/v1{path}", method=method, headers=headers).status_code == 403


def test_purge_erases_callers_numbers(voice_app, fake):
    from phonein import privacy

    forum = live_forum()
    dial_in(fake, "+447400555888")
    forum.status, forum.closed_at = "closed", utcnow() - timedelta(days=100)
    db.session.commit()
    privacy.purge(utcnow(), 90)
    db.session.commit()
    assert db.session.scalars(sa.select(Call.number)).all() == [None]


def test_fuzzed_switchboard_requests_get_a_contract_status(voice_app, fake, api):
    """A bounded, seeded stream of odd bodies and forms at every switchboard route.

    The API answers with a success or a client error of the contract (404, 409, 422; a
    JSON body is never malformed here), never a server error; Twilio's webhooks always
    get TwiML or an empty 204.
    """
    forum = live_forum()
    listener = make_signup(forum, status="queued")
    sid = dial_in(fake, listener.phone)
    call_id = call_of(sid).id
    routes = [
        ("POST", f"/api/v1/calls/{call_id}/screen"),
        ("PATCH", f"/api/v1/calls/{call_id}"),
        ("POST", f"/api/v1/forums/{forum.slug}/queue/next"),
        ("POST", f"/api/v1/signups/{listener.id}/call"),
        ("POST", f"/api/v1/calls/{2**40}/hangup"),
        ("POST", f"/api/v1/forums/{forum.slug}/studio"),
    ]
    hooks = [
        "",
        "/wait?forum=" + forum.slug,
        "/left?call=x",
        "/answer?call=-1",
        "/on-air?call=99999999999",
        "/status",
        "/conference?forum=nope",
    ]
    rng = random.Random(20261124)
    client = voice_app.test_client()
    headers = bearer(make_user("producer")[1])
    values: list[Any] = [
        None,
        "",
        "x" * 5000,
        "\x00",
        2**63,
        -1,
        True,
        [],
        {},
        "CA" + "9" * 32,
        sid,
    ]
    keys = ["name", "location", "question", "muted", "held", "signup_id", "position", "queue"]
    for i in range(240):
        method, path = routes[i % len(routes)]
        body = {rng.choice(keys): rng.choice(values) for _ in range(rng.randint(0, 4))}
        response = client.open(path, method=method, json=body, headers=headers)
        assert response.status_code in (200, 201, 404, 409, 422), (
            path,
            body,
            response.get_data()[:300],
        )
        hook = hooks[i % len(hooks)]
        form_keys = [
            "CallSid",
            "From",
            "CallStatus",
            "QueueResult",
            "StatusCallbackEvent",
            "ConferenceSid",
        ]
        form = {k: str(rng.choice(values)) for k in rng.sample(form_keys, rng.randint(0, 6))}
        url = VOICE_URL + hook
        reply = client.post(
            url.removeprefix("http://phonein.test"), data=form, headers=signed(url, form)
        )
        assert reply.status_code in (200, 204), (hook, form, reply.get_data()[:300])
        if reply.status_code == 200:
            ElementTree.fromstring(reply.data)  # TwiML, always well formed
        fake.settle()


def test_a_forum_closing_by_the_clock_on_a_full_line_leaves_nobody_holding(voice_app, fake):
    forum = live_forum()
    sids = [dial_in(fake, make_signup(forum, status="queued").phone) for _ in range(10)]
    forum.ends_at = utcnow() - timedelta(seconds=1)  # the show's time is up
    db.session.commit()
    worker.tick(voice_app, "test-worker")  # closes it and plays every goodbye
    fake.settle()
    assert fake.queue_members(twiml.queue_name(forum)) == []
    assert {fake.call(sid)["status"] for sid in sids} == {"completed"}
    assert all("could not take your call" in heard(fake, sid) for sid in sids)
    goodbyes = db.session.scalar(
        sa.select(sa.func.count()).select_from(Message).where(Message.kind == "goodbye")
    )
    assert goodbyes == 10


def test_the_switchboard_is_in_the_openapi_document(voice_app):
    spec = voice_app.test_client().get("/api/v1/openapi.json").get_json()
    for path, method in (
        ("/api/v1/signups/{signup_id}/call", "post"),
        ("/api/v1/forums/{slug}/studio", "post"),
        ("/api/v1/forums/{slug}/calls", "get"),
        ("/api/v1/calls/{call_id}", "patch"),
        ("/api/v1/calls/{call_id}/hangup", "post"),
        ("/api/v1/calls/{call_id}/screen", "post"),
    ):
        assert method in spec["paths"][path], path
    queue = spec["components"]["schemas"]["QueueOut"]["properties"]
    assert {"unscreened", "studio", "average_call_seconds"} <= queue.keys()
    call = spec["components"]["schemas"]["CallBrief"]["properties"]
    assert {"state", "waiting_since", "on_air_since"} <= call.keys()


def test_processes_racing_to_make_one_request_make_it_once(voice_app, fake):
    """Web requests and the tick of several processes may all see a request pending."""
    forum = live_forum()
    listeners = [make_signup(forum, status="queued") for _ in range(3)]
    sids = [dial_in(fake, s.phone) for s in listeners]
    from phonein.live import queue

    queue.advance(forum.slug, utcnow())
    db.session.commit()
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def race() -> None:
        try:
            with voice_app.app_context():
                barrier.wait()
                dispatch.apply_pending()
                db.session.remove()
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    fake.settle()
    assert errors == []
    assert len(fake.rest("POST", f"/Calls/{sids[0]}.json")) == 1
    assert call_of(sids[0]).state == "on_air"


def test_screening_a_caller_already_queued_keeps_their_place(voice_app, fake, api):
    forum = live_forum()
    listener = make_signup(forum, status="queued", name="Ines")
    make_signup(forum, status="queued")
    sid = dial_in(fake, listener.phone)
    out = api(
        "POST",
        f"/calls/{call_of(sid).id}/screen",
        json={"name": "Inês Duarte", "location": "Porto", "question": "Ferries?"},
    )
    assert out["position"] == 1 and out["signup"]["name"] == "Inês Duarte"


def test_two_producers_screening_one_caller_make_one_signup(voice_app, fake, api, monkeypatch):
    """Another producer (or the listener, online) may create the caller's signup just before
    this producer's screening takes the queue lock: the screening then updates that signup
    and queues it, and the caller has one signup, not two (nor a server error).
    """

    forum = live_forum()
    forum_id = forum.id
    number = "+447400555321"
    sid = dial_in(fake, number)
    line = call_of(sid)
    from phonein.live import queue as queue_ops

    real_bump = queue_ops.bump

    def other_producer_first(locked_forum: int) -> Any:
        # The listener signs up online (or another producer screens) just before this
        # producer's screen takes the lock.
        def screen() -> None:
            with voice_app.app_context():
                db.session.add(
                    Signup(
                        forum_id=forum_id,
                        phone=number,
                        name="Tomás Ruiz",
                        location="Valencia",
                        question="Trams?",
                        status="approved",
                        sms_consent=False,
                        publish_consent=False,
                        created_at=utcnow(),
                        updated_at=utcnow(),
                    )
                )
                db.session.commit()
                db.session.remove()

        monkeypatch.setattr(queue_ops, "bump", real_bump)
        worker = threading.Thread(target=screen)
        worker.start()
        worker.join(timeout=20)
        return real_bump(locked_forum)

    monkeypatch.setattr(queue_ops, "bump", other_producer_first)
    out = api(
        "POST",
        f"/calls/{line.id}/screen",
        json={"name": "Tomás Ruiz", "location": "Valencia", "question": "Trams?"},
        status=200,
    )
    assert out["signup"]["name"] == "Tomás Ruiz" and out["signup"]["status"] == "queued"
    count = db.session.scalar(
        sa.select(sa.func.count()).select_from(Signup).where(Signup.phone == number)
    )
    assert count == 1


@pytest.mark.parametrize("how", ["withdrawn", "rejected"])
def test_screening_a_known_caller_keeps_the_consents_they_gave(voice_app, fake, api, how):
    """A listener who signed up online with both consents and is screened live keeps them
    (the producer's form has no consent fields): they still get the "next up" and goodbye
    texts, and their comment can still be published.
    """
    forum = live_forum()
    listener = make_signup(forum, status=how)
    assert listener.sms_consent and listener.publish_consent
    sid = dial_in(fake, listener.phone)
    line = call_of(sid)
    api(
        "POST",
        f"/calls/{line.id}/screen",
        json={"name": listener.name, "location": "Leeds", "question": "Buses?"},
    )
    signup = db.session.get(Signup, listener.id)
    assert signup.status == "queued"
    assert (signup.sms_consent, signup.publish_consent) == (True, True)


def test_a_full_hold_queue_makes_room_instead_of_turning_callers_away(make_app, fake):
    # Twilio creates a queue for 100 callers; here phonein may raise it to 8.
    app = make_app(**settings(fake, SMS_BACKEND="memory", VOICE_QUEUE_MAX_SIZE=8))
    fake.route_to(app)
    with app.app_context():
        forum = live_forum()
        held = twiml.queue_name(forum)
        sids = [dial_in(fake, "+447400600000")]
        line = fake.queues[held]
        assert fake.rest(path_contains="/Queues/") == []  # far from full: nothing to do

        line["max_size"] = 1  # full: the next caller is refused by Twilio...
        sids.append(dial_in(fake, "+447400600001"))
        # ... and phonein makes room and holds them after all.
        assert fake.queue_members(held) == sids and line["max_size"] == 8
        assert "Thank you for waiting" in heard(fake, sids[1])
        assert [r["form"] for r in fake.rest("POST", f"/Queues/{line['sid']}.json")] == [
            {"MaxSize": "8"}
        ]

        line["max_size"] = 5  # the hold loop raises it before it fills: at four fifths
        sids += [dial_in(fake, f"+44740060000{i}") for i in (2, 3)]
        assert line["max_size"] == 8 and fake.queue_members(held) == sids

        # At the most phonein allows, the next caller hears the lines are busy.
        sids += [dial_in(fake, f"+44740060000{i}") for i in range(4, 8)]
        refused = dial_in(fake, "+447400600009")
        assert fake.queue_members(held) == sids
        assert "all our lines are busy" in heard(fake, refused)
        assert fake.call(refused)["status"] == "completed"
        assert call_of(refused).state == "failed"


def test_a_dial_out_whose_answer_was_lost_is_not_placed_twice(voice_app, fake, api):
    forum = live_forum()
    listener = make_signup(forum, status="approved")
    fake.answer_mode[listener.phone] = "ringing"  # it rings on; no answer yet
    created = api("POST", f"/signups/{listener.id}/call", status=201)
    fake.settle()
    # The process died after Twilio placed the call, before it heard back or any callback
    # arrived: the row has no SID, and the claim is old.
    db.session.execute(
        sa.update(Call)
        .where(Call.id == created["id"])
        .values(sid=None, applied_at=utcnow() - timedelta(minutes=1))
    )
    db.session.commit()
    worker.tick(voice_app, "test-worker")
    fake.settle()
    [placed] = fake.calls_to(listener.phone)
    dials = [r for r in fake.rest("POST", "/Calls.json") if r["form"]["To"] == listener.phone]
    assert len(dials) == 1 and fake.rest("GET", "/Calls.json")  # it asked, and did not redial
    assert db.session.get(Call, created["id"]).sid == placed["sid"]


def test_a_call_back_that_reaches_voicemail_is_not_held_for_the_show(voice_app, fake, api):
    forum = live_forum()
    listener = make_signup(forum, status="approved")
    fake.answer_mode[listener.phone] = "machine"
    created = api("POST", f"/signups/{listener.id}/call", status=201)
    fake.settle()
    [placed] = fake.rest("POST", "/Calls.json")
    assert placed["form"]["MachineDetection"] == "Enable"
    sid = fake.calls_to(listener.phone)[0]["sid"]
    assert "Sorry we missed you" in heard(fake, sid)
    assert fake.queue_members(twiml.queue_name(forum)) == []
    call = db.session.get(Call, created["id"])
    assert (call.state, call.end_reason) == ("failed", "voicemail")
