"""The HTML pages: listeners' signup and manage link, producers' pages, the board."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from phonein import signups as S
from phonein.errors import Conflict
from phonein.extensions import db
from phonein.i18n import format_moment
from phonein.models import Forum, Message, Signup
from phonein.times import utcnow

from .conftest import (
    change_signup_elsewhere,
    login,
    make_forum,
    make_signup,
    make_user,
    manage_token,
)

FORM = {
    "name": "Dana Whitfield",
    "location": "Newark, NJ, USA",
    "country": "",
    "phone": "(201) 555-0211",
    "question": "First paragraph.\r\n\r\nSecond paragraph.",
    "timezone": "America/New_York",
    "sms_consent": "y",
    "publish_consent": "y",
}


def manage_path(response) -> str:  # type: ignore[no-untyped-def]
    location = response.headers["Location"]
    assert "/manage/" in location
    return location


def test_signup_form_to_confirmation_with_both_times_and_links(client, app):
    forum = make_forum(timezone="Europe/London", starts_at=utcnow() + timedelta(days=2))
    page = client.get(f"/forums/{forum.slug}").get_data(as_text=True)
    assert 'name="question"' in page and "Add to calendar" in page
    response = client.post(f"/forums/{forum.slug}", data=FORM)
    assert response.status_code == 303
    confirmation = client.get(manage_path(response)).get_data(as_text=True)
    assert "You are signed up" in confirmation
    assert "+1 201-555-0211" in confirmation
    # The forum's time and the listener's own, each named by its city (phonein.i18n).
    assert format_moment(forum.starts_at, "Europe/London", "en") in confirmation
    assert format_moment(forum.starts_at, "America/New_York", "en") in confirmation
    assert "(London Time)" in confirmation and "(New York Time)" in confirmation
    assert f"/forums/{forum.slug}/calendar.ics" in confirmation
    assert 'id="manage-link"' in confirmation
    signup = db.session.query(Signup).one()
    assert signup.phone == "+12015550211"
    assert signup.question == "First paragraph.\n\nSecond paragraph."


def test_invalid_form_shows_the_message_by_the_field(client, app):
    forum = make_forum()
    response = client.post(f"/forums/{forum.slug}", data={**FORM, "phone": "12"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "not a valid phone number" in page
    assert 'id="error-summary"' in page and 'href="#phone"' in page
    assert 'value="Dana Whitfield"' in page  # what they typed is kept
    assert db.session.query(Signup).count() == 0


def test_listener_text_is_escaped_everywhere(client, app, producer):
    forum = make_forum()
    evil = {**FORM, "name": "<b>Eve</b>", "question": "<script>alert(1)</script>"}
    response = client.post(f"/forums/{forum.slug}", data=evil)
    confirmation = client.get(manage_path(response)).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in confirmation
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in confirmation
    login(client)
    screening = client.get(f"/producer/forums/{forum.slug}/signups").get_data(as_text=True)
    assert "<script>alert(1)" not in screening and "&lt;b&gt;Eve&lt;/b&gt;" in screening


def test_closed_signups_get_a_polite_409(client, app):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(hours=2), now=now)
    response = client.post(f"/forums/{forum.slug}", data=FORM)
    assert response.status_code == 409
    assert "Signups have closed" in response.get_data(as_text=True)
    page = client.get(f"/forums/{forum.slug}").get_data(as_text=True)
    assert "This debate is now closed" in page and 'name="question"' not in page


def test_manage_change_withdraw_and_erase(client, app):
    forum = make_forum()
    path = manage_path(client.post(f"/forums/{forum.slug}", data=FORM))
    changed = client.post(
        path,
        data={
            "name": "Dana W.",
            "location": "Hoboken, NJ",
            "question": "New text",
            "sms_consent": "y",
        },
    )
    assert changed.status_code == 303
    signup = db.session.query(Signup).one()
    db.session.refresh(signup)
    assert (signup.name, signup.question, signup.publish_consent) == ("Dana W.", "New text", False)
    assert client.post(path + "/withdraw").status_code == 303
    db.session.refresh(signup)
    assert signup.status == "withdrawn"
    erased = client.post(path + "/erase")
    assert erased.status_code == 200 and "erased" in erased.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.query(Signup).count() == 0
    assert client.get(path).status_code == 404


def test_a_queued_listener_cannot_edit_but_can_withdraw(client, app):
    forum = make_forum()
    path = manage_path(client.post(f"/forums/{forum.slug}", data=FORM))
    signup = db.session.query(Signup).one()
    signup.status = "approved"
    db.session.commit()
    from phonein.live import queue

    queue.place(forum.slug, signup.id, None, utcnow())
    db.session.commit()
    refused = client.post(path, data={"name": "X", "location": "Y", "question": "Z"})
    assert refused.status_code == 409
    assert client.post(path + "/withdraw").status_code == 303
    db.session.refresh(signup)
    assert signup.status == "withdrawn" and signup.queue_key is None


def test_a_listener_edit_is_refused_if_the_signup_was_queued_meanwhile(app):
    f = make_forum()
    s = make_signup(f)
    sid = s.id
    signup = S.by_manage_token(manage_token(f, s))  # listener's POST loads it (pending)
    # The producer approves and queues it meanwhile.
    change_signup_elsewhere(sid, status="queued", queue_key=1 << 20)
    values = S.validate_listener(
        {
            "name": s.name,
            "location": s.location,
            "question": "UNSCREENED TEXT",
            "sms_consent": True,
            "publish_consent": True,
        },
        default_region="GB",
    )
    with pytest.raises(Conflict):  # queued meanwhile: the edit is refused, not slipped in
        S.change_by_listener(signup, values, utcnow())
    db.session.rollback()
    db.session.expire_all()
    row = db.session.get(Signup, sid)
    assert (row.status, row.question) == ("queued", s.question)


def test_bad_manage_tokens_are_404(client, app):
    assert client.get("/manage/not-a-real-token").status_code == 404
    assert client.get("/manage/" + "x" * 500).status_code == 404


def test_csrf_is_enforced_on_the_form(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        forum = make_forum()
        client = app.test_client()
        without = client.post(f"/forums/{forum.slug}", data=FORM)
        assert without.status_code == 400
        assert db.session.query(Signup).count() == 0
        page = client.get(f"/forums/{forum.slug}").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        with_token = client.post(f"/forums/{forum.slug}", data={**FORM, "csrf_token": token})
        assert with_token.status_code == 303


def test_signup_posts_are_rate_limited_per_client(make_app):
    app = make_app(RATELIMIT_ENABLED=True, SIGNUP_RATE_LIMIT="3/minute")
    with app.app_context():
        forum = make_forum()
        client = app.test_client()
        url = f"/api/v1/forums/{forum.slug}/signups"
        body = {k: v for k, v in FORM.items() if k not in ("sms_consent", "publish_consent")}
        codes = [client.post(url, json=body).status_code for _ in range(3)]
        assert codes == [201, 202, 202]
        limited = client.post(url, json=body)
        assert limited.status_code == 429
        assert limited.get_json()["error"]["code"] == "rate_limited"
        # The page shares the budget; reading pages is not limited.
        assert client.post(f"/forums/{forum.slug}", data=FORM).status_code == 429
        assert client.get(f"/forums/{forum.slug}").status_code == 200
        other = app.test_client()
        other_ip = {"REMOTE_ADDR": "10.9.8.7"}
        assert other.post(url, json=body, environ_base=other_ip).status_code == 202


def test_login_attempts_are_rate_limited(make_app):
    app = make_app(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="2/minute")
    with app.app_context():
        client = app.test_client()
        wrong = {"email": "who@example.org", "password": "guess"}
        assert [client.post("/producer/login", data=wrong).status_code for _ in range(2)] == [
            401,
            401,
        ]
        assert client.post("/producer/login", data=wrong).status_code == 429
        assert client.get("/producer/login").status_code == 200


def test_calendar_file(client, app):
    forum = make_forum(title='Water, wells; and "pumps"')
    response = client.get(f"/forums/{forum.slug}/calendar.ics")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    text = response.get_data(as_text=True)
    assert "BEGIN:VEVENT" in text
    assert f"DTSTART:{forum.starts_at:%Y%m%dT%H%M%S}Z" in text
    assert 'SUMMARY:Phone-in: Water\\, wells\\; and "pumps"' in text


def test_producer_pages_need_login_and_role(client, app):
    forum = make_forum()
    assert client.get("/producer/").status_code == 302
    assert client.get(f"/board/{forum.slug}").status_code == 302
    login(client, "presenter")
    assert client.get(f"/board/{forum.slug}").status_code == 200
    assert client.get(f"/producer/forums/{forum.slug}/signups").status_code == 403


def test_login_rejects_bad_passwords_and_foreign_redirects(client, app):
    user, _ = make_user("producer")
    bad = client.post("/producer/login", data={"email": user.email, "password": "nope"})
    assert bad.status_code == 401 and "Wrong email or password" in bad.get_data(as_text=True)
    good = client.post(
        "/producer/login?next=//evil.example/",
        data={"email": user.email, "password": "correct horse battery"},
    )
    assert good.headers["Location"] == "/producer/"


@pytest.mark.parametrize(
    "target",
    ["/producer/%0d%0aSet-Cookie:%20x=1", "/producer/%0aX", "/board%09x", "/producer/%00"],
)
def test_login_with_control_characters_in_next_lands_home_not_on_a_500(client, app, target):
    """urlsplit drops CR, LF and tab, so such a path passed the same-site check and the
    redirect's Location header then refused it (ValueError: a 500 after a good login)."""
    user, _ = make_user("producer")
    good = client.post(
        f"/producer/login?next={target}",
        data={"email": user.email, "password": "correct horse battery"},
    )
    assert good.status_code == 302
    assert good.headers["Location"] == "/producer/"


