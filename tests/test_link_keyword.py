"""LINK: a listener texts for their private link and gets it in a text of its own.

The confirmation carries no link (it kept that text at two segments): it says to reply
LINK. The answer goes through the outbox, in the listener's language, with the link put in
only as it is sent; at most one a day per signup, never to a number that opted out nor for
a signup withdrawn or rejected. End to end through the fake Twilio (tests/fake_twilio.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree

import pytest
import sqlalchemy as sa

from phonein import gsm, links
from phonein.extensions import db
from phonein.models import Message, MessageKind
from phonein.sms import webhooks
from phonein.times import utcnow

from .conftest import make_forum, make_signup
from .fake_twilio import FakeTwilio, settings, signed
from .processes import drain

SMS_URL = "http://phonein.test/webhooks/twilio/sms"
_sids = iter(range(1, 10**6))


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def app(make_app: Any, fake: FakeTwilio) -> Iterator[Any]:
    app = make_app(**settings(fake, SMS_RATE=1000))
    with app.app_context():
        yield app


def _text_in(app: Any, phone: str, word: str, sid: str | None = None) -> list[str]:
    """Post an inbound text as Twilio would; return the inline replies in the TwiML."""
    form = {"From": phone, "Body": word, "MessageSid": sid or f"SM{next(_sids):032x}"}
    response = app.test_client().post(SMS_URL, data=form, headers=signed(SMS_URL, form))
    assert response.status_code == 200
    return [m.text or "" for m in ElementTree.fromstring(response.data).iter("Message")]


def _french_listener(**values: Any) -> Any:
    now = utcnow()
    forum = make_forum(
        title="L\u2019avenir des villes \u2014 un d\u00e9bat",
        now=now,
        languages=["en", "fr"],
        reminder_offsets=[3600],
    )
    return make_signup(
        forum, now=now, name="Amélie Durand", language="fr", timezone="Europe/Paris", **values
    )


def test_a_french_listener_texts_lien_and_gets_one_working_link_a_day(app, fake):
    listener = _french_listener()
    drain(app)
    [confirmation] = [m["body"] for m in fake.sent_to(listener.phone)]
    # The confirmation: French, one GSM-7 segment, no link, and how to get it.
    assert confirmation.startswith("Inscription :") and "répondez LIEN" in confirmation
    assert "/manage/" not in confirmation and links.PLACEHOLDER not in confirmation
    assert gsm.cost(confirmation).segments == 1

    assert _text_in(app, listener.phone, "lien") == []  # no inline reply: the outbox sends it
    drain(app)
    sent = [m["body"] for m in fake.sent_to(listener.phone)]
    assert len(sent) == 2, sent
    text = sent[1]
    assert text.startswith("Votre lien privé pour") and text.endswith("Désabonnement : STOP.")
    assert "\u2019" not in text and "\u2014" not in text  # the title went as GSM-7
    assert gsm.cost(text).encoding == gsm.GSM7
    found = re.search(r"http://phonein\.test(/manage/m\.\S+)", text)
    assert found is not None
    # It opens the listener's manage page (in French).
    page = app.test_client().get(found.group(1), follow_redirects=True)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Amélie Durand" in html and 'lang="fr"' in html

    # Stored, and shown to producers, with the placeholder: never a working link.
    [row] = db.session.scalars(sa.select(Message).where(Message.kind == MessageKind.LINK)).all()
    assert links.PLACEHOLDER in row.body and "/manage/" not in row.body
    assert (row.signup_id, row.forum_id, row.key) == (
        listener.id,
        listener.forum_id,
        f"{row.created_at:%Y-%m-%d}",
    )

    # Asked again the same day (another word for it, and Twilio retrying the first
    # request): nothing more is sent.
    assert _text_in(app, listener.phone, "LINK") == []
    assert _text_in(app, listener.phone, " Lien. ", sid="SM" + "f" * 32) == []
    assert _text_in(app, listener.phone, " Lien. ", sid="SM" + "f" * 32) == []
    drain(app)
    assert len(fake.sent_to(listener.phone)) == 2
    assert (
        db.session.scalar(sa.select(sa.func.count()).where(Message.kind == MessageKind.LINK)) == 1
    )


def test_a_listener_who_wanted_no_texts_still_gets_the_link_they_ask_for(app, fake):
    listener = _french_listener(sms_consent=False)
    drain(app)
    assert fake.sent_to(listener.phone) == []  # no confirmation: no consent to texts
    _text_in(app, listener.phone, "LIEN")
    drain(app)
    [text] = [m["body"] for m in fake.sent_to(listener.phone)]
    assert text.startswith("Votre lien privé pour") and "/manage/m." in text


def test_an_opted_out_number_gets_nothing(app, fake):
    listener = _french_listener()
    drain(app)
    before = len(fake.sent_to(listener.phone))
    _text_in(app, listener.phone, "STOP")
    assert _text_in(app, listener.phone, "LIEN") == []
    drain(app)
    assert len(fake.sent_to(listener.phone)) == before
    assert db.session.scalar(sa.select(sa.func.count()).where(Message.kind == "link")) == 0


@pytest.mark.parametrize("status", ["withdrawn", "rejected"])
def test_a_withdrawn_or_rejected_signup_gets_no_link(app, fake, status):
    listener = _french_listener(status=status)
    drain(app)
    before = len(fake.sent_to(listener.phone))
    [reply] = _text_in(app, listener.phone, "LIEN")
    # A short answer in the number's language instead, and nothing through the outbox.
    assert reply.startswith("Ce numéro n'est inscrit à aucune émission à venir.")
    drain(app)
    assert len(fake.sent_to(listener.phone)) == before
    assert db.session.scalar(sa.select(sa.func.count()).where(Message.kind == "link")) == 0


def test_the_link_is_for_the_latest_signup_still_to_come(app, fake):
    now = utcnow()
    over = make_forum(
        title="Yesterday's show", starts_at=now - timedelta(hours=3), now=now - timedelta(days=2)
    )
    old = make_signup(over, now=now - timedelta(days=2))
    coming = make_forum(title="Tomorrow's show", now=now, languages=["en", "es"])
    make_signup(coming, now=now, phone=old.phone, language="es")
    drain(app)
    before = len(fake.sent_to(old.phone))
    _text_in(app, old.phone, "enlace")
    drain(app)
    [text] = [m["body"] for m in fake.sent_to(old.phone)][before:]
    assert text.startswith('Tu enlace privado para "Tomorrow\'s show"'), text


def test_a_number_without_a_signup_is_told_so_and_nothing_is_sent(app, fake):
    [reply] = _text_in(app, "+447400999111", "LINK")
    assert reply.startswith("This number has no signup for a phone-in to come.")
    assert reply.endswith("Reply STOP to opt out.")
    drain(app)
    assert fake.sent_to("+447400999111") == []


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("LINK", True),
        ("link", True),
        (" Lien. ", True),
        ("enlace!", True),
        ("ENLACE", True),
        ("رابط", True),
        ("«رابط»", True),
        ("الرابط", True),
        ("رَابِط", True),  # with vowel marks
        ("linked", False),
        ("send link", False),
        ("STOP", False),
    ],
)
def test_link_words(text, asks):
    assert webhooks.link_word(text) is asks
