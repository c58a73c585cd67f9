"""Proof of the number (PHONEIN_VERIFY=sms) with phonein's own codes, and PHONEIN_VERIFY=off.

Twilio Verify through the real SDK: tests/test_verification_twilio.py.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from phonein import gsm, phones
from phonein.extensions import db
from phonein.models import CodeSend, Message, Signup, Verification
from phonein.sms import codes, outbox
from phonein.times import utcnow

from .conftest import make_forum, make_signup

LISTENER = {
    "name": "Dana Whitfield",
    "location": "Newark, NJ, USA",
    "phone": "+1 201 555 0211",
    "question": "What about buses?",
    "timezone": "America/New_York",
    "sms_consent": True,
    "publish_consent": True,
}
E164 = "+12015550211"
# The victim's number in every form a listener (or attacker) might type it.
WRITTEN_FORMS = [
    "+12015550211",
    "+1 (201) 555-0211",
    "(201) 555-0211",
    "201.555.0211",
    "1-201-555-0211",
]
IDS_AND_TIMES = re.compile(r'"(verification_id|expires_at)":\s*"[^"]*"')


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    app = make_app(VERIFY="sms", VERIFY_BACKEND="memory")
    with app.app_context():
        yield app


def url(forum) -> str:  # type: ignore[no-untyped-def]
    return f"/api/v1/forums/{forum.slug}/signups"


def last_code(app, phone: str = E164) -> str:  # type: ignore[no-untyped-def]
    code = codes.sender(app).last_code(phone)  # type: ignore[attr-defined]
    assert code is not None
    return code


def opens(app, link: str) -> int:  # type: ignore[no-untyped-def]
    """Follow a private link in a browser of its own; return the final status."""
    path = link.removeprefix("http://phonein.test")
    return app.test_client().get(path, follow_redirects=True).status_code


def sign_up(client, app, forum, **changes):  # type: ignore[no-untyped-def]
    """Sign up and prove the number; return the proof's answer."""
    started = client.post(url(forum), json={**LISTENER, **changes})
    assert started.status_code == 202, started.get_json()
    vid = started.get_json()["verification_id"]
    phone = changes.get("phone_e164", E164)
    return client.post(f"/api/v1/verifications/{vid}", json={"code": last_code(app, phone)})


def test_a_signup_counts_only_once_the_code_is_entered(client, app):
    forum = make_forum()
    started = client.post(url(forum), json=LISTENER)
    assert started.status_code == 202
    body = started.get_json()
    assert set(body) == {"verification_id", "channel", "expires_at"}
    assert body["channel"] == "sms"
    # Nothing else: no signup, no text beyond the code.
    assert db.session.query(Signup).count() == 0
    assert db.session.query(Message).count() == 0
    assert len(codes.sender(app).sent) == 1  # type: ignore[attr-defined]

    wrong = client.post(
        f"/api/v1/verifications/{body['verification_id']}",
        json={"code": "000000" if last_code(app) != "000000" else "111111"},
    )
    assert wrong.status_code == 422
    assert "code" in wrong.get_json()["error"]["fields"]
    assert db.session.query(Signup).count() == 0

    right = client.post(
        f"/api/v1/verifications/{body['verification_id']}", json={"code": last_code(app)}
    )
    assert right.status_code == 201, right.get_json()
    signup = right.get_json()
    assert signup["phone"] == E164 and signup["manage_url"].startswith(
        "http://phonein.test/manage/"
    )
    assert opens(app, signup["manage_url"]) == 200
    # The confirmation is written only now.
    assert [m.kind for m in db.session.query(Message)] == ["confirmation"]
    # A code works once.
    again = client.post(
        f"/api/v1/verifications/{body['verification_id']}", json={"code": last_code(app)}
    )
    assert again.status_code == 404


