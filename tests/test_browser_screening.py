"""Screening by keyboard in a real browser: tick several, press Q, see them queued in place.

The server and the browser are the fixtures of tests/headless.py (CSRF on, a real session
cookie), so the test covers static/screening.js, the page's forms and the CSP together.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from phonein.extensions import db
from phonein.live import queue
from phonein.models import Forum, Signup

from .conftest import make_forum, make_signup, make_user
from .headless import ExplainingWait

pytestmark = pytest.mark.browser


def _read(driver, script: str):  # type: ignore[no-untyped-def]
    return driver.execute_script(script)


def test_bulk_approve_and_queue_by_keyboard(live_app, browser):
    app, base = live_app
    with app.app_context():
        forum = make_forum()
        earlier = make_signup(forum, status="queued", name="Already Queued")
        pending = [make_signup(forum, name=f"Caller {n}") for n in range(4)]
        make_signup(forum, name="Ahmad أحمد", location="القاهرة", timezone="Africa/Cairo")
        user, _ = make_user("producer")
        slug, email = forum.slug, user.email
        earlier_id, pending_ids = earlier.id, [s.id for s in pending]

    browser.get(f"{base}/producer/login")
    browser.find_element(By.ID, "email").send_keys(email)
    browser.find_element(By.ID, "password").send_keys("correct horse battery")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait = ExplainingWait(browser)
    wait.until(lambda d: "/producer/login" not in d.current_url)
    browser.get(f"{base}/producer/forums/{slug}/signups")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "article.signup-card"))
    # Set on this page: it survives only if the page is never reloaded.
    browser.execute_script("window.notReloaded = true;")
    shown = _read(
        browser,
        "return Array.from(document.querySelectorAll('article.signup-card'))"
        ".map(function (c) { return +c.getAttribute('data-signup-id'); });",
    )
    # Newest first: the Cairo listener, then Caller 3, 2, 1, 0, then the queued one.
    assert shown[1:5] == pending_ids[::-1] and shown[-1] == earlier_id

    keys = ActionChains(browser)
    # J to the second card, tick it and the next two, then Q: the three ticked are
    # approved and queued at once, in the order they are shown.
    keys.send_keys("j", "j", "x", "j", "x", "j", "x").perform()
    assert _read(browser, "return document.getElementById('selected-count').textContent") == (
        "3 signups ticked."
    )
    # Typing in a field never fires a shortcut.
    notes = browser.find_element(By.CSS_SELECTOR, f"#signup-{shown[4]} input[name=notes]")
    notes.send_keys("jxq")
    assert notes.get_attribute("value") == "jxq"
    browser.find_element(By.ID, f"signup-{shown[3]}").click()
    keys.send_keys("q").perform()

    wait.until(
        lambda d: "3 signups approved and queued." in d.find_element(By.ID, "screening-status").text
    )
    for signup_id in shown[1:4]:
        card = browser.find_element(By.ID, f"signup-{signup_id}")
        assert "Queued · number" in card.text
        assert not card.find_element(By.CSS_SELECTOR, "input[type=checkbox]").is_selected()
    assert _read(browser, "return window.notReloaded === true;")
    # Focus stays on the card the producer was on.
    assert _read(browser, "return document.activeElement.id") == f"signup-{shown[3]}"
    assert _read(browser, "return document.getElementById('selected-count').textContent") != (
        "3 signups ticked."
    )

    with app.app_context():
        forum_row = db.session.scalars(sa.select(Forum).where(Forum.slug == slug)).one()
        waiting = [s.id for s in queue.snapshot(forum_row).waiting]
        assert waiting == [earlier_id, *shown[1:4]]
        untouched = db.session.get(Signup, shown[4])
        assert untouched is not None and untouched.status == "pending"

    # Pressing Q again on a queued card changes nothing, and says why.
    keys.send_keys("q").perform()
    wait.until(lambda d: "already queued" in d.find_element(By.ID, "screening-status").text)
    with app.app_context():
        assert [s.id for s in queue.snapshot(forum_row).waiting] == [earlier_id, *shown[1:4]]

    # The bulk bar's buttons work by mouse too, and focus stays on the button pressed.
    keys.send_keys("j", "x").perform()
    reject = browser.find_element(By.CSS_SELECTOR, "#bulk button[value=reject]")
    reject.click()
    wait.until(lambda d: "rejected." in d.find_element(By.ID, "screening-status").text)
    assert _read(browser, "return document.activeElement.value") == "reject"
    assert "Rejected" in browser.find_element(By.ID, f"signup-{shown[4]}").text
    assert _read(browser, "return window.notReloaded === true;")
    with app.app_context():
        rejected = db.session.get(Signup, shown[4])
        assert rejected is not None and rejected.status == "rejected"
