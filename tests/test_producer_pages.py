"""Producers' pages speak the producer's language: the forum list, the forum form, the texts
log."""

from __future__ import annotations

import re
from datetime import timedelta

from phonein.extensions import db
from phonein.times import utcnow

from .conftest import login, make_forum, make_signup

# Words of the code, not of the newsroom.
JARGON = ("slug", "IANA", "on_air", "next_up")


def visible_text(html: str) -> str:
    """The words a reader sees: no tags, attributes, scripts or styles."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def assert_plain(html: str) -> None:
    text = visible_text(html)
    for word in JARGON:
        assert word not in text, f"{word!r} shown to producers"


def test_the_forum_list_puts_live_and_coming_shows_first_with_starts_in(client, app):
    now = utcnow()
    past = make_forum(title="Last week", starts_at=now - timedelta(days=7), now=now)
    past.status = "published"
    later = make_forum(title="Next month", starts_at=now + timedelta(days=30), now=now)
    soon = make_forum(title="This afternoon", starts_at=now + timedelta(hours=3), now=now)
    live = make_forum(title="On now", starts_at=now - timedelta(minutes=10), now=now)
    db.session.commit()
    login(client)
    page = client.get("/producer/").get_data(as_text=True)
    order = [page.index(t) for t in ("On now", "This afternoon", "Next month", "Last week")]
    assert order == sorted(order)
    assert re.search(r"live now, 50 min left", page)
    assert re.search(r"in (2 h 5\d min|3 h)", page)
    assert "in 30 days" in page or "in 29 days" in page
    # The forum's own time, with its zone, beside the producer's (filled in by the browser).
    assert 'class="your-time"' in page and "(London Time)" in page  # a city, never the zone ID
    assert later.slug and soon.slug and live.slug and past.slug
    assert_plain(page)


def test_the_new_forum_form_offers_zones_to_search_and_reminders_as_choices(client, app):
    login(client)
    page = client.get("/producer/forums/new").get_data(as_text=True)
    assert 'list="zones"' in page and '<option value="America/New_York">' in page
    for label in ("1 day before", "1 hour before", "10 minutes before"):
        assert label in page
    # The station's default reminders are ticked.
    assert len(re.findall(r'type="checkbox"[^>]*checked|checked[^>]*type="checkbox"', page)) == 3
    assert "Web address" in page
    assert_plain(page)


def test_creating_a_forum_shows_its_public_link_to_copy(client, app):
    login(client)
    starts = (utcnow() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        "/producer/forums/new",
        data={
            "title": "Fishing rights",
            "timezone": "Asia/Manila",
            "starts_at": starts,
            "duration_minutes": "30",
            "reminder_offsets": ["86400", "600"],
        },
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "Forum created: share its public link below." in page
    assert 'value="http://phonein.test/forums/fishing-rights" readonly' in page
    assert 'data-copy="public-link"' in page
    forum = client.get("/api/v1/forums/fishing-rights").get_json()
    assert forum["reminder_offsets"] == [86400, 600]
    assert_plain(page)


def test_unticking_every_reminder_means_none(client, app):
    forum = make_forum()
    login(client)
    page = client.get(f"/producer/forums/{forum.slug}/edit").get_data(as_text=True)
    starts = re.search(r'name="starts_at"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="starts_at"', page
    )
    data = {
        "title": forum.title,
        "timezone": forum.timezone,
        "starts_at": starts.group(1),
        "duration_minutes": "60",
        "slug": forum.slug,
    }
    assert client.post(f"/producer/forums/{forum.slug}/edit", data=data).status_code == 302
    assert client.get(f"/api/v1/forums/{forum.slug}").get_json()["reminder_offsets"] == []


def test_other_reminders_set_through_the_api_are_offered_and_kept(client, app, producer):
    forum = make_forum()
    client.patch(
        f"/api/v1/forums/{forum.slug}",
        json={"reminder_offsets": [172800, 5400]},
        headers=producer,
    )
    login(client)
    page = client.get(f"/producer/forums/{forum.slug}/edit").get_data(as_text=True)
    assert "2 days before" in page and "90 minutes before" in page
    assert "1 hour before" in page  # the usual ones stay on offer


def test_a_wrong_zone_says_so_in_plain_words_and_marks_the_field(client, app):
    login(client)
    starts = (utcnow() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        "/producer/forums/new",
        data={"title": "X", "timezone": "Nowhere/Land", "starts_at": starts},
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Choose a time zone from the list" in page
    assert re.search(
        r'aria-invalid="true"[^>]*name="timezone"|name="timezone"[^>]*aria-invalid', page
    )
    assert_plain(page)


def test_the_texts_log_names_kinds_in_words(client, app):
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(minutes=5), status="live", now=now)
    make_signup(forum, status="queued")
    from phonein.sms import outbox

    outbox.notify_head(forum, now)
    db.session.commit()
    login(client)
    page = client.get(f"/producer/forums/{forum.slug}/messages").get_data(as_text=True)
    assert "You're next" in page or "You&#39;re next" in page
    assert_plain(page)


def test_the_login_page_and_navigation_are_plain(client, app):
    assert_plain(client.get("/producer/login").get_data(as_text=True))
    forum = make_forum()
    login(client)
    assert_plain(client.get(f"/producer/forums/{forum.slug}/edit").get_data(as_text=True))


def test_every_page_has_a_skip_link_to_its_main_content(client, app):
    page = client.get("/producer/login").get_data(as_text=True)
    assert '<a class="skip-link" href="#main">' in page and '<main id="main"' in page
