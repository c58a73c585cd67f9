# ruff: noqa: F811  (pytest fixtures imported from test_switchboard)
"""Review of the live phone-in: failing tests for bugs found in the switchboard.

Each test states the bug it shows in its docstring; they reuse the fixtures and helpers of
tests/test_switchboard.py (the fake Twilio runs the TwiML and posts signed webhooks back).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from phonein.extensions import db
from phonein.live import calls, dispatch, queue, twiml
from phonein.models import Call, CallCommand, Message, Signup
from phonein.times import utcnow

from .conftest import make_signup
from .test_switchboard import (  # noqa: F401  (fixtures)
    STUDIO,
    api,
    call_of,
    dial_in,
    fake,
    heard,
    live_forum,
    tick_after_backoff,
    voice_app,
)


def _tick(app: Any, fake: Any, times: int = 1) -> None:
    for _ in range(times):
        tick_after_backoff(app)
        fake.settle()


def _studio_on_air(voice_app: Any, fake: Any, forum: Any) -> str:
    """Let the tick take the forum live and dial the studio into the conference."""
    _tick(voice_app, fake)
    [studio] = fake.calls_to(STUDIO)
    assert studio["sid"] in fake.conference_participants(twiml.conference_name(forum))
    return str(studio["sid"])


def test_attempts_spent_on_earlier_commands_stop_the_hang_up_being_retried(voice_app, fake, api):
    """``Call.attempts`` counts every claim of every command and is never reset when a new
    command is wanted (dispatch.want). A caller whose move on air needed a few retries
    has used up MAX_ATTEMPTS, so a single transient 500 on the later END ("finish") is
    never retried (_failed: attempts < MAX_ATTEMPTS is false; retry_stale likewise): the
    finished caller stays in the on-air conference for good while the board says done.
    """
    forum = live_forum()
    listener = make_signup(forum, status="queued")
    sid = dial_in(fake, listener.phone)
    # Twilio blips while the caller is put on air: three 500s, then the move succeeds.
    fake.faults.voice_errors = {f"/Calls/{sid}": 500}
    fake.faults.voice_error_limit = 3
    api("POST", f"/forums/{forum.slug}/queue/next")
    fake.settle()
    _tick(voice_app, fake, 3)
    room = twiml.conference_name(forum)
    assert sid in fake.conference_participants(room)

    # One more transient 500, on the hang-up this time.
    fake.faults.voice_error_limit = 1
    api("POST", f"/forums/{forum.slug}/queue/finish")
    fake.settle()
    assert db.session.get(Signup, listener.id).status == "done"
    _tick(voice_app, fake, 5)  # Twilio is fine again; the tick should hang up the caller
    assert sid not in fake.conference_participants(room), call_of(sid).error
    assert call_of(sid).state == "completed"


def test_a_five_second_twilio_outage_at_close_leaves_the_studio_on_air(voice_app, fake, api):
    """A retryable error puts the request back for the very next tick (one second later,
    no backoff) and gives up for good after MAX_ATTEMPTS (5) claims: apart from DIAL,
    nothing ends the call then. A five-second Twilio 5xx blip as the forum closes leaves
    the studio line (and an on-air caller) in the conference for ever, shown live, the
    design's "the tick keeps making the goodbyes until every call has ended" broken.
    """
    forum = live_forum()
    studio = _studio_on_air(voice_app, fake, forum)
    fake.faults.voice_errors = {f"/Calls/{studio}": 503}
    fake.faults.voice_error_limit = 5
    api("PATCH", f"/forums/{forum.slug}", json={"status": "closed"})
    fake.settle()
    for _ in range(8):  # Twilio answers again after the fifth error
        _tick(voice_app, fake)
        # Let the backoff's time pass without sleeping.
        db.session.execute(
            sa.update(Call).where(Call.applied.is_(None)).values(applied_at=utcnow())
        )
        db.session.commit()
    assert fake.call(studio)["status"] == "completed", fake.call(studio)["history"]
    assert call_of(studio).state == "completed"


def test_a_caller_ringing_in_as_they_are_put_on_air_is_left_holding(voice_app, fake, api):
    """incoming_call reads the signup (queued), then inserts the call as holding. If the
    producer's "next" commits in between (another process), after_step's want(ON_AIR)
    finds no call row to mark, and the new row is inserted with wanted NULL and hold
    TwiML. Nothing ever moves it: phonein shows the listener on air while they hold in
    Twilio's queue for the rest of the show (the hold loop even says "a producer will be
    with you shortly"). The callback path recovers through retry_stale; this one never.
    """
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
    _tick(voice_app, fake, 3)
    fake.hold_loop(sid)
    fake.settle()
    assert sid in fake.conference_participants(twiml.conference_name(forum)), (
        call_of(sid).state,
        heard(fake, sid),
    )


def test_cancelling_a_live_forum_tells_waiting_callers_it_ran_out_of_time(voice_app, fake, api):
    """_end_calls runs forum_over for CANCELLED as for CLOSED: a caller holding when the
    producers cancel the show gets the "cancelled" text *and* a goodbye text saying "We
    ran out of time before your turn, but your comment may still be published" (a
    cancelled forum is never published), and hears that the forum "is now over".
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


def test_two_producers_screening_one_caller_get_a_500(voice_app, fake, api, monkeypatch):
    """screen_call looks for a signup with the caller's number, then inserts one without
    any lock (screen_call only takes the queue lock for an existing signup). Two producers
    screening the same unknown caller (a double click, two boards) both find none; the
    second INSERT hits uq_signups_forum_phone and the request fails with a 500 instead
    of updating the signup the first one made (or a 409).
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
        status=None,
    )
    assert out is not None and out.get("error", {}).get("code") != "internal_error", out
    assert out["signup"]["name"] == "Tomás Ruiz" and out["signup"]["status"] == "queued"
    count = db.session.scalar(
        sa.select(sa.func.count()).select_from(Signup).where(Signup.phone == number)
    )
    assert count == 1


@pytest.mark.parametrize("how", ["withdrawn", "rejected"])
def test_screening_a_known_caller_wipes_the_consents_they_gave(voice_app, fake, api, how):
    """screen_call validates the producer's form with sms_consent/publish_consent
    defaulting to False (ScreenCallIn load_default=False) and copies every value onto an
    existing signup found by number. A listener who signed up online with both consents,
    and is screened live, silently loses them: no "next up"/goodbye texts, and their
    comment can no longer be published.
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


def test_a_call_back_dropped_as_it_is_answered_keeps_holding_unseen(voice_app, fake, api):
    """END of a call phonein still records as ringing is sent as status=canceled, which
    Twilio ignores once the callee has picked up; the row is then ended regardless. If
    the producer drops a call-back while its /answer webhook runs (after the webhook saw
    the call live), ``holding()`` moves nothing, but /answer ignores that and returns the
    hold TwiML anyway: the listener holds in Twilio's queue for the rest of the show on a
    call phonein shows completed, and nothing will ever end it (the goodbye at close only
    looks at live rows). /answer (and /on-air) should hang up when the move fails, and
    END of an answered dial-out should use status=completed.
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
