"""Each listener's texts and voice prompts in their language, through the fake Twilio.

A French, an Arabic and an English listener of one forum: their confirmation, reminder,
"you're next", HELP and STOP replies arrive in their language (sent through the real SDK
to tests/fake_twilio.py), and what they hear when they ring in is spoken in it, by a
voice for that language. The private link they ask for with LINK: tests/test_link_keyword.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree

import pytest
import sqlalchemy as sa

from phonein import links
from phonein.extensions import db
from phonein.live import queue, twiml
from phonein.models import Forum, Message
from phonein.sms import outbox
from phonein.times import utcnow

from .conftest import make_forum, make_signup
from .fake_twilio import FakeTwilio, settings, signed
from .processes import drain

SHOW = "+15005550006"
VOICE_URL = "http://phonein.test/webhooks/twilio/voice"
SMS_URL = "http://phonein.test/webhooks/twilio/sms"

# What each language's texts and prompts say, and what the others never do.
EXPECTED = {
    "fr": {
        "confirmation": "Inscription :",
        "reminder": "Rappel",
        "next_up": "Gardez votre téléphone libre",
        "stop_line": "Désabonnement : STOP.",
        "link_word": "répondez LIEN",
        "help": "Répondez LIEN pour votre lien privé",
        "stop": "Vous ne recevrez plus de SMS",
        "greeting": "Bonjour Amélie Durand, merci d'avoir appelé",
        "place": "C'est bientôt à vous.",  # first in the queue
    },
    "ar": {
        "confirmation": "تم تسجيلك في",
        "reminder": "تذكير",
        "next_up": "أنت التالي",
        "stop_line": "أرسل STOP لإلغاء الاشتراك.",
        "link_word": "أرسل «رابط»",
        "help": "أرسل «رابط» لتلقي رابطك الخاص",
        "stop": "لن تصلك رسائل",
        "greeting": "مرحبًا ليلى حداد، شكرًا لاتصالك",
        "place": "ترتيبك 2 في قائمة الانتظار",
    },
    "en": {
        "confirmation": "Signed up for",
        "reminder": "Reminder:",
        "next_up": "You're next on",
        "stop_line": "Reply STOP to opt out.",
        "link_word": "Reply LINK to change or cancel",
        "help": "Reply LINK for your private link",
        "stop": "You will get no more texts",
        "greeting": "Hello Sam Taylor, thank you for calling",
        "place": "You are number 3 in line.",
    },
}
NAMES = {"fr": "Amélie Durand", "ar": "ليلى حداد", "en": "Sam Taylor"}
ZONES = {"fr": "Europe/Paris", "ar": "Africa/Cairo", "en": "America/Chicago"}
VOICE = {"fr": ("fr-FR", "Polly.Lea"), "ar": ("arb", "Polly.Zeina"), "en": ("en-GB", "Polly.Amy")}


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def app(make_app: Any, fake: FakeTwilio) -> Iterator[Any]:
    app = make_app(**settings(fake, SMS_RATE=1000))
    fake.route_to(app)
    with app.app_context():
        yield app


def _listeners(forum: Any, now: Any) -> dict[str, Any]:
    return {
        language: make_signup(
            forum,
            now=now,
            name=NAMES[language],
            language=language,
            timezone=ZONES[language],
        )
        for language in ("fr", "ar", "en")
    }


def _texts_to(fake: FakeTwilio, phone: str) -> list[str]:
    return [m["body"] for m in fake.sent_to(phone)]


def test_each_listener_gets_texts_in_their_own_language(app, fake):
    now = utcnow()
    forum = make_forum(
        title="L\u2019avenir des villes \u2014 un d\u00e9bat",
        starts_at=now + timedelta(minutes=50),
        now=now - timedelta(hours=1),
        languages=["fr", "ar", "en"],
        reminder_offsets=[3600],
    )
    people = _listeners(forum, now - timedelta(minutes=30))
    assert outbox.fan_out_wave(forum, 3600, now, now) == 3
    db.session.commit()
    drain(app)
    for language, signup in people.items():
        assert signup.language == language
        texts = _texts_to(fake, signup.phone)
        assert len(texts) == 2, texts  # the confirmation and the reminder (fast lane first)
        expected = EXPECTED[language]
        [confirmation] = [t for t in texts if t.startswith(expected["confirmation"])]
        assert sum(t.startswith(expected["reminder"]) for t in texts) == 1
        # No private link: the listener asks for it (LINK, in their language: LIEN, «رابط»).
        assert "/manage/" not in confirmation and links.PLACEHOLDER not in confirmation
        assert EXPECTED[language]["link_word"] in confirmation
        for body in texts:
            assert body.endswith(expected["stop_line"])
            # No sentence of another language's texts slipped in.
            for other, words in EXPECTED.items():
                if other != language:
                    assert words["stop_line"] not in body
            # The title's typographic apostrophe and dash went as plain ones.
            assert "\u2019" not in body and "\u2014" not in body
    # Zones in the listener's words: London by its French and Arabic names.
    french, arabic, english = (" ".join(_texts_to(fake, people[lang].phone)) for lang in EXPECTED)
    assert "(Londres), soit" in french and "chez vous" in french
    assert "بتوقيت لندن" in arabic and "بتوقيتك" in arabic
    assert "London time" in english and "your time" in english
    # Arabic plural forms: 50 minutes takes the "many" form (دقيقة), not the "few" one.
    assert "بعد 50 دقيقة" in arabic


def test_you_are_next_and_keyword_replies_follow_the_listener(app, fake):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=5), now=now, languages=["en", "fr", "ar"])
    people = _listeners(forum, now)
    for signup in people.values():
        signup.status = "approved"
    db.session.commit()
    for signup in people.values():
        # Each goes to the head of the queue in turn, so each is texted "you're next".
        queue.place(forum.slug, signup.id, 1, utcnow())
        outbox.notify_head(forum, utcnow())
        db.session.commit()
    drain(app)
    for language, signup in people.items():
        bodies = _texts_to(fake, signup.phone)
        assert any(EXPECTED[language]["next_up"] in body for body in bodies), bodies
    client = app.test_client()
    for language, signup in people.items():
        for word, key in (("HELP", "help"), ("STOP", "stop")):
            form = {"From": signup.phone, "Body": word, "MessageSid": f"SM{language}{word}"}
            response = client.post(SMS_URL, data=form, headers=signed(SMS_URL, form))
            [reply] = [m.text for m in ElementTree.fromstring(response.data).iter("Message")]
            assert EXPECTED[language][key] in reply, reply
    help_rows = db.session.scalars(sa.select(Message).where(Message.kind == "help")).all()
    assert {row.to for row in help_rows} == {s.phone for s in people.values()}


def test_each_caller_hears_their_language_and_their_name_as_written(app, fake):
    now = utcnow()
    forum = make_forum(
        title="Car-free cities",
        starts_at=now - timedelta(minutes=5),
        now=now,
        languages=["en", "fr", "ar"],
    )
    people = _listeners(forum, now)
    for signup in people.values():
        signup.status = "approved"
    db.session.commit()
    for signup in people.values():
        queue.place(forum.slug, signup.id, None, utcnow())
    db.session.commit()
    for language, signup in people.items():
        sid = fake.incoming_call(signup.phone, SHOW, voice_url=VOICE_URL)
        fake.settle()
        heard = " | ".join(fake.call(sid)["transcript"])
        assert EXPECTED[language]["greeting"] in heard, heard
        assert NAMES[language] in heard  # read as written, whatever the language
        assert EXPECTED[language]["place"] in heard, heard
    # The TwiML names the language and a voice for it.
    client = app.test_client()
    for index, (language, signup) in enumerate(people.items()):
        form = {
            "From": signup.phone,
            "To": SHOW,
            "CallSid": f"CA{index + 1:032x}",
            "StirVerstat": "TN-Validation-Passed-A",
        }
        response = client.post(VOICE_URL, data=form, headers=signed(VOICE_URL, form))
        say = ElementTree.fromstring(response.data).find("Say")
        assert say is not None
        assert (say.get("language"), say.get("voice")) == VOICE[language]


def test_an_unknown_caller_hears_the_forums_first_language():
    assert twiml.language_of(Forum(languages=["es", "en"])) == "es"
    assert twiml.voice_for("es-MX") == ("es-ES", "Polly.Lucia")
    assert twiml.voice_for("de") == twiml.DEFAULT_VOICE
    assert twiml.voice_for(None) == twiml.DEFAULT_VOICE


def test_the_code_goes_out_in_the_language_the_signup_asked_for(make_app):
    app = make_app(VERIFY="sms", VERIFY_BACKEND="outbox")
    with app.app_context():
        client = app.test_client()
        forum = make_forum(languages=["en", "ar"])
        listener = {
            "name": "Leila",
            "location": "Cairo",
            "question": "Q?",
            "sms_consent": True,
        }
        url = f"/api/v1/forums/{forum.slug}/signups"
        for phone, language, words in (
            ("+201001234567", "ar", "رمزك في phonein هو"),
            ("+201001234568", "fr", "Your phonein code is"),  # not one of the forum's
        ):
            client.post(url, json={**listener, "phone": phone, "language": language})
            [code] = db.session.scalars(sa.select(Message).where(Message.to == phone)).all()
            assert code.kind == "code" and code.body.startswith(words), code.body