def test_producer_screens_from_the_page(client, app):
    forum = make_forum()
    signup = make_signup(forum, name="Kenji", location="Osaka")
    login(client)
    page = client.get(f"/producer/forums/{forum.slug}/signups?q=osaka")
    assert "Kenji" in page.get_data(as_text=True)
    response = client.post(
        f"/producer/signups/{signup.id}/screen",
        data={"decision": "approve", "stance": "against", "rating": "4", "notes": "Clear"},
    )
    assert response.status_code == 302
    db.session.refresh(signup)
    assert (signup.status, signup.stance, signup.rating, signup.notes) == (
        "approved",
        "against",
        4,
        "Clear",
    )
    filtered = client.get(f"/producer/forums/{forum.slug}/signups?status=pending")
    assert f'id="signup-{signup.id}"' not in filtered.get_data(as_text=True)


def test_producer_creates_and_edits_a_forum_from_the_page(client, app):
    login(client)
    starts = (utcnow() + timedelta(days=4)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        "/producer/forums/new",
        data={
            "title": "Fishing rights",
            "timezone": "Asia/Manila",
            "starts_at": starts,
            "duration_minutes": "30",
            "reminder_offsets": ["3600", "600"],
        },
    )
    assert response.status_code == 302
    body = client.get("/api/v1/forums/fishing-rights").get_json()
    assert body["timezone"] == "Asia/Manila" and body["reminder_offsets"] == [3600, 600]
    assert body["duration_minutes"] == 30
    bad = client.post(
        "/producer/forums/fishing-rights/edit",
        data={
            "title": "Fishing rights",
            "timezone": "Nowhere/Land",
            "starts_at": starts,
            "duration_minutes": "30",
            "reminder_offsets": "3600",
        },
    )
    assert bad.status_code == 422 and "Choose a time zone" in bad.get_data(as_text=True)


