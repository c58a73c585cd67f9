"""Nobody can spend the station's money: codes to numbers that never prove themselves are
capped per number range and for the whole station, and proved listeners never notice."""

from __future__ import annotations

from datetime import timedelta

from phonein.extensions import db
from phonein.models import CodeSend, Verification
from phonein.sms import codes

from .conftest import login, make_forum

LISTENER = {
    "name": "Ama Owusu",
    "location": "Accra, Ghana",
    "question": "Will the new lanes reach Kumasi?",
    "sms_consent": True,
    "publish_consent": False,
}


def _start(client, forum, phone: str):  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1/forums/{forum.slug}/signups", json={**LISTENER, "phone": phone})


def _range_limited(make_app):  # type: ignore[no-untyped-def]
    """An app with codes on and a range limit of 3 codes never entered an hour."""
    return make_app(
        VERIFY="sms",
        VERIFY_BACKEND="memory",
        VERIFY_RANGE_UNPROVED_PER_HOUR=3,
        RATELIMIT_ENABLED=False,
    )


def _minutes_pass(minutes: int) -> None:
    """Age every code sent so far, as if ``minutes`` had passed."""
    for sent in db.session.query(CodeSend):
        sent.sent_at -= timedelta(minutes=minutes)
    db.session.commit()


def _codes_sent(app) -> int:  # type: ignore[no-untyped-def]
    return len(codes.sender(app).sent)  # type: ignore[attr-defined]


def test_past_the_hourly_budget_signups_get_a_polite_429_and_producers_a_banner(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(
        VERIFY="sms", VERIFY_BACKEND="memory", UNVERIFIED_SMS_PER_HOUR=5, RATELIMIT_ENABLED=False
    )
    with app.app_context():
        forum = make_forum()
        client = app.test_client()
        started = [_start(client, forum, f"+233 24 {1000000 + i * 7919:07d}") for i in range(5)]
        assert [r.status_code for r in started] == [202] * 5

        refused = _start(client, forum, "+233 24 999 0001")

        assert refused.status_code == 429
        assert "more signups than we can check" in refused.get_json()["error"]["message"]
        assert _codes_sent(app) == 5
        # A listener already sent a code proves the number as usual: entering a code sends
        # nothing, so the budget does not stand in the way.
        first = started[0].get_json()["verification_id"]
        code = codes.sender(app).last_code("+233241000000")  # type: ignore[attr-defined]
        assert client.post(f"/api/v1/verifications/{first}", json={"code": code}).status_code == 201
        # Producers see why signups stopped.
        staff = app.test_client()
        login(staff)
        page = staff.get(f"/producer/forums/{forum.slug}/signups").get_data(as_text=True)
        assert "budget of texts to unproved numbers" in page


def test_the_banner_is_not_shown_while_the_budget_lasts(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(VERIFY="sms", VERIFY_BACKEND="memory", UNVERIFIED_SMS_PER_HOUR=5)
    with app.app_context():
        forum = make_forum()
        staff = app.test_client()
        login(staff)
        page = staff.get(f"/producer/forums/{forum.slug}/signups").get_data(as_text=True)
        assert "budget of texts to unproved numbers" not in page


def test_a_run_of_numbers_whose_codes_are_never_entered_stops_its_range_only(make_app) -> None:  # type: ignore[no-untyped-def]
    app = _range_limited(make_app)
    with app.app_context():
        forum = make_forum()
        client = app.test_client()
        sequential = [f"+44 7400 1000{i:02d}" for i in range(3)]
        assert [_start(client, forum, n).status_code for n in sequential] == [202] * 3
        # Minutes pass; none of those codes is entered.
        _minutes_pass(4)

        next_in_range = _start(client, forum, "+44 7400 100099")
        elsewhere = _start(client, forum, "+44 7911 123456")

        assert next_in_range.status_code == 429
        assert "numbers like this one" in next_in_range.get_json()["error"]["message"]
        assert elsewhere.status_code == 202
        assert _codes_sent(app) == 4


def test_a_burst_of_real_listeners_from_one_range_who_enter_their_codes_is_not_stopped(
    make_app,
) -> None:  # type: ignore[no-untyped-def]
    app = _range_limited(make_app)
    with app.app_context():
        forum = make_forum()
        client = app.test_client()
        for i in range(6):
            phone = f"+44 7400 2000{i:02d}"
            started = _start(client, forum, phone)
            assert started.status_code == 202
            code = codes.sender(app).last_code(f"+4474002000{i:02d}")  # type: ignore[attr-defined]
            vid = started.get_json()["verification_id"]
            assert (
                client.post(f"/api/v1/verifications/{vid}", json={"code": code}).status_code == 201
            )
            _minutes_pass(4)
        assert (
            db.session.query(Verification).filter(Verification.proved_at.is_not(None)).count() == 6
        )
