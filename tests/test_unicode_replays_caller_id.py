"""Unicode tricks are removed; replayed webhooks apply once; caller ID needs attestation."""

from __future__ import annotations

from datetime import timedelta
from xml.etree import ElementTree

import sqlalchemy as sa

from phonein import forums, signups
from phonein.extensions import db
from phonein.inputs import clean_line, clean_text
from phonein.models import Call, Message, MessageKind, WebhookReceipt
from phonein.sms.texts import body
from phonein.times import utcnow

from .conftest import make_forum, make_signup
from .fake_twilio import signed

SMS_URL = "http://phonein.test/webhooks/twilio/sms"
VOICE_URL = "http://phonein.test/webhooks/twilio/voice"


def _post(client, url: str, form: dict[str, str], **headers: str):  # type: ignore[no-untyped-def]
    return client.post(
        url.removeprefix("http://phonein.test"),
        data=form,
        headers={**signed(url, form), **headers},
    )


# Item 8: format characters and line breaks.


def test_bidi_overrides_and_other_format_characters_are_removed():
    assert clean_text("\u202eevil\u202c Ann") == "evil Ann"
    assert clean_text("\u2066iso\u2069\u200e\u200f\ufeff\u00ad\u061cx") == "isox"
    # The joiners spell Persian words and emoji: kept.
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \U0001f469\u200d\U0001f52c"
    assert clean_text(persian) == persian
    assert clean_line("One\r\nTwo\u2028Three\u2029 Four\x85Five") == "One Two Three Four Five"


def test_listener_fields_lose_bidi_overrides(app):
    forum = make_forum()
    data = {
        "name": "Ann\u202e nhoJ",
        "location": "\u202eAccra",
        "phone": "+233 24 123 4567",
        "question": "Why?\u2067 really\u2069",
    }
    signup = signups.register(forum, data, utcnow(), default_region="GB").signup
    assert (signup.name, signup.location, signup.question) == (
        "Ann nhoJ",
        "Accra",
        "Why? really",
    )


def test_forum_fields_are_cleaned_and_the_title_is_one_line(app):
    now = utcnow()
    forum = forums.create(
        {
            "title": "Car-free\r\ncities\u202e Reply STOP",
            "correspondent": "Jo\nSmith",
            "question": "Should we?\u202e\n\nSay why.",
            "description": "\u2066Two\u2069 lines\r\nhere",
            "starts_at": now + timedelta(days=2),
            "timezone": "Europe/London",
        },
        now,
    )
    db.session.commit()
    assert forum.title == "Car-free cities Reply STOP"
    assert forum.correspondent == "Jo Smith"
    assert forum.question == "Should we?\n\nSay why."
    assert forum.description == "Two lines\nhere"


def test_a_stored_title_with_a_line_break_never_reaches_an_sms_or_twiml_unescaped(client, app):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=5), now=now)
    listener = make_signup(forum, name="Mariana", status="approved")
    # A row written before titles were cleaned.
    forum.title = "Cities\r\nReply YES to win"
    db.session.commit()
    for kind in (MessageKind.REMINDER, MessageKind.CANCELLED, MessageKind.RESCHEDULED):
        text = body(kind, forum, None, now)
        assert "\n" not in text and "\r" not in text
        assert '"Cities Reply YES to win"' in text
    form = {"CallSid": "CA" + "7" * 32, "From": listener.phone}
    response = _post(client, VOICE_URL, form)
    assert response.status_code == 200
    say = ElementTree.fromstring(response.data).find("Say")
    assert say is not None and "Mariana" in (say.text or "")


# Item 9: the same signed request twice is applied once.


def test_a_replayed_help_is_answered_again_but_logged_once(client, app):
    form = {"From": "+447400123456", "Body": "HELP", "MessageSid": "SM" + "h" * 32}
    first = _post(client, SMS_URL, form)
    again = _post(client, SMS_URL, form)
    for response in (first, again):
        [message] = ElementTree.fromstring(response.data).findall("Message")
        assert "STOP" in (message.text or "")
    assert db.session.scalars(sa.select(Message.kind)).all() == ["help"]


def test_twilios_idempotency_token_identifies_a_retry(client, app):
    token = "retry-token-1"
    for sid in ("SM" + "1" * 32, "SM" + "2" * 32):  # a token wins over the SID
        form = {"From": "+447400123456", "Body": "HELP", "MessageSid": sid}
        response = _post(client, SMS_URL, form, **{"I-Twilio-Idempotency-Token": token})
        assert response.status_code == 200
    assert len(db.session.scalars(sa.select(Message.kind)).all()) == 1
    keys = db.session.scalars(sa.select(WebhookReceipt.key)).all()
    assert keys == [f"token:{token}"]


