"""The proof-of-work on signups (PHONEIN_CHALLENGE=pow): issued, solved once, refused otherwise."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from phonein.extensions import db
from phonein.models import Verification

from .conftest import make_forum

LISTENER = {
    "name": "Dana Whitfield",
    "location": "Newark, NJ, USA",
    "phone": "+1 201 555 0211",
    "question": "What about buses?",
    "sms_consent": True,
}


@pytest.fixture
def app(make_app: Any) -> Iterator[Any]:
    app = make_app(CHALLENGE="pow", VERIFY="sms")
    with app.app_context():
        yield app


def solve(client: Any) -> dict[str, Any]:
    """Solve a challenge the way the browser's script does."""
    c = client.get("/api/v1/challenge").get_json()
    for n in range(c["maxnumber"] + 1):
        if hashlib.sha256(f"{c['salt']}{n}".encode()).hexdigest() == c["challenge"]:
            return {k: c[k] for k in ("algorithm", "challenge", "salt", "signature")} | {
                "number": n
            }
    raise AssertionError("unsolvable challenge")


def url(forum: Any) -> str:
    return f"/api/v1/forums/{forum.slug}/signups"


def test_a_signup_without_a_solution_is_400_naming_challenge(client, app):
    forum = make_forum()
    response = client.post(url(forum), json=LISTENER)
    assert response.status_code == 400
    assert "challenge" in response.get_json()["error"]["fields"]
    assert db.session.query(Verification).count() == 0


def test_a_solution_is_accepted_once(client, app):
    forum = make_forum()
    solution = solve(client)
    assert client.post(url(forum), json={**LISTENER, "challenge": solution}).status_code == 202
    again = client.post(url(forum), json={**LISTENER, "challenge": solution})
    assert again.status_code == 400 and "used" in again.get_json()["error"]["message"]
    # The browser's form sends base64 of the JSON, as ALTCHA does.
    encoded = base64.b64encode(json.dumps(solve(client)).encode()).decode()
    assert client.post(url(forum), json={**LISTENER, "challenge": encoded}).status_code == 202


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: s | {"number": s["number"] + 1},  # not the solution
        lambda s: s | {"signature": "0" * 64},  # not issued here
        lambda s: s | {"salt": s["salt"].replace("expires=", "expires=1")},  # expiry moved
        lambda s: s | {"algorithm": "SHA-1"},
        lambda s: "not base64 at all!",
    ],
)
def test_a_wrong_or_forged_solution_is_400(client, app, tamper):
    forum = make_forum()
    response = client.post(url(forum), json={**LISTENER, "challenge": tamper(solve(client))})
    assert response.status_code == 400
    assert "challenge" in response.get_json()["error"]["fields"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("signature", "é" * 64),  # hmac.compare_digest raises on non-ASCII text
        ("challenge", "é" * 64),
        ("salt", "\ud800?expires=9999999999&"),  # a lone surrogate cannot be hashed
    ],
)
def test_a_solution_with_text_never_issued_is_400_not_500(client, app, field, value):
    forum = make_forum()
    # Base64 of the JSON, as the form sends it: the lone surrogate survives in the escape.
    solution = base64.b64encode(json.dumps(solve(client) | {field: value}).encode()).decode()
    api = client.post(url(forum), json={**LISTENER, "challenge": solution})
    assert api.status_code == 400, api.get_data(as_text=True)[:300]
    assert "challenge" in api.get_json()["error"]["fields"]
    form = {**LISTENER, "sms_consent": "y", "challenge": solution}
    page = client.post(f"/forums/{forum.slug}", data=form)
    assert page.status_code == 400
    assert db.session.query(Verification).count() == 0


def test_an_expired_challenge_is_refused(make_app):
    app = make_app(CHALLENGE="pow", CHALLENGE_SECONDS=-1)
    with app.app_context():
        client = app.test_client()
        forum = make_forum()
        response = client.post(url(forum), json={**LISTENER, "challenge": solve(client)})
        assert response.status_code == 400
        assert "expired" in response.get_json()["error"]["message"]


def test_a_refused_signup_does_not_spend_its_solution(client, app):
    forum = make_forum()
    solution = solve(client)
    bad = client.post(url(forum), json={**LISTENER, "phone": "12", "challenge": solution})
    assert bad.status_code == 422
    assert client.post(url(forum), json={**LISTENER, "challenge": solution}).status_code == 202


def test_the_form_carries_the_challenge_and_refuses_without_it(client, app):
    forum = make_forum()
    page = client.get(f"/forums/{forum.slug}").get_data(as_text=True)
    assert 'id="challenge"' in page and "pow.js" in page
    form = {**LISTENER, "sms_consent": "y"}
    refused = client.post(f"/forums/{forum.slug}", data=form)
    assert refused.status_code == 400 and "anti-spam check" in refused.get_data(as_text=True)
    encoded = base64.b64encode(json.dumps(solve(client)).encode()).decode()
    accepted = client.post(f"/forums/{forum.slug}", data={**form, "challenge": encoded})
    assert accepted.status_code == 303 and "/verify/" in accepted.headers["Location"]


def test_the_challenge_endpoint_is_in_the_openapi_document(client, app):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "get" in spec["paths"]["/api/v1/challenge"]
    signup = spec["paths"]["/api/v1/forums/{slug}/signups"]["post"]
    assert "400" in signup["responses"]


def test_spent_solutions_past_their_expiry_are_deleted_once_a_minute(client, app, monkeypatch):
    from datetime import UTC, datetime, timedelta

    from phonein import challenge
    from phonein.models import ChallengeUse

    forum = make_forum()
    old = datetime.now(UTC) - timedelta(hours=1)

    def expired(name: str) -> None:
        db.session.add(ChallengeUse(challenge=name * 64, expires_at=old))
        db.session.commit()

    def left() -> set[str]:
        db.session.expire_all()
        return {use.challenge for use in db.session.query(ChallengeUse)}

    monkeypatch.setattr(challenge, "_cleanup_due", datetime.min.replace(tzinfo=UTC))
    expired("a")
    assert client.post(url(forum), json={**LISTENER, "challenge": solve(client)}).status_code == 202
    assert "a" * 64 not in left() and len(left()) == 1  # the expired use went, the new one stays
    expired("b")
    second = {**LISTENER, "phone": "+1 201 555 0212", "challenge": solve(client)}
    assert client.post(url(forum), json=second).status_code == 202
    assert "b" * 64 in left()  # not due yet: kept until the next minute
    monkeypatch.setattr(challenge, "_cleanup_due", challenge._cleanup_due - timedelta(minutes=1))
    third = {**LISTENER, "phone": "+1 201 555 0213", "challenge": solve(client)}
    assert client.post(url(forum), json=third).status_code == 202
    assert "b" * 64 not in left() and len(left()) == 3
