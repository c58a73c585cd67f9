"""A listener's stale form (a lost session cookie, so a CSRF token that no longer matches).

It changes nothing, and the listener gets their page back in their language, their words
kept, with a new token; never an English error page written for API clients.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from phonein.extensions import db
from phonein.models import Signup, Verification
from phonein.sms import codes

from .conftest import make_forum, make_signup, manage_token

FORM = {
    "name": "Ama",
    "location": "Accra, Ghana",
    "phone": "+233 24 123 4567",
    "question": "Quelle est la question, monsieur ?",
    "sms_consent": "y",
}
EXPIRED_FR = "Le formulaire a expiré. Envoyez-le de nouveau."


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    app = make_app(WTF_CSRF_ENABLED=True, VERIFY="sms", VERIFY_BACKEND="memory")
    with app.app_context():
        yield app


def test_a_stale_signup_form_comes_back_filled_in_and_in_the_listeners_language(app):
    forum = make_forum(languages=["en", "fr"])
    browser = app.test_client()
    sent = browser.post(f"/forums/{forum.slug}?lang=fr", data={**FORM, "csrf_token": "stale"})
    page = sent.get_data(as_text=True)
    assert sent.status_code == 400
    assert '<html lang="fr"' in page
    assert EXPIRED_FR in page
    assert "Bearer" not in page and "CSRF" not in page
    assert "Quelle est la question, monsieur ?" in page  # the question is not lost
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token is not None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Verification)) == 0

    again = browser.post(f"/forums/{forum.slug}", data={**FORM, "csrf_token": token.group(1)})
    assert again.status_code == 303 and "/verify/" in again.headers["Location"]


def test_no_listener_post_without_a_valid_token_changes_anything(app):
    forum = make_forum(languages=["en", "fr"])
    signup = make_signup(forum, language="fr")
    token = manage_token(forum, signup)
    listener = app.test_client()
    assert listener.get(f"/manage/{token}").status_code == 303  # the manage cookie
    started = app.test_client().post(
        f"/api/v1/forums/{forum.slug}/signups",
        json={**FORM, "sms_consent": True, "phone": "+233 24 765 4321"},
    )
    vid = started.get_json()["verification_id"]
    sender = codes.sender(app)
    code = sender.last_code("+233247654321")  # type: ignore[attr-defined]
    texts_sent = len(sender.sent)  # type: ignore[attr-defined]
    before = (signup.name, signup.status, signup.manage_token_hash)

    posts = {
        f"/manage/{token}": {"name": "Changed", "location": "X", "question": "Y"},
        "/manage/mine": {"name": "Changed", "location": "X", "question": "Y"},
        f"/manage/{token}/withdraw": {},
        "/manage/mine/withdraw": {},
        f"/manage/{token}/erase": {},
        "/manage/mine/erase": {},
        f"/verify/{vid}": {"code": code},
        f"/verify/{vid}/resend": {"channel": "sms"},
        f"/verify/{vid}/link": {"choice": "new"},
    }
    # Every listener POST route is here: a new one must be held to the same rule.
    rules = {
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in ("public", "verify") and "POST" in rule.methods
    }
    assert len(rules) == len(posts) + 1  # + the signup form, the test above

    for path, data in posts.items():
        answer = listener.post(f"{path}?lang=fr", data={**data, "csrf_token": "stale"})
        assert answer.status_code in (200, 303, 400), (path, answer.status_code)
        shown = listener.get(answer.headers["Location"]) if answer.status_code == 303 else answer
        text = shown.get_data(as_text=True)
        assert "Bearer" not in text and "CSRF" not in text, path
        if not path.endswith("/link"):  # that one goes back to the choice, nothing to say
            assert EXPIRED_FR in text, path

    db.session.expire_all()
    again = db.session.get(Signup, signup.id)
    assert again is not None
    assert (again.name, again.status, again.manage_token_hash) == before
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Signup)) == 1
    assert len(sender.sent) == texts_sent  # no code sent again  # type: ignore[attr-defined]
    proved = db.session.get(Verification, vid)
    assert proved is not None and proved.proved_at is None


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("", {"name": "Ama Mensah", "location": "Kumasi", "question": "And buses?"}),
        ("/withdraw", {}),
        ("/erase", {}),
    ],
)
def test_the_manage_page_works_over_https_though_it_sends_no_referrer(app, action, data):
    """The page is served with Referrer-Policy: no-referrer (its URL was private), so its
    forms post without a Referer; the app-wide check refused every such POST over HTTPS
    ('The referrer header is missing'): no listener could change, withdraw or erase."""
    forum = make_forum()
    signup = make_signup(forum)
    signup_id = signup.id
    token = manage_token(forum, signup)
    https = "https://phonein.test"
    browser = app.test_client()
    assert browser.get(f"/manage/{token}", base_url=https).status_code == 303
    page = browser.get("/manage/mine", base_url=https)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    csrf = re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)
    )
    assert csrf is not None
    sent = browser.post(
        f"/manage/mine{action}", base_url=https, data={**data, "csrf_token": csrf.group(1)}
    )
    assert sent.status_code in (200, 303), sent.get_data(as_text=True)[-400:]
    db.session.expire_all()
    after = db.session.get(Signup, signup_id)
    if action == "/erase":
        assert after is None  # erased: the row is gone
    elif action == "/withdraw":
        assert after is not None and after.status == "withdrawn"
    else:
        assert after is not None and after.name == "Ama Mensah"
