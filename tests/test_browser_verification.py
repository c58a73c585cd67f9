"""Signing up through the code page in headless Chromium, with the proof-of-work on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select

from phonein.sms import codes

from .conftest import make_forum
from .headless import ExplainingWait, serving

pytestmark = pytest.mark.browser
E164 = "+12015550211"


@pytest.fixture
def proving_app(make_app: Any) -> Iterator[tuple[Flask, str]]:
    """Serve an app with CSRF, the code step and the challenge on, as a station runs it."""
    app = make_app(WTF_CSRF_ENABLED=True, VERIFY="sms", CHALLENGE="pow")
    with serving(app) as base:
        yield app, base


def _fill(driver: webdriver.Chrome, url: str, question: str) -> int:
    """Fill and send the signup form; return how long the proof-of-work took (ms)."""
    driver.get(url)
    wait = ExplainingWait(driver)
    form = wait.until(ec.presence_of_element_located((By.ID, "signup-form")))
    form.find_element(By.ID, "name").send_keys("Dana Whitfield")
    form.find_element(By.ID, "location").send_keys("Newark, NJ, USA")
    Select(form.find_element(By.ID, "country")).select_by_value("US")
    form.find_element(By.ID, "phone").send_keys("(201) 555-0211")
    form.find_element(By.ID, "question").send_keys(question)
    form.find_element(By.ID, "sms_consent").click()
    wait.until(lambda d: d.find_element(By.ID, "challenge").get_attribute("value"))
    spent = int(driver.find_element(By.ID, "challenge").get_attribute("data-ms") or 0)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(ec.url_contains("/verify/VE"))
    return spent


def _enter(driver: webdriver.Chrome, app: Flask, expect: str) -> None:
    wait = ExplainingWait(driver)
    box = wait.until(ec.presence_of_element_located((By.ID, "code")))
    box.send_keys(codes.sender(app).last_code(E164))  # type: ignore[attr-defined]
    driver.find_element(By.CSS_SELECTOR, "#code-form button[type=submit]").click()
    wait.until(ec.url_contains(expect))


def test_a_listener_signs_up_through_the_code_page(proving_app, browser):
    app, base = proving_app
    with app.app_context():
        slug = make_forum().slug
    spent = _fill(browser, f"{base}/forums/{slug}", "Will buses run all night?")
    print(f"proof-of-work in headless Chromium: {spent} ms")  # measured, not asserted
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "Enter your code" in page and "Call me instead" in page
    # "Call me instead" asks for a voice call with a new code.
    browser.find_element(By.ID, "call-me").click()
    wait = ExplainingWait(browser)
    wait.until(lambda d: "calling you" in d.find_element(By.TAG_NAME, "main").text)
    assert codes.sender(app).sent[-1]["channel"] == "call"  # type: ignore[attr-defined]
    _enter(browser, app, "/manage/")
    assert "You are signed up" in browser.find_element(By.TAG_NAME, "h1").text
    first_link = browser.current_url

    # The same number again: the old link stands until the listener chooses.
    _fill(browser, f"{base}/forums/{slug}", "A better question <b>")
    _enter(browser, app, "/link")
    assert "Keep my old link" in browser.find_element(By.TAG_NAME, "main").text
    browser.find_element(By.ID, "keep-link").click()
    wait.until(lambda d: "unchanged" in d.find_element(By.TAG_NAME, "h1").text)
    browser.get(first_link)
    assert "A better question <b>" in browser.find_element(By.TAG_NAME, "main").text
