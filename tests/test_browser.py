"""The listener's signup page in a real browser: headless Chromium driven by Selenium.

These tests run the app as a real HTTP server with CSRF on, so they cover what the
Flask test client cannot: forum.js filling the time zone from the browser, the country
select, the CSRF token round trip through a real cookie, and escaping as the browser
sees it. Locally they skip when Chromium or chromedriver is missing; in CI (where
``CI`` is set and Chromium is installed) a missing browser is a failure, not a skip.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait
from werkzeug.serving import BaseWSGIServer, make_server

from phonein.extensions import db
from phonein.models import Signup
from phonein.times import utcnow

from .conftest import bearer, make_forum, make_signup, make_user

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
BROWSER_ZONE = "America/New_York"  # not the machine's zone, so the test shows it is the browser's
# Seconds; each wait ends as soon as its condition holds, so a generous ceiling costs
# nothing when the machine is idle and keeps a loaded CI machine from failing the test.
WAIT = 30


def _require_browser() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if not missing:
        return
    message = f"headless Chromium needs {' and '.join(missing)}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must install Chromium and chromedriver")
    pytest.skip(message)


@pytest.fixture
def live_app(make_app: Any) -> Iterator[tuple[Flask, str]]:
    """Serve a CSRF-protected app on a free port of 127.0.0.1; yield it and its base URL."""
    app = make_app(WTF_CSRF_ENABLED=True)
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-app", daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=WAIT)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    _require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1600",
        "--lang=en-US",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    # The explicit driver path keeps Selenium Manager from downloading anything; TZ sets
    # the zone that Intl (and so forum.js) reports.
    service = Service(executable_path=CHROMEDRIVER, env={**os.environ, "TZ": BROWSER_ZONE})
    driver = webdriver.Chrome(service=service, options=options)
    try:
        # Belt and braces: TZ reaches Chromium through chromedriver on Linux, and the
        # DevTools override makes the zone certain wherever it does not.
        driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": BROWSER_ZONE})
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


class _Explaining(WebDriverWait):
    """A WebDriverWait whose timeout says where the browser was and what it showed."""

    def __init__(self, driver: webdriver.Chrome) -> None:
        super().__init__(driver, WAIT)
        self.browser = driver

    def until(self, method, message: str = ""):  # type: ignore[no-untyped-def, override]
        from selenium.common.exceptions import TimeoutException

        try:
            return super().until(method, message)
        except TimeoutException:
            text = self.browser.execute_script("return document.body.innerText") or ""
            raise AssertionError(
                f"timed out at {self.browser.current_url}; the page said: {text[:800]!r}"
            ) from None


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
    # The forum's time is also shown in the listener's own zone, from the browser.
    assert BROWSER_ZONE in browser.find_element(By.TAG_NAME, "main").text

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
    wait = _Explaining(browser)
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
