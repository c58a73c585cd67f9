"""Proof of the number through Twilio Verify: the real SDK against the fake Verify API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from phonein.extensions import db
from phonein.models import Message, Signup, Verification

from .conftest import make_forum
from .fake_twilio import VERIFY_SERVICE_SID, FakeTwilio, Faults, settings

LISTENER = {
    "name": "Amara Okafor",
    "location": "Lagos, Nigeria",
    "phone": "+44 7400 123456",
    "question": "Will buses run all night?",
    "sms_consent": True,
    "publish_consent": False,
}
E164 = "+447400123456"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(faults=Faults()) as fake:
        yield fake


@pytest.fixture
def app(make_app: Any, fake: FakeTwilio) -> Iterator[Any]:
    app = make_app(
        **settings(
            fake, VERIFY="sms", VERIFY_BACKEND=None, TWILIO_VERIFY_SERVICE_SID=VERIFY_SERVICE_SID
        )
    )
    with app.app_context():
        yield app


def start(client: Any, forum: Any, **changes: Any) -> Any:
    return client.post(f"/api/v1/forums/{forum.slug}/signups", json={**LISTENER, **changes})


def test_the_code_flow_end_to_end_through_verify(client, app, fake):
    assert app.config["VERIFY_BACKEND"] == "twilio"
    forum = make_forum()
    started = start(client, forum)
    assert started.status_code == 202, started.get_json()
    vid = started.get_json()["verification_id"]
    sent = fake.rest("POST", f"/v2/Services/{VERIFY_SERVICE_SID}/Verifications")
    # Verify texts its code in the signup's language (the forum's first here).
    assert [r["form"] for r in sent] == [{"To": E164, "Channel": "sms", "Locale": "en"}]
    assert db.session.get(Verification, vid).code_hash is None  # Twilio keeps the code
    assert db.session.query(Signup).count() == 0
    assert fake.messages == []  # Verify sent the code; phonein texted nothing

    # The send's SID is not written by a transaction of its own: the proof records it.
    assert db.session.get(Verification, vid).provider_sid is None
    code = fake.verify_code(E164)
    wrong = "000000" if code != "000000" else "111111"
    refused = client.post(f"/api/v1/verifications/{vid}", json={"code": wrong})
    assert refused.status_code == 422 and "code" in refused.get_json()["error"]["fields"]
    assert db.session.get(Verification, vid).provider_sid is None
    verify_sid = fake.verifications[(VERIFY_SERVICE_SID, E164)]["sid"]
    proved = client.post(f"/api/v1/verifications/{vid}", json={"code": code})
    assert proved.status_code == 201, proved.get_json()
    db.session.expire_all()
    assert verify_sid.startswith("VE")
    assert db.session.get(Verification, vid).provider_sid == verify_sid
    assert proved.get_json()["phone"] == E164
    checks = fake.rest("POST", "/VerificationCheck")
    assert [r["form"]["Code"] for r in checks] == [wrong, code]
    assert [m.kind for m in db.session.query(Message)] == ["confirmation"]


def test_call_me_instead_asks_verify_for_a_call(client, app, fake):
    forum = make_forum()
    vid = start(client, forum).get_json()["verification_id"]
    again = client.post(f"/api/v1/verifications/{vid}/resend", json={"channel": "call"})
    assert again.status_code == 202 and again.get_json()["channel"] == "call"
    channels = [r["form"]["Channel"] for r in fake.rest("POST", "/Verifications")]
    assert channels == ["sms", "call"]


def test_a_landline_gets_its_code_by_a_call(client, app, fake):
    forum = make_forum()
    landline = {"phone": "+44 20 7946 0000", "sms_consent": False}
    started = start(client, forum, **landline)
    assert started.status_code == 202 and started.get_json()["channel"] == "call"
    assert fake.rest("POST", "/Verifications")[0]["form"]["Channel"] == "call"


@pytest.mark.parametrize(
    ("error", "status", "field"),
    [
        (60200, 422, "phone"),  # invalid parameter
        (60205, 422, "channel"),  # SMS to a landline: ask for a call
        (60410, 422, "phone"),  # blocked by Twilio's fraud rules
        (60203, 429, None),  # max send attempts
    ],
)
def test_each_verify_error_gets_a_clear_answer(client, app, fake, error, status, field):
    fake.faults.verify_errors[E164] = error
    forum = make_forum()
    response = start(client, forum)
    assert response.status_code == status, response.get_json()
    body = response.get_json()["error"]
    assert body["message"]
    if field:
        assert field in body["fields"]
    # Nothing is kept of a signup whose code could not be sent.
    assert db.session.query(Verification).count() == 0
    assert db.session.query(Signup).count() == 0


def test_verify_forgetting_the_code_is_404_and_its_check_limit_429(client, app, fake):
    forum = make_forum()
    vid = start(client, forum).get_json()["verification_id"]
    # Twilio forgot it (expired there): the check is 404, not a wrong code.
    fake.verifications.clear()
    assert client.post(f"/api/v1/verifications/{vid}", json={"code": "123456"}).status_code == 404

    other = start(client, forum, phone="+44 7400 123457").get_json()["verification_id"]
    code = fake.verify_code("+447400123457")
    wrong = "000000" if code != "000000" else "111111"
    answers = [
        client.post(f"/api/v1/verifications/{other}", json={"code": wrong}).status_code
        for _ in range(6)
    ]
    assert answers == [422] * 5 + [429]


def test_twilio_verify_sends_are_limited_per_number_too(client, app, fake):
    forum = make_forum()
    vid = start(client, forum).get_json()["verification_id"]
    answers = [
        client.post(f"/api/v1/verifications/{vid}/resend", json={}).status_code for _ in range(5)
    ]
    assert answers == [202] * 4 + [429]
    assert len(fake.rest("POST", "/Verifications")) == 5


def test_a_signup_whose_transaction_fails_to_commit_sends_no_code(client, app, fake, monkeypatch):
    """The code leaves only once the signup's transaction has committed (after_commit)."""
    forum = make_forum()
    real_commit = db.session.commit
    failures = []

    def commit_fails_once() -> None:
        if not failures:
            failures.append(True)
            raise sa.exc.OperationalError("COMMIT", {}, Exception("connection lost"))
        real_commit()

    monkeypatch.setattr(db.session, "commit", commit_fails_once)
    response = start(client, forum)
    monkeypatch.undo()

    assert failures and response.status_code == 503, response.get_data(as_text=True)
    assert fake.rest("POST", "/Verifications") == []
    assert db.session.query(Verification).count() == 0
    # The same signup once the database commits again: one code, to the number.
    again = start(client, forum)
    assert again.status_code == 202
    assert [r["form"]["To"] for r in fake.rest("POST", "/Verifications")] == [E164]
