"""Calling in: greeting, holding in the forum's queue, announcing the place (TwiML as XML)."""

from __future__ import annotations

from datetime import timedelta
from xml.etree import ElementTree

from phonein.times import utcnow

from .conftest import make_forum, make_signup
from .fake_twilio import signed

BASE = "http://phonein.test/webhooks/twilio/voice"


def call(client, path: str = "", **form: str):  # type: ignore[no-untyped-def]
    url = BASE + path
    form = {"CallSid": "CA" + "1" * 32, **form}
    response = client.post(
        url.removeprefix("http://phonein.test"), data=form, headers=signed(url, form)
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/xml"
    return ElementTree.fromstring(response.data)


def live_forum(**values):  # type: ignore[no-untyped-def]
    now = utcnow()
    return make_forum(starts_at=now - timedelta(minutes=5), now=now, **values)


def test_a_registered_caller_is_greeted_by_name_and_held(client, app):
    forum = live_forum(title="Car-free cities")
    listener = make_signup(forum, name="Mariana Costa", status="approved")
    root = call(client, From=listener.phone)
    [say] = root.findall("Say")
    assert "Mariana Costa" in say.text and "Car-free cities" in say.text
    [enqueue] = root.findall("Enqueue")
    assert enqueue.text == f"phonein-{forum.slug}"
    assert enqueue.get("waitUrl") == f"{BASE}/wait?forum={forum.slug}"
    assert enqueue.get("waitUrlMethod") == "POST"


def test_an_unknown_caller_is_held_too_for_live_screening(client, app):
    forum = live_forum()
    root = call(client, From="+447400999888")
    assert "producer" in root.find("Say").text
    assert root.find("Enqueue").text == f"phonein-{forum.slug}"


def test_a_rejected_listener_is_not_greeted_as_expected(client, app):
    forum = live_forum()
    listener = make_signup(forum, name="Sam", status="rejected")
    root = call(client, From=listener.phone)
    assert "Sam" not in root.find("Say").text


def test_calls_outside_a_live_forum_hear_the_next_one(client, app):
    make_forum(title="Fishing rights", timezone="Asia/Manila")  # open, not yet live
    root = call(client, From="+447400123456")
    say = root.find("Say").text
    assert "no phone-in on air" in say and "Fishing rights" in say
    assert "Manila time" in say  # the forum's own time zone, named by its city
    assert root.find("Hangup") is not None and root.find("Enqueue") is None


def test_the_hold_loop_announces_the_place_in_phonein_order(client, app):
    forum = live_forum()
    first, second = (make_signup(forum, status="queued") for _ in range(2))
    for listener, expected in ((second, "number 2"), (first, "You are next")):
        root = call(client, f"/wait?forum={forum.slug}", From=listener.phone)
        assert expected in root.find("Say").text
        assert root.find("Pause").get("length") == "20"
    stranger = call(client, f"/wait?forum={forum.slug}", From="+447400999888")
    assert "producer" in stranger.find("Say").text


def test_voice_webhooks_need_a_valid_signature(client, app):
    live_forum()
    form = {"From": "+447400123456", "CallSid": "CA" + "2" * 32}
    assert client.post("/webhooks/twilio/voice", data=form).status_code == 403
    forged = signed(BASE, {**form, "From": "+447400000000"})
    assert client.post("/webhooks/twilio/voice", data=form, headers=forged).status_code == 403


def test_with_two_forums_live_a_caller_reaches_the_one_expecting_them(client, app):
    earlier = live_forum(title="Earlier show")
    later = live_forum(title="Later show")
    done = make_signup(earlier, name="Kofi", status="done")
    make_signup(later, name="Kofi", phone=done.phone, status="queued")
    root = call(client, From=done.phone)
    assert "Later show" in root.find("Say").text and "Kofi" in root.find("Say").text
    assert root.find("Enqueue").text == f"phonein-{later.slug}"
