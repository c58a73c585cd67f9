"""The consent ledger: each consent given or withdrawn is a row, with when, how, the wording
shown and the client's address; producers export it; erasure keeps only opt-outs."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from xml.etree import ElementTree

import sqlalchemy as sa

from phonein import consents, privacy, signups
from phonein.extensions import db
from phonein.models import Call, Consent, Signup
from phonein.sms import codes, outbox
from phonein.sms.texts import stop_line
from phonein.times import utcnow

from .conftest import login, make_forum, make_signup
from .fake_twilio import signed

LISTENER = {
    "name": "Ngozi Eze",
    "location": "Enugu, Nigeria",
    "phone": "+44 7400 555123",
    "question": "Who pays for the new bridge?",
    "sms_consent": True,
    "publish_consent": False,
}
E164 = "+447400555123"
ADDRESS = "203.0.113.7"
SMS_URL = "http://phonein.test/webhooks/twilio/sms"


# The English opt-out line every text ends with (sms.texts.stop_line).
STOP_LINE = "Reply STOP to opt out."


def browser(app):  # type: ignore[no-untyped-def]
    """A test client whose requests come from ADDRESS."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ADDRESS
    return client


def form(**changes: object) -> dict[str, str]:
    """The signup as a browser posts it: a ticked box is "y", an unticked one absent."""
    values = {**LISTENER, **changes}
    return {k: ("y" if v is True else str(v)) for k, v in values.items() if v is not False}


def edits(**changes: object) -> dict[str, str]:
    """The manage page's form (no phone there)."""
    values = form(**changes)
    values.pop("phone", None)
    return values


def rows(**where: object) -> list[Consent]:
    query = sa.select(Consent).filter_by(**where).order_by(Consent.id)
    return list(db.session.scalars(query))


def summary(found: list[Consent]) -> list[tuple[str, bool, str, str]]:
    return [(c.purpose, c.given, c.method, c.wording_version) for c in found]


def text_in(client, phone: str, word: str, sid: str):  # type: ignore[no-untyped-def]
    form = {"From": phone, "Body": word, "MessageSid": sid}
    return client.post(SMS_URL, data=form, headers=signed(SMS_URL, form))