def test_takeover_attempts_change_nothing_and_answer_like_a_new_number(make_app):
    # The per-number code limits would stop the attacker after five: lift them here, to
    # show that any number of attempts changes nothing.
    app = make_app(
        VERIFY="sms", VERIFY_BACKEND="memory", VERIFY_CODES_PER_HOUR=1000, VERIFY_CODES_PER_DAY=1000
    )
    ctx = app.app_context()
    ctx.push()
    client = app.test_client()
    forum = make_forum()
    victim = sign_up(client, app, forum)
    assert victim.status_code == 201
    victim_link = victim.get_json()["manage_url"].removeprefix("http://phonein.test")
    before = db.session.get(Signup, victim.get_json()["id"])
    kept = {
        f: getattr(before, f)
        for f in ("name", "question", "email", "sms_consent", "publish_consent", "status")
    }

    attacker = {
        **LISTENER,
        "name": "Mallory",
        "question": "Hijacked",
        "sms_consent": False,
        "publish_consent": False,
        "email": "m@example.org",
    }
    answers = []
    for written in WRITTEN_FORMS * 2:
        response = client.post(url(forum), json={**attacker, "phone": written})
        answers.append(response)
    # Every answer is the same as for a number never seen, bar ids and times.
    fresh = client.post(url(forum), json={**attacker, "phone": "+1 201 555 0299"})
    # A queued listener's number, and one that opted out, answer the same too.
    queued = make_signup(forum, phone="+1 201 555 0288", status="queued")
    outbox.opt_out("+12015550277", utcnow())
    db.session.commit()
    answers.append(client.post(url(forum), json={**attacker, "phone": queued.phone}))
    answers.append(client.post(url(forum), json={**attacker, "phone": "+1 201 555 0277"}))
    shapes = {IDS_AND_TIMES.sub('"\\1": "…"', r.get_data(as_text=True)) for r in [*answers, fresh]}
    assert len(shapes) == 1, shapes
    assert {r.status_code for r in answers} == {202}
    assert {tuple(sorted(r.headers.keys())) for r in [*answers, fresh]} == {
        tuple(sorted(fresh.headers.keys()))
    }

    db.session.expire_all()
    after = db.session.get(Signup, before.id)
    assert {f: getattr(after, f) for f in kept} == kept
    assert db.session.query(Signup).count() == 2  # the victim and the queued listener
    assert db.session.get(Signup, queued.id).status == "queued"
    assert opens(app, victim_link) == 200
    # Nothing was texted but codes: no confirmation beyond the listeners' own.
    assert [m.kind for m in db.session.query(Message)] == ["confirmation"] * 2
    ctx.pop()


def test_proving_again_updates_and_keeps_the_old_link_unless_asked(client, app):
    forum = make_forum()
    first = sign_up(client, app, forum).get_json()
    old_link = first["manage_url"].removeprefix("http://phonein.test")

    second = sign_up(client, app, forum, question="A better question")
    assert second.status_code == 200
    assert second.get_json()["id"] == first["id"] and second.get_json()["manage_url"] is None
    assert db.session.get(Signup, first["id"]).question == "A better question"
    assert opens(app, old_link) == 200

    started = client.post(url(forum), json={**LISTENER, "question": "Third"}).get_json()
    third = client.post(
        f"/api/v1/verifications/{started['verification_id']}",
        json={"code": last_code(app), "new_link": True},
    )
    assert third.status_code == 200
    new_link = third.get_json()["manage_url"].removeprefix("http://phonein.test")
    assert opens(app, old_link) == 404
    assert opens(app, new_link) == 200


def test_too_many_wrong_codes_then_429(client, app):
    forum = make_forum()
    vid = client.post(url(forum), json=LISTENER).get_json()["verification_id"]
    wrong = "000000" if last_code(app) != "000000" else "111111"
    answers = [
        client.post(f"/api/v1/verifications/{vid}", json={"code": wrong}).status_code
        for _ in range(6)
    ]
    assert answers == [422] * 5 + [429]
    right = client.post(f"/api/v1/verifications/{vid}", json={"code": last_code(app)})
    assert right.status_code == 429
    assert db.session.query(Signup).count() == 0


def test_unknown_and_expired_verifications_are_404(client, app):
    forum = make_forum()
    assert client.post("/api/v1/verifications/VEnope", json={"code": "123456"}).status_code == 404
    vid = client.post(url(forum), json=LISTENER).get_json()["verification_id"]
    found = db.session.get(Verification, vid)
    found.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert (
        client.post(f"/api/v1/verifications/{vid}", json={"code": last_code(app)}).status_code
        == 404
    )
    assert client.post(f"/api/v1/verifications/{vid}/resend", json={}).status_code == 404


def test_resend_is_limited_to_5_an_hour_and_10_a_day_per_number(client, app):
    forum = make_forum()
    vid = client.post(url(forum), json=LISTENER).get_json()["verification_id"]
    answers = [
        client.post(f"/api/v1/verifications/{vid}/resend", json={}).status_code for _ in range(5)
    ]
    assert answers == [202] * 4 + [429]
    assert len(codes.sender(app).sent) == 5  # type: ignore[attr-defined]
    # The limit is the number's, whatever the forum or verification.
    other = make_forum(title="Another", slug="another")
    assert client.post(url(other), json=LISTENER).status_code == 429
    # An hour later, five more; then the day's ten are spent.
    for sent in db.session.query(CodeSend):
        sent.sent_at -= timedelta(hours=2)
    db.session.commit()
    more = [
        client.post(f"/api/v1/verifications/{vid}/resend", json={}).status_code for _ in range(6)
    ]
    assert more == [202] * 5 + [429]


