"""The switchboard on the producer's queue board and the presenter's board, in a real browser.

Calls are seeded straight into the database (``calls.record_inbound``: a caller
holding on the line), so no Twilio is involved; hold and mute need Twilio and are covered
elsewhere. The server and the browser are the fixtures of tests/headless.py, shared with
``test_browser``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from phonein import consents
from phonein.extensions import db
from phonein.live import calls
from phonein.models import Forum, Signup
from phonein.times import utcnow

from .conftest import bearer, make_forum, make_signup, make_user
from .headless import BROWSER_ZONE, ExplainingWait

pytestmark = pytest.mark.browser

TIMER = re.compile(r"^\d{2,}:\d{2}$")
# The boards poll every second: a change in the database shows within two.
UPDATE_WITHIN = 2


def _sid() -> str:
    return "CA" + uuid4().hex


def _log_in(driver: webdriver.Chrome, base: str, email: str) -> ExplainingWait:
    driver.get(f"{base}/producer/login")
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys("correct horse battery")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait = ExplainingWait(driver)
    # Let the login's redirect land first, or it can overtake the next navigation.
    wait.until(lambda d: "/producer/login" not in d.current_url)
    return wait


def _read(driver: webdriver.Chrome, css: str, attribute: str | None = None) -> str | None:
    """The text (or an attribute) of the first element ``css`` finds, read in one go.

    The boards redraw their lists when the queue changes; a single script call cannot see
    an element go stale halfway, as ``find_element(...).text`` can.
    """
    return driver.execute_script(  # type: ignore[no-any-return]
        "var n = document.querySelector(arguments[0]);"
        "return n ? (arguments[1] ? n.getAttribute(arguments[1]) : n.textContent) : null;",
        css,
        attribute,
    )


def _ticks(wait: ExplainingWait, css: str) -> None:
    """The timer at ``css`` shows mm:ss and moves on by itself, between polls."""
    first = wait.until(lambda d: (t := _read(d, css)) and TIMER.match(t) and t)
    wait.until(lambda d: (t := _read(d, css)) and t != first and TIMER.match(t))


def _local_hhmm(moment: str) -> str:
    at = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return at.astimezone(ZoneInfo(BROWSER_ZONE)).strftime("%H:%M")


def _forum(slug: str) -> Forum:
    return db.session.scalars(sa.select(Forum).where(Forum.slug == slug)).one()


def _seed_live_forum(
    app: Any, queued: int = 2, *, hold_first: bool = True, **forum: Any
) -> dict[str, Any]:
    """A live forum with ``queued`` callers; the first holds on the line since a minute."""
    with app.app_context():
        now = utcnow()
        forum.setdefault("starts_at", now - timedelta(minutes=5))
        made = make_forum(now=now, **forum)
        signups = [make_signup(made, status="queued") for _ in range(queued)]
        sid = _sid()
        if hold_first:
            first = signups[0]
            calls.record_inbound(made, first, sid, first.phone, now - timedelta(minutes=1))
            db.session.commit()
        return {
            "slug": made.slug,
            "ids": [s.id for s in signups],
            "sid": sid,
        }


def test_the_producer_sees_the_lines_and_screens_a_caller_live(live_app, browser):
    app, base = live_app
    seed = _seed_live_forum(app)
    with app.app_context():
        forum = _forum(seed["slug"])
        stranger, claimant = _sid(), _sid()
        calls.record_inbound(forum, None, stranger, "+447700900123", utcnow())
        # A caller ID whose carrier could not vouch for it (StirVerstat failed).
        calls.record_inbound(forum, None, claimant, "+447700900456", utcnow(), unverified=True)
        db.session.commit()
        email = make_user("producer")[0].email
    holding_id, quiet_id = seed["ids"]

    wait = _log_in(browser, base, email)
    browser.get(f"{base}/producer/forums/{seed['slug']}/queue")

    # The first waiting caller holds on the line, and their timer ticks by itself.
    holder = f'#waiting li[data-id="{holding_id}"]'
    wait.until(lambda d: _read(d, f"{holder} .line-state", "data-state") == "holding")
    assert re.fullmatch(r"holding \d\d:\d\d", _read(browser, f"{holder} .line-state") or "")
    _ticks(wait, f"{holder} .line-state .timer")
    # Their back-timed turn, in the browser's own zone.
    expected = browser.execute_script(
        "var n = document.querySelector(arguments[0]);"
        "return [n.textContent, n.getAttribute('data-at')];",
        f"{holder} .expected",
    )
    assert expected[0] == "expected ~" + _local_hhmm(expected[1])
    assert not browser.find_elements(By.CSS_SELECTOR, f"{holder} .wont-make-it")
    assert browser.find_elements(By.CSS_SELECTOR, f'{holder} [data-call-action="drop"]')
    assert browser.find_elements(By.CSS_SELECTOR, f'{holder} [data-queue-action="on-air-now"]')
    # The second is not on the line: the producer may call them back.
    quiet = f'#waiting li[data-id="{quiet_id}"]'
    assert _read(browser, f"{quiet} .line-state") == "not on the line"
    assert browser.find_elements(By.CSS_SELECTOR, f'{quiet} [data-call-action="callback"]')
    # The header: time left counts down; the studio line has never been dialled.
    _ticks(wait, "#queue-show .countdown")
    assert TIMER.match(_read(browser, "#average-call") or "")
    assert browser.find_elements(By.CSS_SELECTOR, '#studio-line [data-call-action="redial"]')

    # The unscreened caller: their number, how long they have held, a form to screen them.
    with app.app_context():
        call_id = calls.by_sid(stranger).id
    card = f'#unscreened li[data-call-id="{call_id}"]'
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, card), "+447700900123"))
    assert (_read(browser, f"{card} .line-state") or "").startswith("holding ")
    assert not browser.find_elements(By.CSS_SELECTOR, f"{card} .badge.warn")
    with app.app_context():
        claimant_card = f'#unscreened li[data-call-id="{calls.by_sid(claimant).id}"]'
    assert _read(browser, f"{claimant_card} .badge.warn") == "caller ID not verified"
    form = f"{card} form"

    # Refused without a location: the error shows by the field, and the name typed stays.
    # (The list is not redrawn under a focused field, nor over what was typed.)
    browser.find_element(By.CSS_SELECTOR, f"{form} [name=name]").send_keys("Priya <b>Nair</b>")
    browser.find_element(By.CSS_SELECTOR, f'{form} [data-call-action="screen"]').click()
    wait.until(
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, f"{form} label.has-error [name=location]")
            and d.find_elements(By.CSS_SELECTOR, f"{form} label.has-error [name=question]")
        )
    )
    assert browser.execute_script(
        "return document.querySelector(arguments[0]).value", f"{form} [name=name]"
    ) == ("Priya <b>Nair</b>")
    assert "where you are" in (_read(browser, f"{form} .field-error") or "").lower()

    # Each consent box is labelled with the question the ledger records as asked.
    for name, version in (("sms_consent", "sms.phone.v1"), ("publish_consent", "publish.phone.v1")):
        label = browser.find_element(By.CSS_SELECTOR, f"{form} label:has([name={name}])")
        assert label.text.strip() == consents.text(version)
    browser.find_element(By.CSS_SELECTOR, f"{form} [name=location]").send_keys("Bristol")
    browser.find_element(By.CSS_SELECTOR, f"{form} [name=question]").send_keys("What about buses?")
    browser.find_element(By.CSS_SELECTOR, f'{form} [data-call-action="screen"]').click()

    # They join the waiting list (third), still holding, and leave the unscreened list.
    wait.until(ec.text_to_be_present_in_element((By.ID, "waiting"), "Priya <b>Nair</b>"))
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, card))
    third = "#waiting > li:nth-child(3)"
    assert "Priya <b>Nair</b>" in (_read(browser, third) or "")
    assert _read(browser, third, "data-line-state") == "holding"
    assert _read(browser, "#queue-error", "hidden") is not None
    with app.app_context():
        [screened] = db.session.scalars(
            sa.select(Signup).where(Signup.name == "Priya <b>Nair</b>")
        ).all()
        assert screened.status == "queued"
        assert screened.location == "Bristol"
        assert screened.question == "What about buses?"
        assert screened.phone == "+447700900123"
        assert screened.sms_consent is False  # not asked: the form leaves it alone


def test_the_presenter_board_shows_the_lines_and_follows_a_call(live_app, browser):
    app, base = live_app
    seed = _seed_live_forum(app, queued=3, hold_first=False)
    first_id, second_id, _ = seed["ids"]
    with app.app_context():
        email = make_user("presenter")[0].email
        _, producer_token = make_user("producer")
    # The first caller goes on air (nobody is on the line yet: Twilio has nothing to do).
    step = app.test_client().post(
        f"/api/v1/forums/{seed['slug']}/queue/next", headers=bearer(producer_token)
    )
    assert step.status_code == 200, step.get_json()
    assert step.get_json()["on_air"]["id"] == first_id
    # Then their line joins the conference, and the second caller holds on the line.
    with app.app_context():
        forum = _forum(seed["slug"])
        first, second = db.session.get(Signup, first_id), db.session.get(Signup, second_id)
        now = utcnow()
        on_air = calls.record_inbound(forum, first, _sid(), first.phone, now)
        assert calls.on_air(on_air, now)
        sid = _sid()
        calls.record_inbound(forum, second, sid, second.phone, now)
        db.session.commit()
        first_name = first.name

    _log_in(browser, base, email)
    wait = ExplainingWait(browser)
    browser.get(f"{base}/board/{seed['slug']}")

    # On air: the caller's line, and how long they have been on air, ticking.
    wait.until(ec.text_to_be_present_in_element((By.ID, "board-on-air"), first_name))
    on_air = "#board-on-air .line-state"
    assert _read(browser, on_air, "data-state") == "on_air"
    _ticks(wait, f"{on_air} .timer")
    # Next: the second holds (ticking), the third is not on the line; both back-timed.
    nxt = f'#board-next li[data-id="{second_id}"]'
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, f"{nxt} .line-state"), "holding"))
    _ticks(wait, f"{nxt} .line-state .timer")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#board-next > li")) == 2
    assert _read(browser, "#board-next > li:nth-child(2) .line-state") == "not on the line"
    for row in ("#board-next > li:nth-child(1)", "#board-next > li:nth-child(2)"):
        assert re.fullmatch(r"expected ~\d\d:\d\d", _read(browser, f"{row} .expected") or "")
        assert not browser.find_elements(By.CSS_SELECTOR, f"{row} .wont-make-it")
    _ticks(wait, "#board-show .countdown")
    browser.execute_script("window.notReloaded = true;")

    # The second caller hangs up: the board shows it without a reload, within two seconds.
    with app.app_context():
        call = calls.by_sid(sid)
        assert calls.ended(call, utcnow(), "hung_up")
        db.session.commit()
    WebDriverWait(browser, UPDATE_WITHIN, poll_frequency=0.1).until(
        lambda d: _read(d, f"{nxt} .line-state") == "not on the line"
    )
    assert not browser.find_elements(By.CSS_SELECTOR, f"{nxt} .timer")
    assert browser.execute_script("return window.notReloaded") is True


def test_callers_who_will_not_make_it_are_flagged_on_both_boards(live_app, browser):
    app, base = live_app
    now = utcnow()
    # Three minutes left and four-minute calls: the first caller makes it, the second not.
    seed = _seed_live_forum(app, starts_at=now - timedelta(minutes=57))
    with app.app_context():
        email = make_user("producer")[0].email
    first, second = seed["ids"]

    wait = _log_in(browser, base, email)
    for page, rows in (
        (f"/producer/forums/{seed['slug']}/queue", "#waiting"),
        (f"/board/{seed['slug']}", "#board-next"),
    ):
        browser.get(base + page)
        late = f'{rows} li[data-id="{second}"] .wont-make-it'
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, late)))
        assert _read(browser, late) == "won't make it"
        assert not browser.find_elements(
            By.CSS_SELECTOR, f'{rows} li[data-id="{first}"] .wont-make-it'
        )