def test_a_signup_on_the_form_is_recorded_once_its_number_is_proved(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(VERIFY="sms", VERIFY_BACKEND="memory")
    with app.app_context():
        forum = make_forum()
        client = browser(app)
        page = client.get(f"/forums/{forum.slug}").get_data(as_text=True)
        # The wordings the ledger stores are the ones the form shows.
        assert consents.text("sms.v1") in page and consents.text("publish.v1") in page
        started = client.post(f"/forums/{forum.slug}", data=form())
        assert started.status_code == 303
        assert rows() == []  # nothing is a consent until the number is proved
        code = codes.sender(app).last_code(E164)  # type: ignore[attr-defined]
        before = utcnow()
        proved = client.post(started.headers["Location"], data={"code": code})
        assert proved.status_code == 303

        found = rows()
        assert summary(found) == [
            ("sms", True, "web", "sms.v1"),
            ("publish", False, "web", "publish.v1"),
        ]
        signup = db.session.scalars(sa.select(Signup)).one()
        for consent in found:
            assert consent.wording == consents.text(consent.wording_version)
            assert consent.client_address == ADDRESS
            assert consent.phone == E164
            assert (consent.signup_id, consent.forum_id) == (signup.id, forum.id)
            assert before - timedelta(seconds=5) <= consent.recorded_at <= utcnow()


def test_an_api_signup_is_recorded_as_the_api(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(VERIFY="off")
    with app.app_context():
        forum = make_forum()
        client = browser(app)
        created = client.post(
            f"/api/v1/forums/{forum.slug}/signups", json={**LISTENER, "publish_consent": True}
        )
        assert created.status_code == 201
        assert summary(rows()) == [
            ("sms", True, "api", "sms.v1"),
            ("publish", True, "api", "publish.v1"),
        ]
        # The same number again changes nothing, so records nothing.
        again = client.post(f"/api/v1/forums/{forum.slug}/signups", json=LISTENER)
        assert again.status_code == 202
        assert len(rows()) == 2


def test_the_manage_page_records_what_changed_with_its_own_wording(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(VERIFY="off")
    with app.app_context():
        forum = make_forum()
        client = browser(app)
        assert client.post(f"/forums/{forum.slug}", data=form()).status_code == 303
        page = client.get("/manage/mine").get_data(as_text=True)
        assert consents.text("sms.manage.v1") in page
        # Untick texts, tick publication; the rest unchanged.
        changed = edits(sms_consent=False, publish_consent=True)
        assert client.post("/manage/mine", data=changed).status_code == 303

        assert summary(rows())[2:] == [
            ("sms", False, "web", "sms.manage.v1"),
            ("publish", True, "web", "publish.manage.v1"),
        ]
        # Saving again without a change records nothing more.
        assert client.post("/manage/mine", data=changed).status_code == 303
        assert len(rows()) == 4


def test_stop_and_start_are_recorded_for_every_signup_of_the_number(app, client) -> None:  # type: ignore[no-untyped-def]
    first, second = make_forum(), make_forum(title="Trains")
    listener = make_signup(first)
    make_signup(second, phone=listener.phone)
    other = make_signup(first)

    assert text_in(client, listener.phone, "Stop ", "SM1").status_code == 200
    # Twilio retrying the same webhook records nothing twice.
    assert text_in(client, listener.phone, "Stop ", "SM1").status_code == 200
    stops = rows(given=False)
    assert sorted(c.forum_id for c in stops) == sorted([first.id, second.id])
    assert {(c.method, c.detail, c.wording, c.phone) for c in stops} == {
        ("sms_keyword", "STOP", STOP_LINE, listener.phone)
    }
    assert rows(signup_id=other.id) == []

    reply = text_in(client, listener.phone, "start", "SM2")
    texts = [m.text for m in ElementTree.fromstring(reply.data).findall("Message")]
    # The ledger stores the reply the listener got, word for word.
    assert texts == [consents.text("sms.start.v1")]
    starts = rows(given=True, method="sms_keyword")
    assert len(starts) == 2 and {c.detail for c in starts} == {"START"}


def test_a_stop_from_a_number_without_signups_is_kept_without_a_forum(app, client) -> None:  # type: ignore[no-untyped-def]
    assert text_in(client, "+447400999888", "QUIT", "SM9").status_code == 200
    [row] = rows()
    assert (row.forum_id, row.signup_id, row.phone, row.given) == (
        None,
        None,
        "+447400999888",
        False,
    )


def test_twilio_reporting_an_opt_out_is_recorded_as_the_provider(app) -> None:  # type: ignore[no-untyped-def]
    listener = make_signup(make_forum())
    outbox.opt_out(listener.phone, utcnow(), source="twilio")
    db.session.commit()
    assert [(c.method, c.detail, c.given) for c in rows()] == [("provider", "21610", False)]


def test_consents_given_on_the_phone_are_recorded_as_the_phone(app) -> None:  # type: ignore[no-untyped-def]
    forum = make_forum()
    call = Call(forum_id=forum.id, direction="inbound", number="+447400777666", state="holding")
    db.session.add(call)
    db.session.commit()
    signups.screen_call(
        call,
        {"name": "Kofi", "location": "Kumasi", "question": "Roads?", "sms_consent": True},
        utcnow(),
    )
    db.session.commit()
    # Only what the producer asked: publication was not asked, so not recorded.
    assert summary(rows()) == [("sms", True, "phone", "sms.phone.v1")]
    assert rows()[0].client_address is None


def test_producers_export_the_ledger_as_csv_safe_for_spreadsheets(app, client) -> None:  # type: ignore[no-untyped-def]
    forum = make_forum()
    evil = '=HYPERLINK("http://evil.example","x")'
    client.post(
        f"/api/v1/forums/{forum.slug}/signups",
        json={**LISTENER, "name": evil},
        environ_base={"REMOTE_ADDR": ADDRESS},
    )
    make_signup(make_forum(title="Another forum"))  # another forum's rows stay out

    assert client.get(f"/producer/forums/{forum.slug}/consents.csv").status_code == 302
    presenter = app.test_client()
    login(presenter, "presenter")
    assert presenter.get(f"/producer/forums/{forum.slug}/consents.csv").status_code == 403

    login(client)
    texts_page = client.get(f"/producer/forums/{forum.slug}/messages").get_data(as_text=True)
    assert f"/producer/forums/{forum.slug}/consents.csv" in texts_page
    response = client.get(f"/producer/forums/{forum.slug}/consents.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"  # staff data stays out of caches
    table = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert table[0] == list(consents.CSV_COLUMNS)
    assert len(table) == 3
    record = dict(zip(table[0], table[1], strict=True))
    assert record["name"] == "'" + evil
    assert record["phone"] == "'" + E164  # a leading + is a formula too
    assert (record["purpose"], record["given"], record["method"]) == ("sms", "yes", "api")
    assert record["wording"] == consents.text("sms.v1")
    assert record["client_address"] == ADDRESS
    assert record["recorded_at"].endswith("Z")
    for row in table[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row)


def test_erasing_a_signup_keeps_only_its_sms_opt_outs(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(VERIFY="off")
    with app.app_context():
        forum = make_forum()
        client = browser(app)
        client.post(f"/forums/{forum.slug}", data=form(publish_consent=True))
        # Texts withdrawn, publication too.
        client.post("/manage/mine", data=edits(sms_consent=False, publish_consent=False))
        text_in(client, E164, "STOP", "SM3")
        assert len(rows()) == 5

        assert client.post("/manage/mine/erase").status_code == 200
        assert db.session.query(Signup).count() == 0

        kept = rows()
        assert [(c.method, c.wording_version) for c in kept] == [
            ("web", "sms.manage.v1"),
            ("sms_keyword", "sms.stop.v1"),
        ]
        for consent in kept:
            assert (consent.purpose, consent.given) == ("sms", False)
            assert consent.phone == E164  # what proves the opt-out
            assert consent.client_address is None and consent.signup_id is None
            assert consent.forum_id == forum.id and consent.recorded_at is not None


def test_withdrawing_on_the_manage_page_withdraws_both_consents_in_the_ledger(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(VERIFY="off")
    with app.app_context():
        forum = make_forum(languages=["en", "fr"])
        client = browser(app)
        client.post(f"/forums/{forum.slug}?lang=fr", data=form(publish_consent=True))
        assert summary(rows()) == [
            ("sms", True, "web", "sms.v1"),
            ("publish", True, "web", "publish.v1"),
        ]

        assert client.post("/manage/mine/withdraw").status_code == 303
        signup = db.session.scalars(sa.select(Signup)).one()
        assert (signup.status, signup.sms_consent, signup.publish_consent) == (
            "withdrawn",
            False,
            False,
        )
        withdrawn = rows()[2:]
        assert summary(withdrawn) == [
            ("sms", False, "web", "sms.withdraw.v1"),
            ("publish", False, "web", "publish.withdraw.v1"),
        ]
        for consent in withdrawn:
            assert consent.client_address == ADDRESS and consent.phone == E164
            # The button as the listener read it, on a French page.
            assert consent.wording == consents.shown(consent.wording_version, "fr")
            assert consent.wording != consents.text(consent.wording_version)

        # Erasing afterwards keeps the withdrawal of texts: it proves the opt-out.
        assert client.post("/manage/mine/erase").status_code == 200
        assert [(c.wording_version, c.given) for c in rows()] == [("sms.withdraw.v1", False)]


def test_the_purge_keeps_opt_outs_and_the_consent_behind_published_comments(app) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    forum = make_forum(starts_at=now - timedelta(days=100), now=now)
    source = consents.web_form(ADDRESS)
    then = now - timedelta(days=101)
    published = signups.register(
        forum,
        {**LISTENER, "publish_consent": True},
        then,
        default_region="GB",
        source=source,
    ).signup
    wiped = signups.register(
        forum, {**LISTENER, "phone": "+44 7400 555124"}, then, default_region="GB", source=source
    ).signup
    published.published = True
    outbox.opt_out("+447400555124", now)
    db.session.commit()
    assert len(rows()) == 5

    assert privacy.purge(now, 90) == 2
    db.session.commit()

    kept = rows(signup_id=published.id)
    assert [(c.purpose, c.given) for c in kept] == [("publish", True)]
    assert kept[0].phone is None and kept[0].client_address is None
    assert kept[0].wording == consents.text("publish.v1")
    [opt_out] = rows(signup_id=wiped.id)
    assert (opt_out.purpose, opt_out.given, opt_out.phone) == ("sms", False, "+447400555124")
    assert opt_out.client_address is None


def test_the_stored_wordings_are_the_texts_listeners_see(app) -> None:  # type: ignore[no-untyped-def]
    assert consents.text("sms.stop.v1") == stop_line("en") == STOP_LINE
    for version, wording in consents.WORDINGS.items():
        assert wording.version == version
        assert version.split(".")[0] in ("sms", "publish")
        assert version.split(".")[0] == {"sms": "sms", "publish": "publish"}[wording.purpose]