def test_call_me_instead_and_landlines_get_a_call(client, app):
    forum = make_forum()
    vid = client.post(url(forum), json=LISTENER).get_json()["verification_id"]
    call = client.post(f"/api/v1/verifications/{vid}/resend", json={"channel": "call"})
    assert call.status_code == 202 and call.get_json()["channel"] == "call"
    assert codes.sender(app).sent[-1]["channel"] == "call"  # type: ignore[attr-defined]
    landline = {
        **LISTENER,
        "phone": "+44 20 7946 0000",
        "sms_consent": False,
        "timezone": "Europe/London",
    }
    started = client.post(url(forum), json=landline)
    assert started.status_code == 202 and started.get_json()["channel"] == "call"
    refused = client.post(
        f"/api/v1/verifications/{started.get_json()['verification_id']}/resend",
        json={"channel": "sms"},
    )
    assert refused.status_code == 422 and "channel" in refused.get_json()["error"]["fields"]


def test_invalid_fields_are_refused_before_any_code(client, app):
    forum = make_forum()
    response = client.post(url(forum), json={**LISTENER, "phone": "+1 900 555 0100"})
    assert response.status_code == 422 and "phone" in response.get_json()["error"]["fields"]
    assert codes.sender(app).sent == []  # type: ignore[attr-defined]


def test_the_code_page_signs_up_and_offers_the_link_choice(client, app):
    forum = make_forum()
    form = {k: ("y" if v is True else v) for k, v in LISTENER.items()}
    posted = client.post(f"/forums/{forum.slug}", data=form)
    assert posted.status_code == 303 and "/verify/VE" in posted.headers["Location"]
    page = client.get(posted.headers["Location"])
    text = page.get_data(as_text=True)
    assert "Enter your code" in text and "Call me instead" in text and "Send again" in text
    assert "<script>" not in text and "style=" not in text
    wrong = client.post(
        posted.headers["Location"],
        data={"code": "999999" if last_code(app) != "999999" else "888888"},
    )
    assert wrong.status_code == 422 and "not the code" in wrong.get_data(as_text=True)
    done = client.post(posted.headers["Location"], data={"code": last_code(app)})
    assert done.status_code == 303 and "/manage/" in done.headers["Location"]
    first_link = done.headers["Location"]
    assert "You are signed up" in client.get(first_link, follow_redirects=True).get_data(
        as_text=True
    )

    # Again with the same number: the choice, then a new link on request.
    posted = client.post(f"/forums/{forum.slug}", data={**form, "question": "Changed <b>"})
    done = client.post(posted.headers["Location"], data={"code": last_code(app)})
    assert done.status_code == 303 and done.headers["Location"].endswith("/link")
    choice = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Keep my old link" in choice and "Give me a new link" in choice
    assert opens(app, first_link) == 200
    new = client.post(done.headers["Location"], data={"choice": "new"})
    assert new.status_code == 303 and "/manage/" in new.headers["Location"]
    assert opens(app, first_link) == 404
    manage = client.get(new.headers["Location"], follow_redirects=True).get_data(as_text=True)
    assert "Changed &lt;b&gt;" in manage


def test_the_code_page_shows_only_the_end_of_the_number(client, app):
    """The code page's address (a verification id) can end up in access logs: whoever
    opens it there must not learn the listener's number."""
    forum = make_forum()
    form = {k: ("y" if v is True else v) for k, v in LISTENER.items()}
    posted = client.post(f"/forums/{forum.slug}", data=form)
    text = client.get(posted.headers["Location"]).get_data(as_text=True)
    e164 = phones.normalize(
        str(LISTENER["phone"]), country=None, timezone=None, default_region="GB"
    )
    assert e164 is not None
    full = phones.display(e164)
    assert full not in text and e164 not in text
    assert phones.masked(e164) in text and e164[-3:] in phones.masked(e164)
    assert full.replace(" ", "")[:-3] not in text.replace(" ", "")


def test_another_browser_cannot_take_the_link_choice(client, app):
    forum = make_forum()
    sign_up(client, app, forum)
    started = client.post(url(forum), json=LISTENER).get_json()
    client.post(f"/verify/{started['verification_id']}", data={"code": last_code(app)})
    stranger = app.test_client()
    refused = stranger.post(f"/verify/{started['verification_id']}/link", data={"choice": "new"})
    assert refused.status_code == 303
    assert "/manage/" not in refused.headers["Location"]


