"""The screening page and its forms: one click per decision, with and without JavaScript.

Without JavaScript each form posts and comes back to the page (a redirect and a flash);
static/screening.js sends the same forms asking for JSON and swaps the cards it gets back.
"""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from phonein.extensions import db
from phonein.live import queue
from phonein.models import Signup
from phonein.times import utcnow

from .conftest import login, make_forum, make_signup, make_user

JSON = {"Accept": "application/json"}


def _status(signup_id: int) -> str:
    db.session.expire_all()
    return db.session.scalar(sa.select(Signup.status).where(Signup.id == signup_id)) or ""


def _card(page: str, signup_id: int) -> str:
    match = re.search(rf'<article[^>]*id="signup-{signup_id}".*?</article>', page, re.S)
    assert match, f"no card for signup {signup_id}"
    return match.group(0)


def test_the_page_shows_each_decision_as_it_is(client, app):
    forum = make_forum()
    approved = make_signup(forum, status="approved", name="Amal حداد", location="بيروت")
    queued = make_signup(forum, status="queued")
    pending = make_signup(forum, timezone="Asia/Tokyo", question="سؤال؟")
    login(client)
    page = client.get(f"/producer/forums/{forum.slug}/signups").get_data(as_text=True)

    # The old box said "—" for someone approved; the card says what they are.
    assert "Decision: <span" in _card(page, approved.id)
    assert ">Approved</span>" in _card(page, approved.id)
    assert "Queued · number 1 in the queue" in _card(page, queued.id)
    assert ">Not screened yet</span>" in _card(page, pending.id)
    # Listener text is isolated for bidirectional display.
    card = _card(page, approved.id)
    assert "<bdi>Amal حداد</bdi>" in card and '<bdi class="location">بيروت</bdi>' in card
    assert '<div class="text" dir="auto">سؤال؟</div>' in _card(page, pending.id)
    # Their own wall clock, and when they signed up: relative and absolute.
    before = utcnow()
    clock = re.search(r'data-zone="Asia/Tokyo">([^<]+)</span>', _card(page, pending.id))
    assert clock, "no wall clock for a listener whose zone is known"
    tokyo = ZoneInfo("Asia/Tokyo")
    # The minute may turn between rendering the page and reading the clock here.
    assert clock.group(1) in {
        f"{(before + timedelta(minutes=m)).astimezone(tokyo):%a %H:%M}" for m in (-1, 0, 1)
    }
    assert "just now</time>" in card and "GMT</span>)" in card
    # Buttons have names that say whom they act on; shortcuts are on the page.
    assert 'aria-keyshortcuts="Q">Approve and queue<span class="sr-only"> <bdi>Amal' in card
    assert "<kbd>J</kbd> / <kbd>K</kbd>" in page and 'role="status"' in page
    assert 'form="bulk"' in card and 'id="bulk"' in page


