"""Phone numbers as listeners type them: international prefixes of their own country, and
numbers spelt in letters."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from phonein.errors import Invalid
from phonein.extensions import db
from phonein.models import Signup
from phonein.phones import VANITY, normalize

from .conftest import make_forum


@pytest.mark.parametrize(
    ("typed", "country", "zone", "e164"),
    [
        # The ITU's 00, from the UK, from France, and from the US (where it is not the prefix).
        ("00 44 7400 123456", "GB", "Europe/London", "+447400123456"),
        ("0044 7400 123456", "FR", "Europe/Paris", "+447400123456"),
        ("00 44 7400 123456", "US", "America/New_York", "+447400123456"),
        # Nigeria dials out with 009: a UK mobile typed from Lagos, the number's country chosen.
        ("009 44 7400 123456", "GB", "Africa/Lagos", "+447400123456"),
        ("009 44 7400 123456", None, "Africa/Lagos", "+447400123456"),
        # The US's 011 and Australia's 0011.
        ("011 44 7400 123456", None, "America/New_York", "+447400123456"),
        ("0011 1 201 555 0211", None, "Australia/Sydney", "+12015550211"),
        # National forms are unchanged.
        ("07400 123456", "GB", None, "+447400123456"),
        ("(201) 555-0211", "US", None, "+12015550211"),
    ],
)
def test_international_prefixes_of_the_listeners_country_are_understood(
    typed: str, country: str | None, zone: str | None, e164: str
) -> None:
    assert normalize(typed, country=country, timezone=zone, default_region="GB") == e164


def test_a_national_number_typed_with_the_wrong_country_is_not_guessed() -> None:
    # A French mobile with "United States" chosen: not silently read as French because the
    # browser is in Paris; the listener is told to check it.
    with pytest.raises(Invalid) as error:
        normalize("06 12 34 56 78", country="US", timezone="Europe/Paris", default_region="GB")
    assert "United States" in error.value.fields["phone"]


@pytest.mark.parametrize("typed", ["1-800-FLOWERS", "+44 7400 CALLME", "0800 GO TEXT"])
def test_numbers_spelt_with_letters_are_refused_with_a_clear_error(typed: str) -> None:
    with pytest.raises(Invalid) as error:
        normalize(typed, country="US", timezone=None, default_region="GB")
    assert error.value.fields == {"phone": VANITY}
    assert "digits" in VANITY and "1-800-FLOWERS" in VANITY


def test_the_signup_api_takes_00_and_refuses_letters(app, client) -> None:  # type: ignore[no-untyped-def]
    forum = make_forum()
    url = f"/api/v1/forums/{forum.slug}/signups"
    base = {"name": "Ada", "location": "Lagos", "question": "Why?", "sms_consent": True}
    ok = client.post(url, json={**base, "phone": "009 44 7400 123456", "timezone": "Africa/Lagos"})
    assert ok.status_code == 201, ok.get_json()
    assert ok.get_json()["phone"] == "+447400123456"
    vanity = client.post(url, json={**base, "phone": "1-800-FLOWERS", "country": "US"})
    assert vanity.status_code == 422
    assert vanity.get_json()["error"]["fields"]["phone"] == VANITY
    phones = db.session.scalars(sa.select(Signup.phone)).all()
    assert phones == ["+447400123456"]