def test_off_mode_texts_a_known_number_its_link_once_a_day(make_app):
    app = make_app(VERIFY="off")
    with app.app_context():
        client = app.test_client()
        forum = make_forum()
        first = client.post(url(forum), json=LISTENER)
        assert first.status_code == 201 and first.get_json()["manage_url"]
        answers = [
            client.post(url(forum), json={**LISTENER, "question": "Hijack"}) for _ in range(3)
        ]
        assert {r.status_code for r in answers} == {202}
        assert all("manage_url" not in r.get_json() for r in answers)
        db.session.expire_all()
        assert db.session.query(Signup).one().question == LISTENER["question"]
        links = db.session.query(Message).filter_by(kind="code").all()
        assert len(links) == 1 and links[0].to == E164 and links[0].forum_id is None
        # The link in the text opens the signup (with a choice of link).
        link = re.search(r"http://phonein\.test(\S+)", links[0].body).group(1)
        page = client.get(link)
        assert page.status_code == 200
        code = re.search(r"code=(\d+)", link).group(1)
        proved = client.post(link.split("?")[0], data={"code": code})
        assert proved.status_code == 303 and proved.headers["Location"].endswith("/link")
        # The first link still works; nothing changed.
        assert opens(app, first.get_json()["manage_url"]) == 200


def test_off_mode_texts_a_known_number_its_link_in_its_own_language(make_app):
    app = make_app(VERIFY="off")
    with app.app_context():
        client = app.test_client()
        forum = make_forum(
            title="L\u2019avenir des villes \u2014 un d\u00e9bat", languages=["en", "fr"]
        )
        french = {**LISTENER, "language": "fr"}
        assert client.post(url(forum), json=french).status_code == 201
        assert client.post(url(forum), json={**french, "language": "en"}).status_code == 202
        [text] = db.session.query(Message).filter_by(kind="code").all()
        # French (the signup's language, not the second request's), the title's typographic
        # apostrophe and dash folded: GSM-7, and the link whole.
        assert text.body.startswith("Quelqu'un s'est réinscrit à \"L'avenir des villes - un")
        assert text.body.endswith("Désabonnement : STOP.")
        assert gsm.cost(text.body).encoding == gsm.GSM7
        assert re.search(r"http://phonein\.test/verify/VE\w+\?code=\d+ ", text.body)


def test_outbox_sender_writes_the_code_as_a_text(make_app):
    app = make_app(VERIFY="sms", VERIFY_BACKEND="outbox")
    with app.app_context():
        client = app.test_client()
        forum = make_forum()
        vid = client.post(url(forum), json=LISTENER).get_json()["verification_id"]
        text = db.session.query(Message).filter_by(kind="code").one()
        assert text.to == E164 and text.signup_id is None and text.forum_id is None
        code = re.search(r"\b(\d{6})\b", text.body).group(1)
        found = db.session.get(Verification, vid)
        assert code not in (found.code_hash or "")  # only a hash is kept
        assert client.post(f"/api/v1/verifications/{vid}", json={"code": code}).status_code == 201


def test_codes_and_resends_share_the_per_client_signup_budget(make_app):
    app = make_app(
        VERIFY="sms", VERIFY_BACKEND="memory", RATELIMIT_ENABLED=True, SIGNUP_RATE_LIMIT="3/minute"
    )
    with app.app_context():
        client = app.test_client()
        forum = make_forum()
        vid = client.post(url(forum), json=LISTENER).get_json()["verification_id"]
        assert client.post(f"/api/v1/verifications/{vid}/resend", json={}).status_code == 202
        assert client.post(f"/verify/{vid}/resend", data={"channel": "sms"}).status_code == 303
        limited = client.post(f"/api/v1/verifications/{vid}", json={"code": last_code(app)})
        assert limited.status_code == 429
        assert len(codes.sender(app).sent) == 3  # type: ignore[attr-defined]


def test_off_mode_page_says_nothing_changed_for_a_known_number(make_app):
    app = make_app(VERIFY="off")
    with app.app_context():
        client = app.test_client()
        forum = make_forum()
        form = {k: ("y" if v is True else v) for k, v in LISTENER.items()}
        assert client.post(f"/forums/{forum.slug}", data=form).status_code == 303
        again = client.post(f"/forums/{forum.slug}", data={**form, "question": "Hijack"})
        assert again.status_code == 202
        assert "nothing was changed" in again.get_data(as_text=True)
        db.session.expire_all()
        assert db.session.query(Signup).one().question == LISTENER["question"]


def test_call_me_instead_is_refused_plainly_without_verify(make_app):
    # The outbox fallback texts codes only: a landline cannot get one, and says so.
    app = make_app(VERIFY="sms", VERIFY_BACKEND="outbox")
    with app.app_context():
        client = app.test_client()
        forum = make_forum()
        vid = client.post(url(forum), json=LISTENER).get_json()["verification_id"]
        page = client.post(f"/verify/{vid}/resend", data={"channel": "call"}, follow_redirects=True)
        assert "We can only text codes here" in page.get_data(as_text=True)
        landline = {**LISTENER, "phone": "+44 20 7946 0000", "sms_consent": False}
        refused = client.post(url(forum), json=landline)
        assert refused.status_code == 422 and "phone" in refused.get_json()["error"]["fields"]
