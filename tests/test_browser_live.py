"""Live controls in a real browser: undo of a mis-clicked "next" on the producer's queue
board, and the show's clock on the presenter's board before, during and after a show.

The server and the browser are the fixtures of tests/headless.py.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
import sqlalchemy as sa
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from phonein.extensions import db
from phonein.live import calls
from phonein.models import Forum
from phonein.times import utcnow

from .conftest import make_forum, make_signup, make_user
from .headless import ExplainingWait

pytestmark = pytest.mark.browser

WALL = re.compile(r"^\d{2}:\d{2}:\d{2}$")
TIMER = re.compile(r"^\d{2}:\d{2}$")


def _log_in(driver: Any, base: str, email: str) -> ExplainingWait:
    driver.get(f"{base}/producer/login")
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys("correct horse battery")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait = ExplainingWait(driver)
    wait.until(lambda d: "/producer/login" not in d.current_url)
    return wait


def _read(driver: Any, css: str, attribute: str | None = None) -> str | None:
    return driver.execute_script(  # type: ignore[no-any-return]
        "var n = document.querySelector(arguments[0]);"
        "return n ? (arguments[1] ? n.getAttribute(arguments[1]) : n.textContent) : null;",
        css,
        attribute,
    )


def _ids(driver: Any, css: str) -> list[int]:
    found = driver.execute_script(
        "return Array.prototype.map.call(document.querySelectorAll(arguments[0]),"
        " function (n) { return n.getAttribute('data-id'); });",
        css,
    )
    return [int(i) for i in found]


def test_a_mis_clicked_next_is_undone_from_the_toast(live_app, browser):
    app, base = live_app
    with app.app_context():
        now = utcnow()
        forum = make_forum(starts_at=now - timedelta(minutes=5), now=now)
        signups = [make_signup(forum, status="queued") for _ in range(3)]
        for signup in signups:  # everyone holds on the line: "next" asks nothing
            calls.record_inbound(forum, signup, "CA" + uuid4().hex, signup.phone, now)
        db.session.commit()
        slug, (a, b, c) = forum.slug, [(s.id, s.name) for s in signups]
        email = make_user("producer")[0].email

    wait = _log_in(browser, base, email)
    browser.get(f"{base}/producer/forums/{slug}/queue")
    wait.until(lambda d: _ids(d, "#waiting > li[data-id]") == [a[0], b[0], c[0]])
    assert _read(browser, "#waiting > li .name", "dir") == "auto"
    # The shortcuts are written on the page.
    assert "Undo the last live action" in browser.find_element(
        By.CSS_SELECTOR, ".shortcuts"
    ).get_attribute("textContent")

    # N: the first caller goes on air.
    browser.find_element(By.TAG_NAME, "body").send_keys("n")
    wait.until(lambda d: a[1] in (_read(d, "#on-air") or ""))
    wait.until(lambda d: _ids(d, "#waiting > li[data-id]") == [b[0], c[0]])
    # The mis-click, with the button this time: the cursor stays on it.
    button = browser.find_element(By.CSS_SELECTOR, '[data-action="next"]')
    button.click()
    wait.until(lambda d: b[1] in (_read(d, "#on-air") or ""))
    assert (
        browser.execute_script("return document.activeElement.getAttribute('data-action')")
        == "next"
    )
    assert f"{a[1]} is done; {b[1]} is on air." in (_read(browser, "#action-result") or "")
    wait.until(lambda d: d.find_element(By.ID, "undo-toast").is_displayed())
    assert "Next caller" in (_read(browser, "#undo-message") or "")
    assert re.search(r"\d+ s left to undo", _read(browser, "#undo-left") or "")

    browser.find_element(By.ID, "undo-button").click()
    # Exactly as before: a on air, then b and c waiting in that order.
    wait.until(lambda d: a[1] in (_read(d, "#on-air") or ""))
    wait.until(lambda d: _ids(d, "#waiting > li[data-id]") == [b[0], c[0]])
    wait.until(lambda d: (_read(d, "#action-result") or "").startswith("Undone: Next caller."))
    wait.until(lambda d: not d.find_element(By.ID, "undo-toast").is_displayed())
    # U with nothing left to undo says so rather than doing anything.
    browser.find_element(By.TAG_NAME, "body").send_keys("u")
    wait.until(lambda d: _read(d, "#action-result") == "Nothing to undo.")
    # Typing a pronunciation note is never redrawn away, and N typed there is text.
    field = browser.find_element(
        By.CSS_SELECTOR, f'#waiting li[data-id="{b[0]}"] input[name="pronunciation"]'
    )
    field.send_keys("Nnn-ah")
    field.send_keys(Keys.ENTER)
    wait.until(
        lambda d: (_read(d, f'#waiting li[data-id="{b[0]}"] .pronunciation') or "") == "Nnn-ah"
    )
    assert a[1] in (_read(browser, "#on-air") or "")


def _set_forum(app: Any, slug: str, **values: Any) -> None:
    with app.app_context():
        forum = db.session.scalars(sa.select(Forum).where(Forum.slug == slug)).one()
        for name, value in values.items():
            setattr(forum, name, value)
        db.session.commit()


def test_the_board_clock_before_during_and_after_the_show(live_app, browser):
    app, base = live_app
    with app.app_context():
        now = utcnow()
        forum = make_forum(starts_at=now + timedelta(days=2, hours=3), now=now)
        slug = forum.slug
        email = make_user("presenter")[0].email

    # A presenter logging in lands on this board: the next forum.
    wait = _log_in(browser, base, email)
    wait.until(lambda d: d.current_url.endswith(f"/board/{slug}"))
    show = "#board-show"
    wait.until(lambda d: _read(d, f"{show} .show-state") == "Open · not started")
    assert WALL.match(_read(browser, f"{show} .wall-clock") or "")
    assert _read(browser, f"{show} .countdown-label") == "Starts in "
    assert re.match(r"^2 d 0[23]:\d{2}$", _read(browser, f"{show} .countdown") or "")
    assert _read(browser, "#board-on-air") == "Nobody on air"

    # During: time left, counting down, in words as well as colour near the end.
    now = utcnow()
    _set_forum(app, slug, starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(minutes=30))
    wait.until(lambda d: _read(d, f"{show} .show-state") == "Live")
    assert _read(browser, f"{show} .countdown-label") == "Time left "
    first = wait.until(lambda d: (t := _read(d, f"{show} .countdown")) and TIMER.match(t) and t)
    wait.until(lambda d: _read(d, f"{show} .countdown") != first)
    assert _read(browser, show, "data-level") == "ok"
    # A caller waits: their name in its own direction, their stance, how to say their name
    # (producer-written, shown as text, never as markup).
    with app.app_context():
        forum = db.session.scalars(sa.select(Forum).where(Forum.slug == slug)).one()
        caller = make_signup(forum, name="سارة الحسيني", question="لماذا؟", status="queued")
        caller.stance = "against"
        caller.pronunciation = "SAH-rah <b>al</b>-hu-SAY-nee"
        db.session.commit()
    row = "#board-next > li:first-child"
    wait.until(lambda d: _read(d, f"{row} .name") == "سارة الحسيني")
    assert _read(browser, f"{row} .name", "dir") == "auto"
    assert _read(browser, f"{row} .text", "dir") == "auto"
    assert _read(browser, f"{row} .pronunciation") == "SAH-rah <b>al</b>-hu-SAY-nee"
    assert browser.find_elements(By.CSS_SELECTOR, f"{row} .pronunciation b") == []
    assert _read(browser, f"{row} .stance") == "Stance: against"
    _set_forum(app, slug, ends_at=utcnow() + timedelta(seconds=90))
    wait.until(lambda d: _read(d, show, "data-level") == "last")
    assert _read(browser, f"{show} .countdown-note") == " (last 2 minutes)"
    browser.save_screenshot("/tmp/board-clock-live.png")

    # After closing: "Show closed", not "On air now · nobody".
    _set_forum(app, slug, status="closed", closed_at=utcnow())
    wait.until(lambda d: _read(d, f"{show} .show-state") == "Closed")
    assert _read(browser, f"{show} .show-over") == "Show closed"
    assert _read(browser, "#board-on-air") == "Show closed"
    assert _read(browser, "#board-now-title") == "The show is over"
    assert browser.find_elements(By.CSS_SELECTOR, f"{show} .countdown") == []