def test_bulk_approve_and_queue_without_javascript(client, app):
    forum = make_forum()
    first, second = make_signup(forum), make_signup(forum)
    already = make_signup(forum, status="queued", name="Bea")
    login(client)
    back = f"/producer/forums/{forum.slug}/signups?status=pending"
    response = client.post(
        f"/producer/forums/{forum.slug}/screen",
        data={
            "action": "queue",
            "signup_id": [str(first.id), str(second.id), str(already.id)],
            "back": back,
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"{back}#signup-{first.id}"
    assert [_status(first.id), _status(second.id)] == ["queued", "queued"]
    page = client.get(back).get_data(as_text=True)
    assert "2 signups approved and queued. Skipped 1: \u2068Bea\u2069 is already queued." in page


def test_bulk_decision_from_the_script_answers_json_with_the_new_cards(client, app):
    forum = make_forum()
    first, second = make_signup(forum), make_signup(forum, status="rejected")
    login(client)
    url = f"/producer/forums/{forum.slug}/screen"
    data = {"action": "approve", "signup_id": [str(first.id), str(second.id)]}
    answer = client.post(url, data=data, headers=JSON)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["message"] == "2 signups approved."
    assert body["changed"] == [first.id, second.id] and body["skipped"] == []
    assert f'id="signup-{first.id}"' in body["html"] and ">Approved</span>" in body["html"]

    again = client.post(url, data=data, headers=JSON).get_json()
    assert again["changed"] == []
    assert [s["reason"] for s in again["skipped"]] == ["already_approved"] * 2
    assert again["message"].startswith("Nothing changed. Skipped 2:")


def test_one_signup_by_its_own_buttons(client, app):
    forum = make_forum()
    signup = make_signup(forum, name="Kenji")
    login(client)
    body = client.post(
        f"/producer/forums/{forum.slug}/screen",
        data={"action": "queue", "signup_id": str(signup.id)},
        headers=JSON,
    ).get_json()
    # Listener text in a plain-text message is isolated, as <bdi> would in markup.
    assert body["message"] == "\u2068Kenji\u2069: approved and queued."
    assert [s.id for s in queue.snapshot(forum).waiting] == [signup.id]


def test_bad_bulk_requests_say_what_to_do(client, app):
    forum = make_forum()
    signup = make_signup(forum)
    login(client)
    url = f"/producer/forums/{forum.slug}/screen"
    none = client.post(url, data={"action": "approve"}, headers=JSON)
    assert none.status_code == 422
    assert none.get_json()["error"]["message"] == "Tick at least one signup first (or press x)."
    bad = client.post(url, data={"action": "maybe", "signup_id": str(signup.id)}, headers=JSON)
    assert bad.status_code == 422 and "action" in bad.get_json()["error"]["fields"]
    junk = client.post(url, data={"action": "approve", "signup_id": "1e9"}, headers=JSON)
    assert junk.status_code == 422
    huge = client.post(url, data={"action": "approve", "signup_id": "9" * 40}, headers=JSON)
    assert huge.status_code == 422
    # Without the script: back to the page with the message.
    page = client.post(url, data={"action": "approve"}, follow_redirects=True)
    assert "Tick at least one signup first" in page.get_data(as_text=True)
    assert _status(signup.id) == "pending"


def test_stance_and_rating_are_one_click_each_and_a_second_click_clears(client, app):
    forum = make_forum()
    signup = make_signup(forum)
    login(client)
    url = f"/producer/signups/{signup.id}/screen"
    client.post(url, data={"rating": "4"}, headers=JSON)
    body = client.post(url, data={"stance": "against"}, headers=JSON).get_json()
    db.session.refresh(signup)
    assert (signup.stance, signup.rating, signup.status) == ("against", 4, "pending")
    card = body["html"]
    # The pressed stance sends "" so that pressing it again clears it.
    assert 'name="stance" value="" aria-pressed="true" data-focus-key="stance-against"' in card
    assert 'name="rating" value="" aria-pressed="true" aria-label="4 of 5"' in card
    client.post(url, data={"stance": ""}, headers=JSON)
    client.post(url, data={"notes": "Good on buses"}, headers=JSON)
    db.session.refresh(signup)
    assert (signup.stance, signup.rating, signup.notes) == (None, 4, "Good on buses")
    bad = client.post(url, data={"rating": "9"}, headers=JSON)
    assert bad.status_code == 422 and bad.get_json()["error"]["fields"] == {
        "rating": "Give a whole number from 1 to 5."
    }


def test_screening_a_caller_on_air_is_refused_politely(client, app):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=5), now=now)
    on_air = make_signup(forum, status="on_air", name="Lola")
    login(client)
    body = client.post(
        f"/producer/forums/{forum.slug}/screen",
        data={"action": "reject", "signup_id": str(on_air.id)},
        headers=JSON,
    ).get_json()
    assert body["message"] == (
        "Nothing changed. Skipped 1: \u2068Lola\u2069 is on air: only signups not yet on air "
        "can be screened."
    )
    refused = client.post(
        f"/producer/signups/{on_air.id}/screen", data={"decision": "reject"}, headers=JSON
    )
    assert refused.status_code == 409
    assert _status(on_air.id) == "on_air"


def test_presenters_cannot_screen(client, app):
    forum = make_forum()
    signup = make_signup(forum)
    login(client, "presenter")
    response = client.post(
        f"/producer/forums/{forum.slug}/screen",
        data={"action": "approve", "signup_id": str(signup.id)},
    )
    assert response.status_code == 403
    assert _status(signup.id) == "pending"


def test_without_the_csrf_token_nothing_changes(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        forum = make_forum()
        signup = make_signup(forum)
        client = app.test_client()
        login_page = client.get("/producer/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page)
        user, _ = make_user("producer")
        assert token
        logged_in = client.post(
            "/producer/login",
            data={
                "email": user.email,
                "password": "correct horse battery",
                "csrf_token": token.group(1),
            },
        )
        assert logged_in.status_code == 302
        refused = client.post(
            f"/producer/forums/{forum.slug}/screen",
            data={"action": "approve", "signup_id": str(signup.id)},
            headers=JSON,
        )
        assert refused.status_code == 400
        assert refused.get_json()["error"]["code"] == "csrf_failed"
        assert _status(signup.id) == "pending"


def test_one_click_stance_without_javascript_comes_back_to_the_card(client, app):
    forum = make_forum()
    signup = make_signup(forum, name="Noor", phone="+44 7400 900123")
    login(client)
    back = f"/producer/forums/{forum.slug}/signups?q=07400+900123"
    # Search as the producer types a number: the national form finds the E.164 one.
    page = client.get(back).get_data(as_text=True)
    assert f'id="signup-{signup.id}"' in page and f'name="back" value="{back}"' in page
    response = client.post(
        f"/producer/signups/{signup.id}/screen", data={"stance": "for", "back": back}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"{back}#signup-{signup.id}"
    shown = client.get(back).get_data(as_text=True)
    assert "Saved \u2068Noor\u2069 (not screened yet)." in shown
    assert 'value="" aria-pressed="true" data-focus-key="stance-for"' in _card(shown, signup.id)
    # A "back" elsewhere is not followed.
    away = client.post(
        f"/producer/signups/{signup.id}/screen", data={"rating": "2", "back": "//evil.example/"}
    )
    assert away.headers["Location"].startswith(f"/producer/forums/{forum.slug}/signups")
