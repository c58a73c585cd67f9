"""Every page sends the security headers; staff and private pages are not stored; cookies."""

from __future__ import annotations

import re

import pytest

from .conftest import login, make_forum, make_signup, make_user, manage_token


def _pages(forum, token):  # type: ignore[no-untyped-def]
    return {
        "/": "public",
        f"/forums/{forum.slug}": "public",
        f"/forums/{forum.slug}/calendar.ics": "public",
        "/api/v1/forums": "staff",  # asked with the login session: counts included
        "/producer/login": "staff",
        "/producer/": "staff",
        "/producer/forums/new": "staff",
        f"/producer/forums/{forum.slug}/edit": "staff",
        f"/producer/forums/{forum.slug}/signups": "staff",
        f"/producer/forums/{forum.slug}/queue": "staff",
        f"/producer/forums/{forum.slug}/publication": "staff",
        f"/producer/forums/{forum.slug}/messages": "staff",
        f"/board/{forum.slug}": "staff",
        f"/api/v1/forums/{forum.slug}/signups": "staff",
        f"/manage/{token}": "private",  # exchanged for the cookie the next page needs
        "/manage/mine": "private",
        "/no-such-page": "public",
    }


def test_every_page_sends_the_security_headers(client, app):
    forum = make_forum()
    token = manage_token(forum, make_signup(forum))
    login(client, "admin")
    for path, kind in _pages(forum, token).items():
        response = client.get(path, follow_redirects=False)
        headers = response.headers
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp, path
        assert "script-src 'self'" in csp and "style-src 'self'" in csp, path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["X-Frame-Options"] == "DENY", path
        expected = "no-referrer" if kind == "private" else "strict-origin-when-cross-origin"
        assert headers["Referrer-Policy"] == expected, path
        if kind == "public":
            assert "no-store" not in headers.get("Cache-Control", ""), path
        else:
            assert headers["Cache-Control"] == "no-store", path


INLINE = [
    re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I),  # a script without src
    re.compile(r"<style", re.I),
    re.compile(r"\sstyle=", re.I),
    re.compile(r"\son[a-z]+=", re.I),  # onsubmit=, onclick=, …
    re.compile(r"javascript:", re.I),
]


def test_no_page_has_inline_script_or_style(client, app):
    """The CSP forbids inline code; a page that still had some would break in browsers."""
    forum = make_forum()
    token = manage_token(forum, make_signup(forum))
    login(client, "admin")
    for path in _pages(forum, token):
        html = client.get(path).get_data(as_text=True)
        for pattern in INLINE:
            assert not pattern.search(html), (path, pattern.pattern)


def test_the_erase_button_asks_through_a_static_script(client, app):
    forum = make_forum()
    token = manage_token(forum, make_signup(forum))
    html = client.get(f"/manage/{token}", follow_redirects=True).get_data(as_text=True)
    assert 'data-confirm="Erase everything' in html
    assert "/static/confirm.js" in html
    script = client.get("/static/confirm.js")
    assert b"data-confirm" in script.data
    script.close()


@pytest.mark.parametrize(
    "settings",
    [{"PUBLIC_URL": "https://phonein.example"}, {"ENV": "production"}],
    ids=["https-public-url", "production"],
)
def test_cookies_are_secure_and_hsts_is_sent_in_production(make_app, settings):
    app = make_app(**settings)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
    client = app.test_client()
    with app.app_context():
        user, _ = make_user("producer")
    response = client.post(
        "/producer/login",
        data={"email": user.email, "password": "correct horse battery"},
        base_url="https://localhost",
    )
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("session=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_a_plain_http_development_setup_has_no_hsts_and_no_secure_cookie(make_app):
    app = make_app()
    assert app.config["SESSION_COOKIE_SECURE"] is False
    client = app.test_client()
    with app.app_context():
        user, _ = make_user("producer")
    response = client.post(
        "/producer/login", data={"email": user.email, "password": "correct horse battery"}
    )
    cookie = response.headers["Set-Cookie"]
    assert "Secure" not in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Strict-Transport-Security" not in response.headers