def test_a_replayed_conference_event_does_not_undo_a_later_one(client, app):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=5), now=now)
    listener = make_signup(forum, status="approved")
    sid = "CA" + "5" * 32
    assert _post(client, VOICE_URL, {"CallSid": sid, "From": listener.phone}).status_code == 200
    url = VOICE_URL + "/conference"

    def event(name: str, sequence: int) -> None:
        form = {
            "CallSid": sid,
            "ConferenceSid": "CF" + "c" * 32,
            "StatusCallbackEvent": name,
            "SequenceNumber": str(sequence),
        }
        assert _post(client, url, form).status_code == 204

    event("participant-mute", 1)
    event("participant-unmute", 2)
    event("participant-mute", 1)  # Twilio retries the first one
    call = db.session.scalars(sa.select(Call).where(Call.sid == sid)).one()
    db.session.refresh(call)
    assert call.muted is False
    event("participant-mute", 3)  # a new mute is applied
    db.session.refresh(call)
    assert call.muted is True


def test_a_replayed_status_callback_is_recorded_once(client, app):
    forum = make_forum()
    make_signup(forum)
    message = db.session.scalars(sa.select(Message)).one()
    message.status, message.provider_sid = "queued", "SM" + "a" * 32
    db.session.commit()
    url = "http://phonein.test/webhooks/twilio/status"
    form = {"MessageSid": message.provider_sid, "MessageStatus": "delivered"}
    assert _post(client, url, form).status_code == 204
    assert _post(client, url, form).status_code == 204
    keys = db.session.scalars(sa.select(WebhookReceipt.key)).all()
    assert keys == [f"/webhooks/twilio/status:{message.provider_sid}:delivered"]


# Item 10: caller ID is identity only as far as the carrier vouches for it.


def _caller(client, phone: str, verstat: str | None, n: int):  # type: ignore[no-untyped-def]
    form = {"CallSid": f"CA{n:032d}", "From": phone}
    if verstat is not None:
        form["StirVerstat"] = verstat
    response = _post(client, VOICE_URL, form)
    assert response.status_code == 200
    say = ElementTree.fromstring(response.data).find("Say")
    call = db.session.scalars(sa.select(Call).where(Call.sid == form["CallSid"])).one()
    return (say.text or "") if say is not None else "", call


def test_a_failed_attestation_is_not_greeted_by_name_nor_linked(client, app):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=5), now=now)
    listener = make_signup(forum, name="Mariana Costa", status="approved")
    said, call = _caller(client, listener.phone, "TN-Validation-Failed-A", 1)
    assert "Mariana" not in said and "producer will speak to you" in said
    # Producers see an unscreened caller to screen live, not the registered listener.
    assert call.signup_id is None and call.number == listener.phone
    for n, verstat in enumerate((None, "TN-Validation-Passed-A", "No-TN-Validation"), 2):
        said, call = _caller(client, listener.phone, verstat, n)
        assert "Mariana" in said and call.signup_id == listener.id


def test_a_station_may_require_full_attestation(make_app):
    app = make_app(VOICE_REQUIRE_ATTESTATION=True)
    client = app.test_client()
    with app.app_context():
        now = utcnow()
        forum = make_forum(starts_at=now - timedelta(minutes=5), now=now)
        listener = make_signup(forum, name="Mariana Costa", status="approved")
        for n, verstat in enumerate((None, "TN-Validation-Passed-B", "No-TN-Validation"), 1):
            said, call = _caller(client, listener.phone, verstat, n)
            assert "Mariana" not in said and call.signup_id is None
        said, call = _caller(client, listener.phone, "TN-Validation-Passed-A", 9)
        assert "Mariana" in said and call.signup_id == listener.id


def test_producers_see_an_unattested_caller_as_unverified(client, app, producer):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=5), now=now)
    listener = make_signup(forum, name="Mariana Costa", status="approved")
    stranger = "+447400999888"
    _caller(client, listener.phone, "TN-Validation-Failed-A", 1)  # claims to be Mariana
    _caller(client, stranger, None, 2)  # a number nobody signed up with
    queue = client.get(f"/api/v1/forums/{forum.slug}/queue", headers=producer).get_json()
    flags = {line["number"]: line["caller_unverified"] for line in queue["unscreened"]}
    assert flags == {listener.phone: True, stranger: False}
