"""Forums in the API: create, read, change, lifecycle."""

from __future__ import annotations

from datetime import timedelta

from phonein import forums
from phonein.extensions import db
from phonein.models import Forum
from phonein.times import rfc3339, utcnow

from .conftest import make_forum, make_signup


def new_forum(**extra):  # type: ignore[no-untyped-def]
    body = {
        "title": "Water for the Sahel",
        "question": "Who should pay for new wells?",
        "starts_at": rfc3339(utcnow() + timedelta(days=3)),
        "duration_minutes": 45,
        "timezone": "Africa/Dakar",
    }
    body.update(extra)
    return body


def test_create_forum_with_defaults(client, app, producer):
    response = client.post("/api/v1/forums", json=new_forum(), headers=producer)
    assert response.status_code == 201, response.get_json()
    forum = response.get_json()
    assert forum["slug"] == "water-for-the-sahel"
    assert forum["status"] == "open"
    assert forum["reminder_offsets"] == [86400, 3600, 600]
    assert forum["signup_closes_at"] == forum["ends_at"]
    assert forum["starts_at"].endswith("Z")
    assert forum["counts"]["total"] == 0
    again = client.post("/api/v1/forums", json=new_forum(), headers=producer).get_json()
    assert again["slug"] == "water-for-the-sahel-2"


def test_create_forum_needs_a_producer_and_valid_fields(client, app, producer, presenter):
    assert client.post("/api/v1/forums", json=new_forum()).status_code == 401
    assert client.post("/api/v1/forums", json=new_forum(), headers=presenter).status_code == 403
    cases = {
        "starts_at": new_forum(starts_at="2030-01-01T10:00:00"),  # no offset
        "timezone": new_forum(timezone="Europe/Atlantis"),
        "duration_minutes": new_forum(duration_minutes=0),
        "slug": new_forum(slug="Not A Slug"),
        "reminder_offsets": new_forum(reminder_offsets=[-5]),
        "title": new_forum(title=""),
    }
    for field, body in cases.items():
        response = client.post("/api/v1/forums", json=body, headers=producer)
        assert response.status_code == 422, field
        assert field in response.get_json()["error"]["fields"], field
    past = new_forum(starts_at=rfc3339(utcnow() - timedelta(hours=1)))
    assert client.post("/api/v1/forums", json=past, headers=producer).status_code == 422
    taken = make_forum(slug="taken")
    dup = client.post("/api/v1/forums", json=new_forum(slug=taken.slug), headers=producer)
    assert dup.status_code == 409


def test_a_start_in_year_9999_is_an_invalid_field(client, producer):
    r = client.post(
        "/api/v1/forums",
        json={"title": "Far", "starts_at": "9999-12-31T23:30:00Z"},
        headers=producer,
    )
    assert r.status_code == 422, r.get_json()
    assert "starts_at" in r.get_json()["error"]["fields"]


def test_list_shows_upcoming_and_live_only(client, app):
    now = utcnow()
    upcoming = make_forum(title="Upcoming")
    live = make_forum(title="Live", starts_at=now - timedelta(minutes=5), now=now)
    make_forum(title="Over", starts_at=now - timedelta(hours=3), now=now)
    make_forum(title="Cancelled", status="cancelled")
    listed = client.get("/api/v1/forums").get_json()["forums"]
    assert [f["slug"] for f in listed] == [live.slug, upcoming.slug]
    assert [f["status"] for f in listed] == ["live", "open"]


def test_counts_only_for_producers(client, app, producer):
    forum = make_forum()
    make_signup(forum)
    make_signup(forum, status="approved")
    public = client.get(f"/api/v1/forums/{forum.slug}").get_json()
    assert "counts" not in public
    counts = client.get(f"/api/v1/forums/{forum.slug}", headers=producer).get_json()["counts"]
    assert counts["pending"] == 1 and counts["approved"] == 1 and counts["total"] == 2


