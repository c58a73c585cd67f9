"""Signing up through the API, screening, and the signup list."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from phonein import signups as S
from phonein.errors import Conflict
from phonein.extensions import db
from phonein.models import Signup
from phonein.times import utcnow

from .conftest import change_signup_elsewhere, make_forum, make_signup

US_LISTENER = {
    "name": "Dana Whitfield",
    "location": "Newark, NJ, USA",
    "phone": "(201) 555-0211",
    "question": "First paragraph.\n\nSecond paragraph.",
    "timezone": "America/New_York",
    "sms_consent": True,
    "publish_consent": True,
}


def signup_url(forum) -> str:  # type: ignore[no-untyped-def]
    return f"/api/v1/forums/{forum.slug}/signups"


def test_signup_returns_e164_and_a_manage_link_that_works(client, app):
    forum = make_forum()
    response = client.post(signup_url(forum), json=US_LISTENER)
    assert response.status_code == 201
    body = response.get_json()
    assert body["phone"] == "+12015550211"  # a US number, not read as British
    assert body["status"] == "pending"
    assert body["forum"] == forum.slug
    assert body["manage_url"].startswith("http://phonein.test/manage/")
    # The link is exchanged for a cookie and a token-free page.
    page = client.get(body["manage_url"].removeprefix("http://phonein.test"), follow_redirects=True)
    assert page.status_code == 200
    assert "Dana Whitfield" in page.get_data(as_text=True)
    signup = db.session.get(Signup, body["id"])
    assert signup.question == "First paragraph.\n\nSecond paragraph."
    assert signup.timezone == "America/New_York"
    assert signup.country == "US"


def test_same_phone_without_proof_changes_nothing(client, app):
    # PHONEIN_VERIFY=off (the tests' default): only a proof of the number may change a
    # signup (tests/test_verification.py), so a second signup with it changes nothing.
    forum = make_forum()
    first = client.post(signup_url(forum), json=US_LISTENER).get_json()
    again = dict(US_LISTENER, phone="+1 201 555 0211", question="A better question")
    response = client.post(signup_url(forum), json=again)
    assert response.status_code == 202
    assert "manage_url" not in response.get_json()
    assert db.session.query(Signup).count() == 1
    db.session.expire_all()
    assert db.session.get(Signup, first["id"]).question == US_LISTENER["question"]
    # The private link still works.
    old = first["manage_url"].removeprefix("http://phonein.test")
    assert app.test_client().get(old, follow_redirects=True).status_code == 200


def test_simultaneous_signups_with_one_phone_make_one_row(make_app):
    app = make_app()
    with app.app_context():
        forum = make_forum()
        slug = forum.slug
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def post(i: int) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            f"/api/v1/forums/{slug}/signups", json=dict(US_LISTENER, name=f"Dana {i}")
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(statuses) == [201] + [202] * 7
    with app.app_context():
        assert db.session.query(Signup).count() == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"phone": "12345"}, "phone"),
        ({"phone": "not a number"}, "phone"),
        ({"name": ""}, "name"),
        ({"name": "x" * 81}, "name"),
        ({"location": "   "}, "location"),
        ({"question": "x" * 5001}, "question"),
        ({"email": "nobody"}, "email"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"country": "ZZ"}, "country"),
    ],
)
def test_invalid_fields_get_422_naming_the_field(client, app, changes, field):
    forum = make_forum()
    response = client.post(signup_url(forum), json=dict(US_LISTENER, **changes))
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"]
    assert field in error["message"]


@pytest.mark.parametrize(
    ("phone", "extra", "expected"),
    [
        ("(201) 555-0211", {"country": "US", "timezone": "Europe/London"}, "+12015550211"),
        ("07400 123456", {"timezone": None}, "+447400123456"),
        ("06 12 34 56 78", {"timezone": "Europe/Paris"}, "+33612345678"),
        ("+81 90-1234-5678", {"country": "GB"}, "+819012345678"),
        ("00 33 6 12 34 56 78", {"timezone": "Europe/London"}, "+33612345678"),
    ],
)
def test_phone_region_comes_from_country_then_zone_then_default(
    client, app, phone, extra, expected
):
    forum = make_forum()
    body = dict(US_LISTENER, phone=phone, **extra)
    response = client.post(signup_url(forum), json=body)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["phone"] == expected


def test_default_region_setting_is_used_last(make_app):
    app = make_app(DEFAULT_REGION="US")
    with app.app_context():
        forum = make_forum()
        body = dict(US_LISTENER, timezone=None)
        response = app.test_client().post(signup_url(forum), json=body)
        assert response.get_json()["phone"] == "+12015550211"


def test_signups_close_at_signup_closes_at(client, app):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=90), now=now)  # ended 30 min ago
    response = client.post(signup_url(forum), json=US_LISTENER)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "signups_closed"


def test_signups_accepted_while_live_until_they_close(client, app):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=10), now=now)
    assert client.post(signup_url(forum), json=US_LISTENER).status_code == 201


def test_unknown_forum_is_404_json(client, app):
    response = client.post("/api/v1/forums/nope/signups", json=US_LISTENER)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_signup_list_needs_a_producer(client, app, presenter):
    forum = make_forum()
    assert client.get(signup_url(forum)).status_code == 401
    assert client.get(signup_url(forum), headers=presenter).status_code == 403
    assert (
        client.get(signup_url(forum), headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    assert client.get(signup_url(forum), headers={"Authorization": "Basic x"}).status_code == 401


def test_list_filters_by_status_and_searches_text(client, app, producer):
    forum = make_forum()
    make_signup(forum, name="Mariana", location="Porto, Portugal", question="Trams?")
    make_signup(
        forum,
        name="Kenji",
        location="Osaka",
        question="What about 100% of bikes?",
        status="approved",
    )
    make_signup(forum, name="Grace", location="Nairobi", question="Matatus?")
    url = signup_url(forum)
    assert client.get(url, headers=producer).get_json()["total"] == 3
    approved = client.get(url + "?status=approved", headers=producer).get_json()
    assert [s["name"] for s in approved["items"]] == ["Kenji"]
    by_place = client.get(url + "?q=porto", headers=producer).get_json()
    assert [s["name"] for s in by_place["items"]] == ["Mariana"]
    by_text = client.get(url + "?q=100%25", headers=producer).get_json()
    assert [s["name"] for s in by_text["items"]] == ["Kenji"]
    paged = client.get(url + "?per_page=2&page=2", headers=producer).get_json()
    assert paged["total"] == 3 and len(paged["items"]) == 1
    assert client.get(url + "?status=bogus", headers=producer).status_code == 422
    assert client.get(url + "?page=0", headers=producer).status_code == 422


def test_screening_sets_decision_stance_rating_notes(client, app, producer):
    forum = make_forum()
    signup = make_signup(forum)
    url = f"/api/v1/signups/{signup.id}/screen"
    response = client.post(
        url,
        json={"decision": "approve", "stance": "for", "rating": 4, "notes": "Good"},
        headers=producer,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["stance"], body["rating"], body["notes"]) == (
        "approved",
        "for",
        4,
        "Good",
    )
    assert client.post(url, json={"rating": 9}, headers=producer).status_code == 422
    assert client.post(url, json={"decision": "maybe"}, headers=producer).status_code == 422
    assert (
        client.post(url, json={"decision": "reject"}, headers=producer).get_json()["status"]
        == "rejected"
    )
    got = client.get(f"/api/v1/signups/{signup.id}", headers=producer).get_json()
    assert got["status"] == "rejected" and got["stance"] == "for"


def test_withdrawn_signup_cannot_be_approved(client, app, producer):
    signup = make_signup(make_forum(), status="withdrawn")
    response = client.post(
        f"/api/v1/signups/{signup.id}/screen", json={"decision": "approve"}, headers=producer
    )
    assert response.status_code == 409


def test_a_signup_withdrawn_while_it_is_being_approved_stays_withdrawn(app):
    f = make_forum()
    s = make_signup(f)
    sid = s.id
    db.session.commit()
    signup = S.get(sid)
    change_signup_elsewhere(sid, status="withdrawn")
    with pytest.raises(Conflict):  # decided on the row as it is now, not as it was read
        S.screen(signup, {"decision": "approve"}, utcnow())
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(Signup, sid).status == "withdrawn"


def test_publish_needs_consent(client, app, producer):
    forum = make_forum()
    willing = make_signup(forum, status="done", publish_consent=True)
    unwilling = make_signup(forum, status="done", publish_consent=False)
    ok = client.post(
        f"/api/v1/signups/{willing.id}/publish",
        json={"published": True, "pull_quote": "Trams!", "order": 2},
        headers=producer,
    )
    assert ok.status_code == 200
    assert ok.get_json()["published"] is True and ok.get_json()["pull_quote"] == "Trams!"
    refused = client.post(
        f"/api/v1/signups/{unwilling.id}/publish", json={"published": True}, headers=producer
    )
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "no_publish_consent"