def test_a_forum_gone_live_early_can_still_be_edited_from_the_page(client):
    user, _ = make_user("producer")
    client.post("/producer/login", data={"email": user.email, "password": "correct horse battery"})
    f = make_forum()
    r = client.post(f"/producer/forums/{f.slug}/status", data={"status": "live"})
    db.session.expire_all()
    f = db.session.get(Forum, f.id)
    assert f.status == "live"
    form = client.get(f"/producer/forums/{f.slug}/edit").get_data(as_text=True)
    starts = re.search(r'name="starts_at"[^>]*value="([^"]+)"', form) or re.search(
        r'value="([^"]+)"[^>]*name="starts_at"', form
    )
    data = {
        "title": "Fixed typo",
        "timezone": f.timezone,
        "starts_at": starts.group(1),
        "duration_minutes": str(f.duration_minutes),
        "reminder_offsets": ["86400", "3600", "600"],
        "slug": f.slug,
    }
    r = client.post(f"/producer/forums/{f.slug}/edit", data=data)
    assert r.status_code == 302, re.sub(r"<[^>]+>", " ", r.get_data(as_text=True))[-1500:]


def test_resaving_the_edit_page_of_a_start_with_seconds_texts_no_move(client, producer):
    user, _ = make_user("producer")
    client.post("/producer/login", data={"email": user.email, "password": "correct horse battery"})
    start = (utcnow() + timedelta(days=2)).replace(microsecond=0, second=30)
    r = client.post(
        "/api/v1/forums",
        json={"title": "Seconds", "starts_at": start.isoformat(), "timezone": "UTC"},
        headers=producer,
    )
    slug = r.get_json()["slug"]
    f = db.session.scalars(sa.select(Forum).where(Forum.slug == slug)).one()
    make_signup(f)
    local = start.strftime("%Y-%m-%dT%H:%M")
    data = {
        "title": "Seconds (typo fixed)",
        "timezone": "UTC",
        "starts_at": local,
        "duration_minutes": "60",
        "reminder_offsets": ["86400", "3600", "600"],
        "slug": slug,
    }
    r = client.post(f"/producer/forums/{slug}/edit", data=data)
    assert r.status_code == 302
    n = db.session.scalar(
        sa.select(sa.func.count()).select_from(Message).where(Message.kind == "rescheduled")
    )
    assert n == 0


