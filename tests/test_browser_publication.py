"""The publication editor in a real browser: a tick is never lost.

Headless Chromium against the live server of tests/headless.py (CSRF on). The producer
ticks a comment and, without waiting, publishes or leaves the page; the tick must be in
the database either way: saved as it was made (static/publication.js, with keepalive),
and carried by the form that publishes what is on screen.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from phonein import publication
from phonein.extensions import db
from phonein.models import Forum, Signup

from .conftest import make_forum, make_signup, make_user
from .headless import ExplainingWait

pytestmark = pytest.mark.browser


def _log_in(driver: webdriver.Chrome, base: str, email: str) -> ExplainingWait:
    driver.get(f"{base}/producer/login")
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys("correct horse battery")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait = ExplainingWait(driver)
    wait.until(lambda d: "/producer/login" not in d.current_url)
    return wait


def _closed_forum(app: Flask, signups: int) -> tuple[str, list[int], str]:
    """A closed forum with screened signups (half for, half against); its slug, the
    signups' ids and a producer's email."""
    with app.app_context():
        forum = make_forum()
        ids = []
        for n in range(signups):
            signup = make_signup(forum, status="done" if n % 3 else "rejected")
            signup.stance = "for" if n % 2 else "against"
            signup.rating = n % 5 + 1
            ids.append(signup.id)
        forum.status = "closed"
        db.session.commit()
        user, _ = make_user("producer")
        return forum.slug, ids, user.email


def _published(app: Flask, signup_id: int) -> bool:
    with app.app_context():
        value = db.session.scalar(sa.select(Signup.published).where(Signup.id == signup_id))
        db.session.remove()
        return bool(value)


def _forum_status(app: Flask, slug: str) -> str:
    with app.app_context():
        value = db.session.scalar(sa.select(Forum.status).where(Forum.slug == slug))
        db.session.remove()
        return str(value)


def _tick(driver: webdriver.Chrome, signup_id: int) -> None:
    box = driver.find_element(By.CSS_SELECTOR, f'#signup-{signup_id} [data-field="published"]')
    assert not box.is_selected()
    box.click()
    assert box.is_selected()


def test_a_tick_followed_at_once_by_publish_is_published(live_app, browser, tmp_path: Path):
    app, base = live_app
    slug, ids, email = _closed_forum(app, 4)
    wait = _log_in(browser, base, email)
    browser.get(f"{base}/producer/forums/{slug}/publication")
    wait.until(ec.presence_of_element_located((By.ID, "publication-editor")))
    _tick(browser, ids[1])
    _tick(browser, ids[2])
    # No wait for the save: publish at once, and accept the confirmation it asks for.
    browser.find_element(By.ID, "publish-button").click()
    wait.until(ec.alert_is_present()).accept()
    wait.until(lambda d: "Published: the public page now shows" in d.page_source)
    browser.save_screenshot(str(tmp_path / "published.png"))
    assert _published(app, ids[1]) and _published(app, ids[2])
    assert not _published(app, ids[0]) and not _published(app, ids[3])
    assert _forum_status(app, slug) == "published"
    # The public page draws the balance and shows both comments.
    browser.get(f"{base}/forums/{slug}")
    assert browser.find_element(By.ID, "balance-all").get_attribute("role") == "img"
    assert len(browser.find_elements(By.CSS_SELECTOR, ".selection .comment")) == 2


def test_a_tick_survives_leaving_the_page_at_once(live_app, browser):
    app, base = live_app
    slug, _, email = _closed_forum(app, publication.PER_PAGE + 3)
    wait = _log_in(browser, base, email)
    browser.get(f"{base}/producer/forums/{slug}/publication")
    wait.until(ec.presence_of_element_located((By.ID, "publication-editor")))
    first_card = browser.find_element(By.CSS_SELECTOR, "#publication-editor [data-signup]")
    chosen = int(first_card.get_attribute("data-signup"))
    _tick(browser, chosen)
    # The save is confirmed on the card.
    wait.until(
        lambda d: (
            "Saved: in the selection."
            in d.find_element(By.CSS_SELECTOR, f"#signup-{chosen} .save-state").text
        )
    )
    assert browser.find_element(By.ID, "selection-count").text == "1"
    # Tick another and leave through a plain link, not a button of the form.
    second = int(
        browser.find_elements(By.CSS_SELECTOR, "#publication-editor [data-signup]")[
            2
        ].get_attribute("data-signup")
    )
    _tick(browser, second)
    browser.find_element(By.LINK_TEXT, "Screening").click()
    wait.until(lambda d: "/signups" in d.current_url)
    wait.until(lambda d: _published(app, second))
    # Back in the editor: both are in the selection, the rest still on the pages.
    browser.get(f"{base}/producer/forums/{slug}/publication")
    heading = wait.until(
        lambda d: d.find_element(By.XPATH, "//h2[starts-with(., 'The selection')]")
    )
    assert heading.text == "The selection (2)"
    assert browser.find_element(
        By.CSS_SELECTOR, f'#signup-{second} [data-field="published"]'
    ).is_selected()
    # A page further on, and back: no tick lost on the way.
    browser.find_element(By.CSS_SELECTOR, 'button[data-page="next"]').click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, 'button[data-page="previous"]'))
    assert _published(app, chosen) and _published(app, second)
