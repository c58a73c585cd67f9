"""The signup form's refusals are in the listener's language and about what they can fix."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from phonein.extensions import db
from phonein.models import Signup

from .conftest import make_forum

FORM = {
    "name": "Ama",
    "location": "Accra, Ghana",
    "phone": "+233 24 123 4567",
    "question": "Why?",
    "sms_consent": "y",
}


def _visible(page: str) -> str:
    """The page's text a reader sees, without its <select> of countries."""
    page = re.sub(r"<select.*?</select>|<script.*?</script>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


@pytest.mark.parametrize(
    ("lang", "said"),
    [("fr", "Tapez le numéro en chiffres"), ("ar", "يُرجى كتابة الرقم بالأرقام")],
)
def test_a_number_spelt_with_letters_is_refused_in_the_readers_language(client, app, lang, said):
    forum = make_forum(languages=["en", "fr", "ar"])
    sent = client.post(f"/forums/{forum.slug}?lang={lang}", data={**FORM, "phone": "1-800-FLOWERS"})
    text = _visible(sent.get_data(as_text=True))
    assert sent.status_code == 422
    assert said in text
    assert "Please type the number in digits" not in text


@pytest.mark.parametrize("zone", ["Etc/Unknown", "Mars/Olympus_Mons", "x" * 200])
def test_a_zone_the_browser_names_wrongly_does_not_stop_the_signup(client, app, zone):
    """The zone is a hidden field the page's script fills: a listener could not correct it."""
    forum = make_forum(languages=["en", "fr"])
    sent = client.post(f"/forums/{forum.slug}?lang=fr", data={**FORM, "timezone": zone})
    assert sent.status_code == 303, _visible(sent.get_data(as_text=True))[-600:]
    stored = db.session.scalars(sa.select(Signup.timezone)).all()
    assert stored == ["Africa/Accra"]  # guessed from the number


def test_the_number_typed_is_isolated_in_a_right_to_left_refusal(client, app):
    forum = make_forum(languages=["en", "ar"])
    typed = "+44 7700 900123"  # a number of no operator: refused, and repeated
    sent = client.post(f"/forums/{forum.slug}?lang=ar", data={**FORM, "phone": typed})
    assert sent.status_code == 422
    assert f"\u2066{typed}\u2069" in sent.get_data(as_text=True)
