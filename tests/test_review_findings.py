from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from phonein.extensions import db
from phonein.models import Forum, Message
from phonein.times import utcnow

from .conftest import make_forum, make_signup, make_user, manage_token


def test_cancel_sms_says_cancelled(client, producer):
    f = make_forum()
    make_signup(f)
    r = client.patch(f"/api/v1/forums/{f.slug}", json={"status": "cancelled"}, headers=producer)
    assert r.status_code == 200
    m = db.session.scalars(sa.select(Message).where(Message.kind == "cancelled")).one()
    assert "cancel" in m.body.lower()


def test_presenter_queue_leaks_phone_email_notes(client, presenter, producer):
    f = make_forum(starts_at=utcnow() - timedelta(minutes=5), status="live")
    s = make_signup(f, email="dana@example.org", status="queued")
    client.post(
        f"/api/v1/signups/{s.id}/screen",
        json={"notes": "sounded drunk on the phone"},
        headers=producer,
    )
    r = client.get(f"/api/v1/forums/{f.slug}/queue", headers=presenter)
    w = r.get_json()["waiting"][0]
    assert "phone" not in w and "email" not in w and "notes" not in w


def test_move_back_and_forth_loses_rescheduled_text(client, producer):
    f = make_forum()
    make_signup(f)
    a = f.starts_at
    b = a + timedelta(hours=1)
    for when in (b, a, b):
        r = client.patch(
            f"/api/v1/forums/{f.slug}", json={"starts_at": when.isoformat()}, headers=producer
        )
        assert r.status_code == 200, r.get_json()
    bodies = [
        m.key
        for m in db.session.scalars(
            sa.select(Message).where(Message.kind == "rescheduled").order_by(Message.id)
        )
    ]
    assert len(bodies) == 3  # the listener must learn of the third move


def test_manage_edit_after_publication_goes_public_unscreened(client, producer):
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
    page = client.get(f"/forums/{f.slug}").get_data(as_text=True)
    assert "BUY CHEAP PILLS" not in page


def test_edit_page_after_go_live_early_is_refused(client):
    user, _ = make_user("producer")
    client.post("/producer/login", data={"email": user.email, "password": "correct horse battery"})
    f = make_forum()
    r = client.post(f"/producer/forums/{f.slug}/status", data={"status": "live"})
    db.session.expire_all()
    f = db.session.get(Forum, f.id)
    assert f.status == "live"
    form = client.get(f"/producer/forums/{f.slug}/edit").get_data(as_text=True)
    import re

    starts = re.search(r'name="starts_at"[^>]*value="([^"]+)"', form) or re.search(
        r'value="([^"]+)"[^>]*name="starts_at"', form
    )
    data = {
        "title": "Fixed typo",
        "timezone": f.timezone,
        "starts_at": starts.group(1),
        "duration_minutes": str(f.duration_minutes),
        "reminder_offsets": "1440, 60, 10",
        "slug": f.slug,
    }
    r = client.post(f"/producer/forums/{f.slug}/edit", data=data)
    import re as _re

    assert r.status_code in (302, 303), _re.sub(r"<[^>]+>", " ", r.get_data(as_text=True))[-1500:]


def test_edit_page_resaves_seconds_as_a_move(client, producer):
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
        "reminder_offsets": "1440, 60, 10",
        "slug": slug,
    }
    r = client.post(f"/producer/forums/{slug}/edit", data=data)
    n = db.session.scalar(
        sa.select(sa.func.count()).select_from(Message).where(Message.kind == "rescheduled")
    )
    assert n == 0


def test_edit_page_dst_fold_moves_forum(client):
    user, _ = make_user("producer")
    client.post("/producer/login", data={"email": user.email, "password": "correct horse battery"})
    from zoneinfo import ZoneInfo

    ZoneInfo("Europe/London")
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
        "reminder_offsets": "1440, 60, 10",
        "slug": f.slug,
    }
    assert "2030-10-27T01:30" in form
    client.post(f"/producer/forums/{f.slug}/edit", data=data)
    db.session.expire_all()
    f = db.session.get(Forum, f.id)
    assert f.starts_at == start


def test_huge_queue_position_500(client, producer):
    f = make_forum(starts_at=utcnow() - timedelta(minutes=5), status="live")
    s = make_signup(f, status="approved")
    make_signup(f, status="queued")
    r = client.post(
        f"/api/v1/forums/{f.slug}/queue",
        json={"signup_id": s.id, "position": 2**64},
        headers=producer,
    )
    assert r.status_code != 500


def test_year_9999_start_500(client, producer):
    r = client.post(
        "/api/v1/forums",
        json={"title": "Far", "starts_at": "9999-12-31T23:30:00Z"},
        headers=producer,
    )
    assert r.status_code != 500


def test_purge_keeps_phone_numbers_in_messages(app):
    from phonein import signups as S

    now = utcnow()
    f = make_forum()
    s = make_signup(f)
    phone = s.phone
    f.status = "closed"
    f.closed_at = now - timedelta(days=100)
    f.ends_at = now - timedelta(days=100)
    db.session.commit()
    S.purge(now, 90)
    db.session.commit()
    left = db.session.scalars(sa.select(Message.to)).all()
    assert phone not in left