def test_patch_fields_and_move_start(client, app, producer):
    forum = make_forum()
    later = utcnow() + timedelta(days=5)
    response = client.patch(
        f"/api/v1/forums/{forum.slug}",
        json={"starts_at": rfc3339(later), "title": "New title", "duration_minutes": 90},
        headers=producer,
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["title"] == "New title"
    assert body["starts_at"] == rfc3339(later)
    assert body["ends_at"] == rfc3339(later + timedelta(minutes=90))
    assert body["signup_closes_at"] == body["ends_at"]


def test_lifecycle_transitions(client, app, producer):
    forum = make_forum()
    url = f"/api/v1/forums/{forum.slug}"
    assert client.patch(url, json={"status": "published"}, headers=producer).status_code == 409
    live = client.patch(url, json={"status": "live"}, headers=producer).get_json()
    assert live["status"] == "live"
    closed = client.patch(url, json={"status": "closed"}, headers=producer).get_json()
    assert closed["status"] == "closed"
    assert closed["accepting_signups"] is False
    assert client.patch(url, json={"status": "cancelled"}, headers=producer).status_code == 409
    published = client.patch(url, json={"status": "published"}, headers=producer).get_json()
    assert published["status"] == "published"
    frozen = client.patch(url, json={"title": "Too late"}, headers=producer)
    assert frozen.status_code == 409
    assert client.patch(url, json={"status": "open"}, headers=producer).status_code == 422


def test_a_forum_gone_live_early_keeps_its_planned_end_and_can_still_be_edited(client, producer):
    f = make_forum(starts_at=utcnow() + timedelta(minutes=10, seconds=20))
    planned_end = f.ends_at
    r = client.patch(f"/api/v1/forums/{f.slug}", json={"status": "live"}, headers=producer)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["ends_at"] == rfc3339(planned_end)  # the planned end stands
    r = client.patch(f"/api/v1/forums/{f.slug}", json={"title": "Typo fixed"}, headers=producer)
    assert r.status_code == 200


def test_going_live_days_early_keeps_the_duration_within_a_day(client, producer):
    f = make_forum(starts_at=utcnow() + timedelta(days=2))
    r = client.patch(f"/api/v1/forums/{f.slug}", json={"status": "live"}, headers=producer)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["duration_minutes"] <= 1440


def test_cancel_an_open_forum(client, app, producer):
    forum = make_forum()
    url = f"/api/v1/forums/{forum.slug}"
    body = client.patch(url, json={"status": "cancelled"}, headers=producer).get_json()
    assert body["status"] == "cancelled" and body["accepting_signups"] is False
    assert client.get("/api/v1/forums").get_json()["forums"] == []


def test_clock_drives_open_live_closed(app):
    now = utcnow()
    forum = make_forum(starts_at=now + timedelta(minutes=10), now=now)
    assert forum.status_at(now) == "open"
    assert forum.status_at(now + timedelta(minutes=10)) == "live"
    assert forum.status_at(now + timedelta(minutes=70)) == "closed"
    assert forums.sync_statuses(now + timedelta(minutes=11)) == 1
    db.session.commit()
    assert db.session.get(Forum, forum.id).status == "live"
    forums.sync_statuses(now + timedelta(minutes=71))
    db.session.commit()
    stored = db.session.get(Forum, forum.id)
    assert stored.status == "closed" and stored.closed_at == stored.ends_at


def test_closing_ends_the_call_on_air(client, app, producer):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=1), now=now)
    make_signup(forum, status="queued")
    client.post(f"/api/v1/forums/{forum.slug}/queue/next", headers=producer)
    client.patch(f"/api/v1/forums/{forum.slug}", json={"status": "closed"}, headers=producer)
    assert (
        client.get(f"/api/v1/forums/{forum.slug}/queue", headers=producer).get_json()["on_air"]
        is None
    )


def test_moving_a_started_forum_is_refused(client, app, producer):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=1), now=now)
    response = client.patch(
        f"/api/v1/forums/{forum.slug}",
        json={"starts_at": rfc3339(now + timedelta(days=1))},
        headers=producer,
    )
    assert response.status_code == 409
