"""The listener's signup page in a real browser: headless Chromium driven by Selenium.

These tests run the app as a real HTTP server with CSRF on (the ``live_app`` and
``browser`` fixtures of tests/headless.py), so they cover what the Flask test client
cannot: forum.js filling the time zone from the browser, the country select, the CSRF
token round trip through a real cookie, and escaping as the browser sees it. Locally they
skip when Chromium or chromedriver is missing; in CI (where ``CI`` is set and Chromium is
installed) a missing browser is a failure, not a skip.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from phonein.extensions import db
from phonein.models import Signup
from phonein.times import utcnow

from .conftest import bearer, make_forum, make_signup, make_user
from .headless import BROWSER_ZONE, WAIT, ExplainingWait

pytestmark = pytest.mark.browser


def _sign_up(driver: webdriver.Chrome, url: str, question: str) -> None:
    """Fill the signup form at ``url`` as a listener would and wait for the manage page."""
    driver.get(url)
    wait = WebDriverWait(driver, WAIT)
    form = wait.until(ec.presence_of_element_located((By.ID, "signup-form")))
    # forum.js runs at the end of the body: the hidden zone is filled once it has run.
    wait.until(lambda d: d.find_element(By.ID, "timezone").get_attribute("value"))
    form.find_element(By.ID, "name").send_keys("Dana Whitfield")
    form.find_element(By.ID, "location").send_keys("Newark, NJ, USA")
    Select(form.find_element(By.ID, "country")).select_by_value("US")
    form.find_element(By.ID, "phone").send_keys("(201) 555-0211")
    form.find_element(By.ID, "question").send_keys(question)
    consent = form.find_element(By.ID, "sms_consent")
    if not consent.is_selected():
        consent.click()
    assert consent.is_selected()
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(ec.url_contains("/manage/"))
    wait.until(ec.presence_of_element_located((By.ID, "manage-link")))


def _signups(app: Flask) -> list[Signup]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(Signup)))
        db.session.expunge_all()
        return rows


def test_a_listener_signs_up_in_a_real_browser(live_app, browser):
    app, base = live_app
    with app.app_context():
        slug = make_forum(timezone="Europe/London").slug

    _sign_up(browser, f"{base}/forums/{slug}", "First paragraph.\n\nSecond paragraph.")

    heading = browser.find_element(By.TAG_NAME, "h1")
    assert "You are signed up" in heading.text
    confirmation = browser.find_element(By.CSS_SELECTOR, ".confirmation").text
    assert "+1 201-555-0211" in confirmation
    link = browser.find_element(By.ID, "manage-link")
    assert "/manage/" in link.get_attribute("href")
    assert link.is_displayed()
    # The forum's time is also shown in the listener's own zone, from the browser, named
    # by its city (phonein.i18n), never by its IANA ID.
    shown = browser.find_element(By.TAG_NAME, "main").text
    assert "(New York Time)" in shown and BROWSER_ZONE not in shown

    [signup] = _signups(app)
    assert signup.phone == "+12015550211"
    assert signup.country == "US"
    assert signup.timezone == BROWSER_ZONE
    assert signup.sms_consent is True
    assert signup.question == "First paragraph.\n\nSecond paragraph."
    assert signup.name == "Dana Whitfield"
    assert signup.location == "Newark, NJ, USA"


def test_a_script_in_the_question_is_shown_as_text(live_app, browser):
    app, base = live_app
    with app.app_context():
        slug = make_forum().slug
    evil = "<script>window.pwned=1</script>"

    _sign_up(browser, f"{base}/forums/{slug}", f"Is this safe? {evil}")

    assert "You are signed up" in browser.find_element(By.TAG_NAME, "h1").text
    assert browser.execute_script("return typeof window.pwned") == "undefined"
    # The question comes back as text (in the edit form, or as the read-only question).
    shown = browser.execute_script(
        "var q = document.getElementById('question');"
        "return q ? q.value : document.querySelector('main').innerText;"
    )
    assert evil in shown
    scripts = browser.execute_script(
        "return Array.from(document.scripts).map(function (s) { return s.text; }).join(' ');"
    )
    assert "pwned" not in scripts
    [signup] = _signups(app)
    assert signup.question == f"Is this safe? {evil}"


def test_the_presenter_board_follows_the_queue_without_a_reload(live_app, browser):
    """The board polls (every second by default) and redraws when the queue changes."""
    app, base = live_app
    with app.app_context():
        now = utcnow()
        forum = make_forum(starts_at=now - timedelta(minutes=1), now=now)
        make_signup(forum, name="Mariana Costa", location="Porto", status="queued")
        make_signup(forum, name="Kenji Sato", location="Osaka", status="queued")
        user, _ = make_user("presenter")
        _, producer_token = make_user("producer")
        slug, email = forum.slug, user.email

    browser.get(f"{base}/producer/login")
    browser.find_element(By.ID, "email").send_keys(email)
    browser.find_element(By.ID, "password").send_keys("correct horse battery")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait = ExplainingWait(browser)
    # Let the login's redirect land first, or it can overtake the board's navigation.
    wait.until(lambda d: "/producer/login" not in d.current_url)
    browser.get(f"{base}/board/{slug}")
    wait.until(ec.text_to_be_present_in_element((By.ID, "board-next"), "Mariana Costa"))
    assert "Nobody on air" in browser.find_element(By.ID, "board-on-air").text
    browser.execute_script("window.notReloaded = true;")

    client = app.test_client()
    step = client.post(f"/api/v1/forums/{slug}/queue/next", headers=bearer(producer_token))
    assert step.status_code == 200

    wait.until(ec.text_to_be_present_in_element((By.ID, "board-on-air"), "Mariana Costa"))
    assert "Mariana Costa" not in browser.find_element(By.ID, "board-next").text
    assert "Kenji Sato" in browser.find_element(By.ID, "board-next").text
    assert browser.execute_script("return window.notReloaded") is True
