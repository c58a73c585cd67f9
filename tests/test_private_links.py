"""Private links stay private: not stored in texts, not in URLs after the exchange, not logged."""

from __future__ import annotations

import http.cookiejar
import logging
import re
import threading
import urllib.parse
import urllib.request

import sqlalchemy as sa
from werkzeug.serving import make_server

from phonein import links, signups
from phonein.extensions import db
from phonein.models import Message, MessageKind, Signup
from phonein.sms import dispatch
from phonein.times import utcnow

from .conftest import bearer, login, make_forum, make_user
from .fake_twilio import signed

SMS_URL = "http://phonein.test/webhooks/twilio/sms"

LISTENER = {
    "name": "Dana",
    "location": "Hoboken, NJ",
    "phone": "+1 201 555 0211",
    "question": "Why?",
    "sms_consent": True,
}


def _send_all(app) -> None:  # type: ignore[no-untyped-def]
    with app.app_context():
        claimed = dispatch.claim("test-worker", utcnow(), 50)
    for message in claimed:
        dispatch.deliver(app, message, "test-worker")


def test_a_link_text_is_stored_without_its_link_and_sent_with_a_working_one(client, app):
    forum = make_forum()
    registration = signups.register(forum, LISTENER, utcnow(), default_region="GB")
    db.session.commit()
    token = registration.manage_token
    assert token
    # The confirmation carries no link at all: it says how to ask for one.
    confirmation = db.session.scalars(
        sa.select(Message).where(Message.kind == MessageKind.CONFIRMATION)
    ).one()
    assert links.PLACEHOLDER not in confirmation.body and "/manage/" not in confirmation.body
    assert "Reply LINK" in confirmation.body
    _send_all(app)

    form = {"From": registration.signup.phone, "Body": "LINK", "MessageSid": "SM" + "1" * 32}
    assert client.post(SMS_URL, data=form, headers=signed(SMS_URL, form)).status_code == 200
    stored = db.session.scalars(sa.select(Message).where(Message.kind == MessageKind.LINK)).one()
    assert links.PLACEHOLDER in stored.body and token not in stored.body
    assert "/manage/" not in stored.body and stored.forum_id == forum.id

    # The producers' SMS log, page and API, shows the placeholder, not a link.
    login(client)
    page = client.get(f"/producer/forums/{forum.slug}/messages").get_data(as_text=True)
    assert links.PLACEHOLDER in page and "/manage/" not in page
    api = app.test_client().get(
        f"/api/v1/forums/{forum.slug}/messages?kind=link", headers=bearer(make_user("producer")[1])
    )
    [item] = api.get_json()["items"]
    assert links.PLACEHOLDER in item["body"] and "/manage/" not in item["body"]

    _send_all(app)
    sent = app.extensions["phonein_sms"].sent
    assert len(sent) == 2 and "/manage/" not in sent[0]["body"]
    link = re.search(r"http://phonein\.test(/manage/\S+)", sent[1]["body"])
    assert link is not None and links.PLACEHOLDER not in sent[1]["body"]
    listener = app.test_client()
    opened = listener.get(link.group(1), follow_redirects=True)
    assert opened.status_code == 200 and "Your signup" in opened.get_data(as_text=True)
    # A forged message reference opens nothing.
    assert listener.get("/manage/m.1.forged").status_code == 404


def test_the_manage_link_is_exchanged_for_a_cookie_and_a_token_free_url(client, app):
    forum = make_forum()
    token = signups.register(forum, LISTENER, utcnow(), default_region="GB").manage_token
    db.session.commit()
    response = client.get(f"/manage/{token}")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/manage/mine")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("phonein_manage=") and token not in cookie
    assert "HttpOnly" in cookie and "Path=/manage" in cookie and "SameSite=Lax" in cookie
    assert response.headers["Referrer-Policy"] == "no-referrer"
    page = client.get("/manage/mine")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and token not in html
    assert page.headers["Cache-Control"] == "no-store"
    # The page shows a private link that works elsewhere, and the forms post token-free.
    shown = re.search(r'id="manage-link">http://phonein\.test(/manage/s\.[^<]+)<', html)
    assert shown is not None
    assert 'action="/manage/mine"' in html
    assert app.test_client().get(shown.group(1), follow_redirects=True).status_code == 200
    # Without the cookie the token-free page opens nothing.
    assert app.test_client().get("/manage/mine").status_code == 404
    # Erasing ends the cookie's and the shown link's use.
    assert client.post("/manage/mine/erase").status_code == 200
    assert client.get("/manage/mine").status_code == 404
    assert app.test_client().get(shown.group(1)).status_code == 404


def test_no_private_link_reaches_any_log_line_in_a_full_run(make_app, caplog):
    """Serve the app for real (access log on), sign up, open the link, send the texts on the
    console backend, and grep everything logged for the token and any private link."""
    app = make_app(SMS_BACKEND="console")
    caplog.set_level(logging.DEBUG)
    # Alembic's logging setup (the schema fixture) disables loggers that existed before it.
    for name in links.REDACTED_LOGGERS:
        logging.getLogger(name).disabled = False
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="links-test", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with app.app_context():
            forum = make_forum()
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        form = {**LISTENER, "sms_consent": "y"}
        with browser.open(f"{base}/forums/{forum.slug}", urllib.parse.urlencode(form).encode()):
            pass
        # A listener who signs up again with the same number asks for a new link; the test
        # takes the token the way the listener would have it: from the database's register.
        with app.app_context():
            fields = ("name", "location", "phone", "question", "sms_consent")
            signup = db.session.scalars(sa.select(Signup)).one()
            token = signups.register(
                forum,
                {f: getattr(signup, f) for f in fields},
                utcnow(),
                default_region="GB",
                new_link=True,
            ).manage_token
            db.session.commit()
        assert token
        with browser.open(f"{base}/manage/{token}") as page:
            assert page.url.endswith("/manage/mine")
            html = page.read().decode()
        _send_all(app)
        # gunicorn's access logger, as gunicorn calls it.
        logging.getLogger("gunicorn.access").info(
            '%(h)s "%(r)s" %(s)s',
            {"h": "127.0.0.1", "r": f"GET /manage/{token} HTTP/1.1", "s": "303"},
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "/manage/" in logged  # the requests and the text were logged …
    assert "SMS to" in logged
    assert token not in logged  # … without the token,
    assert not re.search(r"/manage/(?!mine\b|\[private\])", logged)  # nor any private link
    shown = re.search(r'id="manage-link">[^<]*/manage/([^<]+)<', html)
    assert shown is not None and shown.group(1) not in logged


def test_codes_in_links_are_redacted_too(caplog):
    """The verification link texted to a known number carries a one-time code."""
    caplog.set_level(logging.INFO)
    logger = logging.getLogger("phonein.sms")
    logger.disabled = False
    links.redact_logs()
    logger.info("SMS to %s: %s", "+447400123456", "open: https://x.test/verify/VE12?code=834271 ok")
    logging.getLogger("gunicorn.access").info('"%s"', "GET /verify/VE12?code=902163&x=1 HTTP/1.1")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "834271" not in logged and "902163" not in logged
    assert "code=[private]" in logged and "/verify/VE12" in logged
