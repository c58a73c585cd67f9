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


# The pumping scenario: 10 waves, minutes apart, of one signup from each of 30 addresses.
WAVES = 10
ADDRESSES = [f"198.51.100.{i}" for i in range(1, 31)]
PUMPING_BUDGET = 60


def _pumped_numbers(wave: int) -> list[tuple[str, str, bool]]:
    """Return one wave's (kind, number, sms_consent): 30 numbers an attacker would pick."""
    numbers: list[tuple[str, str, bool]] = []
    for i in range(3):
        numbers += [
            ("premium", f"+44 909 879 {wave}{i:03d}", True),
            ("toll_free", f"+44 800 028 {wave}{i:03d}", True),
            ("landline_text", f"+44 20 7946 {wave}{i:03d}", True),
            ("denied", f"+881 6 1234 {wave}{i:03d}", True),
            # A landline may sign up without texts: its code is a voice call, which costs too.
            ("landline_call", f"+44 113 496 0{wave}{i:02d}", False),
        ]
    for i in range(9):
        n = wave * 9 + i
        numbers.append(("sequential", f"+44 7400 {100000 + n:06d}", True))
    for i in range(6):
        # A new number range each time: only the station's budget can stop these.
        numbers.append(("spread", f"+44 {7401 + wave * 6 + i} {100000 + i:06d}", True))
    return numbers


def test_pumping_from_30_addresses_texts_nothing_past_the_budget_and_range_limits(
    make_app,
) -> None:  # type: ignore[no-untyped-def]
    """300 signups to premium, toll-free, landline, denied-prefix and sequential numbers:
    every answer is a clear 422 or 429 but for the codes the limits allow, and the fake
    Twilio (reached through the real SDK) sends exactly those and not one text more."""
    from phonein import phones

    from .fake_twilio import VERIFY_SERVICE_SID, FakeTwilio, settings

    with FakeTwilio() as fake:
        app = make_app(
            **settings(
                fake,
                VERIFY="sms",
                VERIFY_BACKEND=None,
                TWILIO_VERIFY_SERVICE_SID=VERIFY_SERVICE_SID,
                UNVERIFIED_SMS_PER_HOUR=PUMPING_BUDGET,
                RATELIMIT_ENABLED=True,
            )
        )
        with app.app_context():
            forum = make_forum()
            client = app.test_client()
            range_limit = int(app.config["VERIFY_RANGE_UNPROVED_PER_HOUR"])
            # What the limits allow, worked out independently: a range stops once the
            # codes sent to it in earlier waves (never entered, so unproved) reach its
            # limit; the budget stops everything once spent.
            earlier: dict[str, int] = {}
            allowed: dict[str, int] = {}
            answers: dict[int, int] = {}
            for wave in range(WAVES):
                this_wave: dict[str, int] = {}
                for address, (kind, number, sms) in zip(
                    ADDRESSES, _pumped_numbers(wave), strict=True
                ):
                    response = client.post(
                        f"/api/v1/forums/{forum.slug}/signups",
                        json={**LISTENER, "phone": number, "sms_consent": sms},
                        environ_base={"REMOTE_ADDR": address},
                    )
                    answers[response.status_code] = answers.get(response.status_code, 0) + 1
                    error = (response.get_json() or {}).get("error", {})
                    if kind in ("premium", "toll_free", "landline_text", "denied"):
                        assert response.status_code == 422, (kind, number)
                        field = "sms_consent" if kind == "landline_text" else "phone"
                        hint = {
                            "premium": "premium-rate",
                            "toll_free": "toll-free",
                            "landline_text": "landline",
                            "denied": "cannot text or call numbers of that range",
                        }[kind]
                        assert hint in error["fields"][field], (kind, error)
                        continue
                    e164 = phones.normalize(
                        number, country=None, timezone=None, default_region="GB"
                    )
                    span = phones.number_range(e164)
                    if earlier.get(span, 0) >= range_limit:
                        assert response.status_code == 429, (kind, number)
                        assert "numbers like this one" in error["message"]
                    elif sum(allowed.values()) >= PUMPING_BUDGET:
                        assert response.status_code == 429, (kind, number)
                        assert "more signups than we can check" in error["message"]
                    else:
                        assert response.status_code == 202, (kind, number, error)
                        allowed[e164] = 1
                        this_wave[span] = this_wave.get(span, 0) + 1
                for span, count in this_wave.items():
                    earlier[span] = earlier.get(span, 0) + count
                _minutes_pass(4)

            sent = [r["form"] for r in fake.rest("POST", "/Verifications")]
            # Counted at Twilio: one code for each 202, to exactly the allowed numbers.
            assert sorted(s["To"] for s in sent) == sorted(allowed)
            assert len(sent) == answers[202] == PUMPING_BUDGET
            assert fake.messages == []  # and not one ordinary text
            # The sequential range stopped after two waves (9 codes each: the codes of a
            # wave count once three minutes pass without their being entered).
            assert sum(1 for s in sent if s["To"].startswith("+447400")) == 18
            # Landlines got voice calls, capped by their range like texts.
            calls = [s for s in sent if s["Channel"] == "call"]
            assert calls and all(s["To"].startswith("+44113") for s in calls)
            assert len(calls) <= range_limit + 3
            assert answers[422] == 4 * 3 * WAVES
            assert answers[202] + answers[422] + answers[429] == 300