def test_resaving_the_edit_page_keeps_a_start_in_the_dst_fold(client):
    user, _ = make_user("producer")
    client.post("/producer/login", data={"email": user.email, "password": "correct horse battery"})
    # second 01:30 of the night the clocks go back (fold=1): 01:30 GMT
    start = datetime(2030, 10, 27, 1, 30, tzinfo=UTC)
    f = make_forum(starts_at=start, timezone="Europe/London")
    make_signup(f)
    form = client.get(f"/producer/forums/{f.slug}/edit").get_data(as_text=True)
    data = {
        "title": "Title edit",
        "timezone": "Europe/London",
        "starts_at": "2030-10-27T01:30",
        "duration_minutes": "60",
        "reminder_offsets": ["86400", "3600", "600"],
        "slug": f.slug,
    }
    assert "2030-10-27T01:30" in form
    r = client.post(f"/producer/forums/{f.slug}/edit", data=data)
    assert r.status_code == 302
    db.session.expire_all()
    f = db.session.get(Forum, f.id)
    assert f.starts_at == start


def test_queue_board_and_session_api_with_csrf(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        now = utcnow()
        forum = make_forum(starts_at=now - timedelta(minutes=1), now=now)
        signup = make_signup(forum, status="queued")
        client = app.test_client()
        page = client.get("/producer/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        user, _ = make_user("producer")
        client.post(
            "/producer/login",
            data={"email": user.email, "password": "correct horse battery", "csrf_token": token},
        )
        board = client.get(f"/producer/forums/{forum.slug}/queue").get_data(as_text=True)
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', board).group(1)
        # The board reads with the session, and acts only with the CSRF token.
        assert client.get(f"/api/v1/forums/{forum.slug}/queue").status_code == 200
        url = f"/api/v1/forums/{forum.slug}/queue/next"
        assert client.post(url).status_code == 400
        step = client.post(url, headers={"X-CSRFToken": csrf})
        assert step.status_code == 200 and step.get_json()["on_air"]["id"] == signup.id


def test_published_forum_shows_selection_and_balance(client, app, producer):
    forum = make_forum()
    chosen = make_signup(
        forum,
        name="Ingrid",
        location="Bergen, Norway",
        question="Nobody wants to go back.",
        status="done",
    )
    for stance in ("for", "for", "against", "neutral"):
        make_signup(forum, status="approved", stance=None)
        s = db.session.query(Signup).order_by(Signup.id.desc()).first()
        s.stance = stance
    make_signup(forum, publish_consent=False, status="done", name="Private Person")
    db.session.commit()
    client.post(
        f"/api/v1/signups/{chosen.id}/publish",
        json={"published": True, "pull_quote": "Shorter meetings"},
        headers=producer,
    )
    client.patch(f"/api/v1/forums/{forum.slug}", json={"status": "closed"}, headers=producer)
    closed = client.get(f"/forums/{forum.slug}").get_data(as_text=True)
    assert "This debate is now closed" in closed and "Nobody wants to go back." not in closed
    client.patch(f"/api/v1/forums/{forum.slug}", json={"status": "published"}, headers=producer)
    page = client.get(f"/forums/{forum.slug}").get_data(as_text=True)
    assert "This debate is now closed" in page
    # Listener-written name and place, each isolated for bidirectional display.
    assert "Nobody wants to go back." in page
    assert "<bdi>Ingrid</bdi>, <bdi>Bergen, Norway</bdi>" in page
    assert "Shorter meetings" in page
    assert "Private Person" not in page
    assert "<strong>2</strong> in favour" in page and "<strong>1</strong> against" in page
    # Ingrid's comment has no stance: the page does not claim the selection mirrors the balance.
    assert "reflect that balance" not in page and "not counted in the balance" in page


def test_the_public_balance_is_kept_a_while_and_counted_afresh_when_it_must_be(
    client, app, producer, monkeypatch
):
    from phonein import publication

    forum = make_forum()
    chosen = make_signup(forum, status="done")
    voices = [make_signup(forum, status="approved") for _ in range(2)]
    against = make_signup(forum, status="approved")
    for signup, stance in zip(
        (chosen, *voices, against), ("for", "for", "for", "against"), strict=True
    ):
        signup.stance = stance
    db.session.commit()
    client.post(f"/api/v1/signups/{chosen.id}/publish", json={"published": True}, headers=producer)
    for status in ("closed", "published"):
        client.patch(f"/api/v1/forums/{forum.slug}", json={"status": status}, headers=producer)
    url = f"/forums/{forum.slug}"
    assert "<strong>3</strong> in favour" in client.get(url).get_data(as_text=True)
    # A producer's late correction: the public page keeps the counts it had for a while…
    db.session.get(Signup, voices[0].id).stance = "against"
    db.session.commit()
    page = client.get(url).get_data(as_text=True)
    assert "<strong>3</strong> in favour" in page and "<strong>1</strong> against" in page
    # …the producers' own page counts afresh…
    staff = app.test_client()
    login(staff)
    report = staff.get(f"/producer/forums/{forum.slug}/publication").get_data(as_text=True)
    assert "for: <strong>2</strong>" in report and "against: <strong>2</strong>" in report
    # …and once the time is up, so does the public page.
    monkeypatch.setattr(publication, "PUBLIC_BALANCE_SECONDS", 0.0)
    page = client.get(url).get_data(as_text=True)
    assert "<strong>2</strong> in favour" in page and "<strong>2</strong> against" in page
    monkeypatch.setattr(publication, "PUBLIC_BALANCE_SECONDS", 3600.0)
    client.get(url)
    # A listener who withdraws leaves the count at once (the forum's queue version moves).
    S.withdraw(db.session.get(Signup, against.id), utcnow())
    db.session.commit()
    db.session.expire_all()  # as a new request reads the forum's row
    page = client.get(url).get_data(as_text=True)
    assert "<strong>2</strong> in favour" in page and "<strong>1</strong> against" in page


def test_a_listener_cannot_change_a_published_comment_by_the_manage_link(client, producer):
    f = make_forum()
    s = make_signup(f, status="approved")
    token = manage_token(f, s)
    f.status = "closed"
    f.closed_at = utcnow()
    db.session.commit()
    r = client.post(f"/api/v1/signups/{s.id}/publish", json={"published": True}, headers=producer)
    assert r.status_code == 200, r.get_json()
    client.patch(f"/api/v1/forums/{f.slug}", json={"status": "published"}, headers=producer)
    r = client.post(
        f"/manage/{token}",
        data={
            "name": s.name,
            "location": s.location,
            "question": "BUY CHEAP PILLS at spam.example",
            "publish_consent": "y",
        },
    )
    assert r.status_code == 409
    page = client.get(f"/forums/{f.slug}").get_data(as_text=True)
    assert "BUY CHEAP PILLS" not in page
