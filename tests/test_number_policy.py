"""Which numbers phonein texts and calls: nobody can make the station pay for premium-rate,
toll-free or pumped numbers, through a signup or a producer's call-back."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from phonein.extensions import db
from phonein.models import Message, Signup
from phonein.settings import ConfigError

from .conftest import bearer, make_forum, make_signup, make_user

LISTENER = {
    "name": "Kofi Mensah",
    "location": "Kumasi, Ghana",
    "question": "Who pays for the new bus lanes?",
    "sms_consent": True,
    "publish_consent": False,
}


def _sign_up(client: FlaskClient, forum_slug: str, phone: str, **extra: object) -> tuple:
    response = client.post(
        f"/api/v1/forums/{forum_slug}/signups", json={**LISTENER, "phone": phone, **extra}
    )
    return response.status_code, response.get_json()


@pytest.mark.parametrize(
    ("phone", "kind"),
    [
        ("+44 909 876 5432", "premium-rate"),
        ("+1 900 555 1234", "premium-rate"),
        ("+1 800 555 1234", "toll-free"),
        ("+44 800 123 4567", "toll-free"),
        ("+33 8 84 01 23 45", "shared-cost"),
        ("+44 56 1234 5678", "VoIP"),
        ("+44 70 1234 5678", "personal"),
        ("+44 55 1234 5678", "UAN"),
        ("+44 7640 123456", "pager"),
    ],
)
def test_numbers_that_cost_the_station_money_are_refused_and_never_texted(
    app: Flask, client: FlaskClient, phone: str, kind: str
) -> None:
    forum = make_forum()
    status, body = _sign_up(client, forum.slug, phone)
    assert status == 422
    assert kind in body["error"]["fields"]["phone"]
    assert db.session.query(Signup).count() == 0
    assert db.session.query(Message).count() == 0


def test_the_signup_page_names_the_phone_field_when_it_refuses_a_number(
    app: Flask, client: FlaskClient
) -> None:
    forum = make_forum()
    form = {**LISTENER, "phone": "+1 900 555 1234", "sms_consent": "y", "country": ""}
    response = client.post(f"/forums/{forum.slug}", data=form)
    assert response.status_code == 422
    assert "premium-rate number" in response.get_data(as_text=True)
    assert db.session.query(Signup).count() == 0


def test_denied_ranges_are_refused_whatever_their_type(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(SMS_DENY_PREFIXES="+23320")
    with app.app_context():
        forum = make_forum()
        client = app.test_client()
        status, body = _sign_up(client, forum.slug, "+233 20 123 4567")
        assert status == 422
        assert "range" in body["error"]["fields"]["phone"]
        status, _ = _sign_up(client, forum.slug, "+233 24 123 4567")
        assert status == 201


def test_the_default_deny_list_refuses_satellite_and_international_network_numbers(
    app: Flask, client: FlaskClient
) -> None:
    forum = make_forum()
    status, body = _sign_up(client, forum.slug, "+882 16 1234 5678")
    assert status == 422
    assert "phone" in body["error"]["fields"]


def test_a_station_can_allow_texts_to_some_countries_only(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(SMS_COUNTRIES="GB, IE")
    with app.app_context():
        forum = make_forum()
        client = app.test_client()
        status, body = _sign_up(client, forum.slug, "+33 6 12 34 56 78")
        assert status == 422
        assert "France" in body["error"]["fields"]["phone"]
        assert _sign_up(client, forum.slug, "+353 85 123 4567")[0] == 201
        assert _sign_up(client, forum.slug, "+44 7400 123456")[0] == 201


@pytest.mark.parametrize(
    ("setting", "value"),
    [("SMS_COUNTRIES", "GB,Ireland"), ("SMS_DENY_PREFIXES", "882,+883")],
)
def test_a_malformed_policy_setting_stops_the_app_with_a_clear_message(
    make_app, setting: str, value: str
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=f"PHONEIN_{setting}"):
        make_app(**{setting: value})


def test_a_landline_signs_up_for_a_call_but_not_for_texts(app: Flask, client: FlaskClient) -> None:
    forum = make_forum()
    status, body = _sign_up(client, forum.slug, "+44 20 7946 0018")
    assert status == 422
    assert "landline" in body["error"]["fields"]["sms_consent"]
    status, body = _sign_up(client, forum.slug, "+44 20 7946 0018", sms_consent=False)
    assert status == 201
    assert body["sms_consent"] is False
    assert db.session.query(Message).count() == 0


def test_a_landline_listener_cannot_turn_texts_on_from_the_private_page(
    app: Flask, client: FlaskClient
) -> None:
    forum = make_forum()
    response = client.post(
        f"/forums/{forum.slug}",
        data={**LISTENER, "phone": "+44 20 7946 0018", "sms_consent": "", "country": "GB"},
    )
    assert response.status_code == 303
    manage = response.headers["Location"]
    changed = {k: v for k, v in LISTENER.items() if k not in ("sms_consent", "publish_consent")}
    response = client.post(manage, data={**changed, "sms_consent": "y"})
    assert response.status_code == 422
    assert "landline" in response.get_data(as_text=True)
    assert db.session.query(Signup).one().sms_consent is False


def test_call_backs_to_premium_rate_numbers_are_refused(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(TWILIO_FROM_NUMBER="+442079460000", VOICE_BACKEND="memory")
    with app.app_context():
        forum = make_forum()
        listener = make_signup(forum, status="approved")
        # A number from before the policy, or from a caller screened live.
        listener.phone = "+19005551234"
        db.session.commit()
        producer = bearer(make_user("producer")[1])
        response = app.test_client().post(f"/api/v1/signups/{listener.id}/call", headers=producer)
        assert response.status_code == 409
        assert response.get_json()["error"]["code"] == "number_refused"
        assert app.extensions["phonein_voice"].requests == []


def test_call_backs_to_landlines_are_placed(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(TWILIO_FROM_NUMBER="+442079460000", VOICE_BACKEND="memory")
    with app.app_context():
        forum = make_forum()
        listener = make_signup(
            forum, status="approved", phone="+44 20 7946 0018", sms_consent=False
        )
        producer = bearer(make_user("producer")[1])
        response = app.test_client().post(f"/api/v1/signups/{listener.id}/call", headers=producer)
        assert response.status_code == 201
        (request,) = app.extensions["phonein_voice"].requests
        assert request[0] == "dial"
        assert request[1]["to"] == "+442079460018"
